"""DDP under torchrun (gloo, 2 CPU processes) against one process over the same global batches."""
import os
import sys

import pytest
import torch

from nmt.checkpoint import load_checkpoint

from ..conftest import bin_path, toy_overrides
from .helpers import run

pytestmark = pytest.mark.slow


def test_two_processes_match_one_process_with_accumulation(toy_dir, tmp_path):
    common = toy_overrides(toy_dir, ["train.max_steps=6", "train.valid_every=3", "train.max_tokens=1500",
                                     "optim.lr=3e-3"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'one'}", "train.accum_steps=2", *common, env=env,
                 check=False)
    assert single.returncode == 0, single.stderr
    ddp = run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "-m", "nmt.cli.train", f"run_dir={tmp_path / 'two'}", *common, env=env, check=False)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_checkpoint(str(tmp_path / "one" / "checkpoints" / "last.pt"))
    b = load_checkpoint(str(tmp_path / "two" / "checkpoints" / "last.pt"))
    assert torch.equal(a["spm"]["src"], b["spm"]["src"])
    assert a["train_state"]["step"] == b["train_state"]["step"] == 6
    assert a["train_state"]["position"] == b["train_state"]["position"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-5, rtol=1e-4, msg=k)
    # rank 0 alone wrote the logs: one record per step
    steps = [l for l in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
    assert len(steps) == 6


def test_a_crashing_rank_ends_all_of_them(toy_dir, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    bad = run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "-m", "nmt.cli.train", f"run_dir={tmp_path / 'bad'}",
              *toy_overrides(toy_dir, ["train.max_steps=5", f"data.valid={tmp_path}/nothing"]), env=env,
              check=False, timeout=300)
    assert bad.returncode != 0
    assert "nothing.src" in bad.stderr
