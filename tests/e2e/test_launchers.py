"""Sweeps through a Hydra launcher plugin: the shipped SLURM launcher config (hydra/launcher=nmt_slurm)
composes over the submitit plugin, and a sweep runs through submitit's local executor (the same
launcher code as on SLURM, with processes on this machine). Skipped where the plugin (the optional
extra nmt[slurm]) is not installed."""
import os

import pytest

from ..conftest import bin_path, toy_overrides
from .helpers import run

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'nmt[slurm]'")


def test_the_slurm_launcher_config_composes_with_overrides():
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from nmt.config import check_known_keys, register_configs
    register_configs()
    with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=nmt_slurm", "hydra.launcher.partition=gpu",
                                          "hydra.launcher.gpus_per_node=1", "experiment=multi30k_de_en",
                                          "optim.lr=5e-4"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 240)
    assert (launcher.tasks_per_node, launcher.max_num_timeout) == (1, 0)
    assert cfg.optim.lr == 5e-4
    check_known_keys(OmegaConf.to_container(cfg, resolve=False))  # the task's keys are nmt's


def test_a_sweep_runs_through_the_submitit_launcher(toy_dir, tmp_path):
    """As a user starts it (a process: submitit runs each job in a process of its own and the summary
    is logged by the launching one)."""
    sweep = tmp_path / "sweep"
    proc = run(bin_path("nmt-train"), "-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}",
               "train.max_steps=2", "train.valid_every=2", "optim.lr=1e-3,2e-3", *toy_overrides(toy_dir),
               timeout=600, process=True)
    jobs = sorted(d for d in os.listdir(sweep) if d.isdigit())
    assert jobs == ["0", "1"]
    assert all((sweep / j / "checkpoints" / "last.pt").exists() for j in jobs)
    rows = (sweep / "multirun.tsv").read_text().splitlines()
    assert len(rows) == 3 and all(r.split("\t")[6] == "max_steps" for r in rows[1:])
    # the printed table shows what differs between the jobs; what they share is printed once
    assert "every job: " in proc.stderr and "optim.lr=0.001" in proc.stderr
