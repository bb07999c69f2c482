"""DDP under torchrun (gloo, 2 CPU processes) against one process over the same global batches."""
import os
import subprocess
import sys

import pytest
import torch

from nmt.checkpoint import load_checkpoint

from ..conftest import bin_path, toy_overrides
from .helpers import run

ENV = dict(os.environ, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def one_process(toy_dir, tmp_path_factory):
    """The reference: one process, 6 updates of 2 accumulated batches; (its run directory, the
    overrides the distributed runs share with it)."""
    common = toy_overrides(toy_dir, ["train.max_steps=6", "train.valid_every=3", "train.max_tokens=1500",
                                     "optim.lr=3e-3"])
    one = tmp_path_factory.mktemp("one") / "run"
    single = run(bin_path("nmt-train"), f"run_dir={one}", "train.accum_steps=2", *common, env=ENV, check=False)
    assert single.returncode == 0, single.stderr
    return one, common


def _two_nodes(args, cwd=None):
    """Two torchrun launches (--nnodes=2, one process each) meeting on 127.0.0.1: ``args(n)`` are node
    n's nmt-train arguments, ``cwd(n)`` its working directory. Returns [(returncode, stderr)] per node."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
              "--master_addr=127.0.0.1", f"--master_port={_free_port()}"]
    nodes = [subprocess.Popen([*launch, f"--node_rank={n}", "-m", "nmt.cli.train", *args(n)], env=ENV,
                              cwd=cwd(n) if cwd else None, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (0, 1)]
    errors = [node.communicate(timeout=300)[1] for node in nodes]
    return [(node.returncode, err) for node, err in zip(nodes, errors)]


def test_two_processes_match_one_process_with_accumulation(one_process, tmp_path):
    one, common = one_process
    ddp = run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "-m", "nmt.cli.train", f"run_dir={tmp_path / 'two'}", *common, env=ENV, check=False)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_checkpoint(str(one / "checkpoints" / "last.pt"))
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
    bad = run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "-m", "nmt.cli.train", f"run_dir={tmp_path / 'bad'}",
              *toy_overrides(toy_dir, ["train.max_steps=5", f"data.valid={tmp_path}/nothing"]), env=ENV,
              check=False, timeout=300)
    assert bad.returncode != 0
    assert "nothing.src" in bad.stderr


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_with_their_own_caches_match_one_process(one_process, tmp_path):
    """Two torchrun "machines", each with its own cache folder: the second encodes the corpus into its
    own, and the parameters equal one process over the same global batches."""
    one, common = one_process
    outputs = _two_nodes(lambda n: [f"run_dir={tmp_path / f'node{n}'}", f"data.cache_dir={tmp_path / f'cache{n}'}",
                                    *common])
    for code, err in outputs:
        assert code == 0, err[-3000:]
    assert "is not in this machine's cache" in outputs[1][1]  # the second machine encoded its own
    for n in (0, 1):
        assert len(list((tmp_path / f"cache{n}").glob("train-*"))) == 1
    a = load_checkpoint(str(one / "checkpoints" / "last.pt"))
    b = load_checkpoint(str(tmp_path / "node0" / "checkpoints" / "last.pt"))
    assert a["train_state"]["step"] == b["train_state"]["step"] == 6
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-5, rtol=1e-4, msg=k)
    assert not (tmp_path / "node1" / "checkpoints").exists()  # rank 0 alone writes checkpoints


def test_another_machine_with_other_training_files_is_refused(toy_dir, tmp_path):
    """Two "machines" (working directories) whose data/train files differ under the same relative path."""
    import shutil
    for n in (0, 1):
        shutil.copytree(toy_dir, tmp_path / f"m{n}" / "data")
    with open(tmp_path / "m1" / "data" / "train.src", "a", encoding="utf-8") as f:
        f.write("x\n")
    with open(tmp_path / "m1" / "data" / "train.tgt", "a", encoding="utf-8") as f:
        f.write("y\n")
    outputs = _two_nodes(lambda n: ["run_dir=run", "data.cache_dir=cache", *toy_overrides("data", ["train.max_steps=2"])],
                         cwd=lambda n: tmp_path / f"m{n}")
    assert all(code != 0 for code, _ in outputs)
    assert "this machine's copy of data/train differs from rank 0's" in outputs[1][1], outputs[1][1][-2000:]


def test_a_machine_started_with_other_settings_is_refused(toy_dir, tmp_path):
    outputs = _two_nodes(lambda n: [f"run_dir={tmp_path / 'r'}",
                                    *toy_overrides(toy_dir, ["train.max_steps=2", f"optim.lr={1e-3 * (n + 1)}"])])
    assert all(code != 0 for code, _ in outputs)
    assert "rank 1: settings differ from rank 0's: optim.lr: 0.002 here, 0.001 on rank 0" in outputs[1][1]


def test_other_ranks_leave_hydra_files_out_of_the_run_directory():
    """Rank 0 owns the run directory and refuses one holding files it did not write: another rank
    that starts first must not put Hydra's ``.hydra/`` or ``train.log`` there."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from nmt.cli.train import hydra_argv
    from nmt.config import register_configs
    register_configs()
    for main_rank, subdir in ((True, ".hydra"), (False, None)):
        GlobalHydra.instance().clear()
        with initialize_config_module("nmt.configs", version_base="1.3"):
            cfg = compose("train", hydra_argv(["run_dir=r"], main_rank), return_hydra_config=True)
        assert cfg.hydra.output_subdir == subdir
        handlers = cfg.hydra.job_logging.handlers
        assert any("filename" in handlers[name] for name in handlers) == main_rank
        assert cfg.hydra.job_logging.handlers.console.stream == "ext://sys.stderr"
    GlobalHydra.instance().clear()


def test_a_probe_of_another_rank_is_not_a_users_file(tmp_path):
    from nmt.training.rundir import PROBE_PREFIX, check_is_run_or_empty
    (tmp_path / f"{PROBE_PREFIX}abc").mkdir()
    check_is_run_or_empty(str(tmp_path))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="notes.txt"):
        check_is_run_or_empty(str(tmp_path))
