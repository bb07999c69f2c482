import math
import os

import pytest
import torch

from nmt.data.batching import collate
from nmt.train import loop
from nmt.checkpoint import load_checkpoint
from nmt.train.loop import TrainingError, fit, train_step
from nmt.train.loss import Objective

from ..conftest import compose, toy_overrides
from .helpers import tiny_model


def cfg_for(toy_dir, *extra):
    return compose(toy_overrides(toy_dir, ["train.valid_every=10", "optim.lr=3e-3", "train.max_tokens=1500", *extra]))


RANDOMNESS = ["encoder.dropout=0.2", "decoder.dropout=0.2", "teacher_forcing=linear",
              "teacher_forcing.decay_steps=20", "teacher_forcing.feed=sample"]


def params(run_dir, name="last.pt"):
    return load_checkpoint(os.path.join(run_dir, "checkpoints", name))["model"]


def test_resume_continues_exactly(toy_dir, tmp_path):
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    summary = fit(cfg_for(toy_dir, "train.max_steps=24", *RANDOMNESS), whole)
    assert summary["steps"] == 24 and summary["epochs"] >= 1  # crosses an epoch boundary
    fit(cfg_for(toy_dir, "train.max_steps=13", *RANDOMNESS), split)  # stops mid-epoch, off the valid grid
    ckpt = load_checkpoint(os.path.join(split, "checkpoints", "last.pt"))
    assert ckpt["train_state"]["step"] == 13
    fit(cfg_for(toy_dir, "train.max_steps=24", "resume=true", "train.plots=true", *RANDOMNESS), split)
    a, b = params(whole), params(split)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert os.path.exists(os.path.join(split, "checkpoints", "best.pt"))
    assert sorted(os.listdir(os.path.join(split, "plots")))
    steps = [r["step"] for r in loop.read_metrics(os.path.join(split, "metrics.jsonl")) if r["kind"] == "train"]
    assert steps == list(range(1, 25))  # resumed log continues without gaps or repeats


def test_resume_refuses_changed_keys_and_existing_runs(toy_dir, tmp_path):
    run = str(tmp_path / "r")
    fit(cfg_for(toy_dir, "train.max_steps=3"), run)
    with pytest.raises(TrainingError, match="already holds a training run"):
        fit(cfg_for(toy_dir, "train.max_steps=3"), run)
    with pytest.raises(TrainingError, match=r"optim.lr.*encoder.hidden_size|encoder.hidden_size.*optim.lr"):
        fit(cfg_for(toy_dir, "train.max_steps=6", "resume=true", "optim.lr=1e-2", "encoder.hidden_size=16"), run)
    fit(cfg_for(toy_dir, "train.max_steps=6", "resume=true", "train.patience=3"), run)  # whitelisted
    assert load_checkpoint(os.path.join(run, "checkpoints", "last.pt"))["train_state"]["step"] == 6
    with pytest.raises(TrainingError, match="no checkpoint"):
        fit(cfg_for(toy_dir, "resume=true"), str(tmp_path / "empty"))


def test_corrupted_last_checkpoint_points_at_previous_good_one(toy_dir, tmp_path):
    run = str(tmp_path / "r")
    fit(cfg_for(toy_dir, "train.max_steps=20", "train.valid_every=10"), run)
    last = os.path.join(run, "checkpoints", "last.pt")
    os.unlink(last)  # it is a hard link: do not truncate its siblings
    with open(last, "wb") as f:
        f.write(b"PK\x03\x04 not a whole zip file")
    with pytest.raises(TrainingError) as e:
        fit(cfg_for(toy_dir, "train.max_steps=30", "resume=true"), run)
    assert "last.pt" in str(e.value) and "step_20.pt" in str(e.value)


def test_train_step_skips_non_finite_updates():
    model = tiny_model()
    b = collate([[5, 6, 7], [8, 9]], [[10, 11], [12]], [0, 1])
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    with torch.no_grad():
        model.decoder.output.bias[5] = float("inf")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss, nll, tokens, norm, applied = train_step(Objective(model), [b], opt, tf_ratio=1.0)
    assert not applied and not math.isfinite(norm) and tokens == 5
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]) or (torch.isinf(v) == torch.isinf(before[k])).all(), k


def test_training_stops_after_k_non_finite_updates(toy_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "train_step", lambda *a, **k: (float("nan"), float("nan"), 10, float("nan"), False))
    with pytest.raises(TrainingError, match="step 3: 3 non-finite"):
        fit(cfg_for(toy_dir, "train.max_nonfinite=3", "train.max_steps=50"), str(tmp_path / "nan"))


def test_gradient_accumulation_and_clipping_log(toy_dir, tmp_path):
    run = str(tmp_path / "acc")
    fit(cfg_for(toy_dir, "train.max_steps=4", "train.accum_steps=2", "train.clip_grad_norm=0.5"), run)
    records = [r for r in loop.read_metrics(os.path.join(run, "metrics.jsonl")) if r["kind"] == "train"]
    assert len(records) == 4 and all(r["grad_norm"] > 0 for r in records)
