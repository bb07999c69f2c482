"""What only a fresh interpreter shows: what importing the package loads and changes, and the
process-wide thread policy the programs set at their start."""
import os
import subprocess
import sys

import pytest


def policy_after(code: str, **env) -> str:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code + "; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                         env={**base, **env}, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_programs_wait_passively_unless_the_user_chose_a_policy():
    start = "import nmt.cli.{0} as m\ntry:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\nimport os"
    assert policy_after(start.format("translate")) == "PASSIVE"  # set by the program, at its start
    assert policy_after(start.format("train"), OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"  # the user's choice wins
    assert policy_after("import nmt.cli.translate, nmt.cli.train") == "None"  # importing changes nothing
    assert policy_after("import nmt; nmt.load") == "None"  # the library changes no global state


def test_import_nmt_is_light_and_changes_no_global_state():
    code = ("import sys, logging, warnings; before = (dict(logging.root.manager.loggerDict), list(warnings.filters)); "
            "import nmt; assert nmt.__version__; "
            "heavy = [m for m in ('torch', 'matplotlib', 'hydra', 'sentencepiece') if m in sys.modules]; "
            "assert not heavy, heavy; assert logging.root.handlers == []; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_the_parsers_take_their_defaults_without_loading_torch():
    """nmt-translate's and nmt-serve's flags read their defaults and choices from
    ``nmt.search.options`` (``SearchOptions``): parsing stays torch-free, so ``--help`` answers at once."""
    code = ("import sys, nmt.cli.translate as t, nmt.cli.serve as s; t.parse_args(['x']); s.parse_args(['x']); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr


@pytest.mark.parametrize("module", ["nmt.translator", "nmt.checkpoint", "nmt.training.loop", "nmt.api"])
def test_importing_modules_does_not_load_matplotlib(module):
    proc = subprocess.run([sys.executable, "-c", f"import sys, {module}; assert 'matplotlib' not in sys.modules"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
