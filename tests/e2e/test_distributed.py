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


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_with_their_own_caches_match_one_process(toy_dir, tmp_path):
    """Two torchrun launches (--nnodes=2, one process each) meeting on 127.0.0.1, each "machine" with
    its own cache folder: the second encodes the corpus into its own, and the parameters equal one
    process over the same global batches."""
    import subprocess
    common = toy_overrides(toy_dir, ["train.max_steps=6", "train.valid_every=3", "train.max_tokens=1500",
                                     "optim.lr=3e-3"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'one'}", "train.accum_steps=2", *common, env=env,
                 check=False)
    assert single.returncode == 0, single.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
              "--master_addr=127.0.0.1", f"--master_port={_free_port()}"]
    nodes = [subprocess.Popen([*launch, f"--node_rank={n}", "-m", "nmt.cli.train", f"run_dir={tmp_path / f'node{n}'}",
                               f"data.cache_dir={tmp_path / f'cache{n}'}", *common], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]
    assert "is not in this machine's cache" in outputs[1][1]  # the second machine encoded its own
    for n in (0, 1):
        assert len(list((tmp_path / f"cache{n}").glob("train-*"))) == 1
    a = load_checkpoint(str(tmp_path / "one" / "checkpoints" / "last.pt"))
    b = load_checkpoint(str(tmp_path / "node0" / "checkpoints" / "last.pt"))
    assert a["train_state"]["step"] == b["train_state"]["step"] == 6
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-5, rtol=1e-4, msg=k)
    assert not (tmp_path / "node1" / "checkpoints").exists()  # rank 0 alone writes checkpoints


def test_another_machine_with_other_training_files_is_refused(toy_dir, tmp_path):
    """Two "machines" (working directories) whose data/train files differ under the same relative path."""
    import shutil
    import subprocess
    for n in (0, 1):
        shutil.copytree(toy_dir, tmp_path / f"m{n}" / "data")
    with open(tmp_path / "m1" / "data" / "train.src", "a", encoding="utf-8") as f:
        f.write("x\n")
    with open(tmp_path / "m1" / "data" / "train.tgt", "a", encoding="utf-8") as f:
        f.write("y\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
              "--master_addr=127.0.0.1", f"--master_port={_free_port()}"]
    nodes = [subprocess.Popen([*launch, f"--node_rank={n}", "-m", "nmt.cli.train", "run_dir=run", "data.cache_dir=cache",
                               *toy_overrides("data", ["train.max_steps=2"])], env=env, cwd=tmp_path / f"m{n}",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert all(node.returncode != 0 for node in nodes)
    assert "this machine's copy of data/train differs from rank 0's" in outputs[1][1], outputs[1][1][-2000:]


def test_a_machine_started_with_other_settings_is_refused(toy_dir, tmp_path):
    import subprocess
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
              "--master_addr=127.0.0.1", f"--master_port={_free_port()}"]
    nodes = [subprocess.Popen([*launch, f"--node_rank={n}", "-m", "nmt.cli.train", f"run_dir={tmp_path / 'r'}",
                               *toy_overrides(toy_dir, ["train.max_steps=2", f"optim.lr={1e-3 * (n + 1)}"])],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert all(node.returncode != 0 for node in nodes)
    assert "rank 1: settings differ from rank 0's: optim.lr: 0.002 here, 0.001 on rank 0" in outputs[1][1]
