"""What a newcomer meets in the first hour, in process: runs that end on their last weights, resume
by run directory alone."""
import json

import pytest

from ..conftest import toy_overrides


def test_a_budget_stop_validates_the_final_weights_and_tests_the_better_checkpoint(toy_dir, tmp_path):
    from nmt.checkpoint import load_checkpoint
    from nmt.training.loop import fit

    from ..conftest import compose
    run_dir = tmp_path / "r"
    summary = fit(compose(toy_overrides(toy_dir, ["train.max_steps=0", "train.max_minutes=0.002",
                                                  "train.valid_every=100000", "optim.lr=3e-3"])), str(run_dir))
    assert summary["stop_reason"] == "max_minutes"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["kind"] == "valid"]
    assert [r["step"] for r in valid] == [summary["steps"]]  # the final weights were validated
    assert load_checkpoint(str(run_dir / "checkpoints" / "best.pt"))["train_state"]["step"] == summary["steps"]
    scores = json.loads((run_dir / "test" / "scores.json").read_text())
    assert scores["step"] == summary["steps"] and scores["precision"] == "fp32"


def test_resume_by_run_directory_needs_no_repeated_overrides(toy_dir, tmp_path):
    """``nmt-train run_dir=RUN resume=true train.max_steps=N``: the run's own config, only the given
    keys changed; a key that may not change on resume is still refused by name."""
    from nmt import train
    from nmt.checkpoint import load_checkpoint
    run_dir = tmp_path / "r"
    first = toy_overrides(toy_dir, [f"run_dir={run_dir}", "train.max_steps=3", "train.valid_every=3",
                                    "optim.lr=3e-3", "encoder.hidden_size=16"])
    train(first)
    summary = train([f"run_dir={run_dir}", "resume=true", "train.max_steps=5"])
    assert summary["steps"] == 5
    cfg = load_checkpoint(str(run_dir / "checkpoints" / "last.pt"))["config"]
    assert cfg["encoder"]["hidden_size"] == 16 and cfg["optim"]["lr"] == 3e-3 and cfg["train"]["max_steps"] == 5
    from nmt.training.rundir import TrainingError
    with pytest.raises(TrainingError, match="encoder.hidden_size: 16 -> 24"):
        train([f"run_dir={run_dir}", "resume=true", "train.max_steps=7", "encoder.hidden_size=24"])
