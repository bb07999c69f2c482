"""A regular (non-editable) install ships the configs: Hydra finds them from another directory."""
import os
import subprocess
import sys

from ..conftest import ROOT


def test_configs_found_after_a_regular_install(tmp_path):
    """pip install . (not editable) into a target dir, then compose from another directory."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, cwd=tmp_path)
    assert (target / "nmt" / "configs" / "train.yaml").exists()
    assert (target / "nmt" / "configs" / "encoder" / "bilstm.yaml").exists()
    code = ("import nmt, sys; from nmt.config import register_configs; register_configs(); "
            "from hydra import compose, initialize_config_module; "
            "assert 'site' in nmt.__file__, nmt.__file__\n"
            "with initialize_config_module(config_module='nmt.configs', version_base='1.3'):\n"
            "    c = compose('train', overrides=['encoder=bilstm']); print(c.encoder.cell)")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "lstm"
