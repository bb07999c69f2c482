import os
import pickle

import pytest
import torch

from nmt import checkpoint as ck
from nmt.runpaths import RunPaths
from nmt.training import saving


def _obj(v=1.0):
    return {"format": ck.FORMAT, "model": {"w": torch.full((3,), v)}, "config": {"a": 1}, "spm": {"src": None}}


def test_roundtrip_and_plain_values(tmp_path):
    path = str(tmp_path / "c.pt")
    ck.atomic_save(_obj(2.0), path)
    got = ck.load_checkpoint(path)
    assert torch.equal(got["model"]["w"], torch.full((3,), 2.0))
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "last.pt")
    ck.atomic_save(_obj(1.0), path)

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # killed in the middle of writing

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ck.atomic_save(_obj(9.0), path)
    monkeypatch.undo()
    assert torch.equal(ck.load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))
    assert os.listdir(tmp_path) == ["last.pt"]


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "last.pt"
    ck.atomic_save(_obj(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ck.CheckpointError, match="last.pt.*truncated or corrupted"):
        ck.load_checkpoint(str(path))


class Evil:
    def __reduce__(self):
        return (open, (os.environ["EVIL_TARGET"], "w"))


def test_arbitrary_pickled_objects_are_refused_never_executed(tmp_path, monkeypatch):
    target = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_TARGET", str(target))
    path = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "model": Evil(), "config": {}, "spm": {}}, str(path))
    with pytest.raises(ck.CheckpointError, match="evil.pt.*refused"):
        ck.load_checkpoint(str(path))
    assert not target.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ck.CheckpointError, match="raw.pt"):
        ck.load_checkpoint(str(raw))
    assert not target.exists()


def test_foreign_file_and_missing_file(tmp_path):
    torch.save({"w": torch.zeros(1)}, str(tmp_path / "x.pt"))
    with pytest.raises(ck.CheckpointError, match="not an nmt checkpoint"):
        ck.load_checkpoint(str(tmp_path / "x.pt"))
    with pytest.raises(ck.CheckpointError, match="not found"):
        ck.load_checkpoint(str(tmp_path / "none.pt"))


def test_links_and_pruning(tmp_path):
    paths = RunPaths(str(tmp_path))
    os.makedirs(paths.checkpoints)
    for step in (1, 2, 3, 4):
        ck.atomic_save(_obj(float(step)), paths.last)
        ck.atomic_link(paths.last, paths.step(step))
        saving.prune(paths, keep=2)
    assert [os.path.basename(p) for p in paths.steps()] == ["step_3.pt", "step_4.pt"]
    assert torch.equal(ck.load_checkpoint(paths.step(3))["model"]["w"], torch.full((3,), 3.0))


def test_rng_state_roundtrip():
    state = ck.rng_state()
    a = torch.rand(3)
    ck.set_rng_state(state)
    assert torch.equal(a, torch.rand(3))
