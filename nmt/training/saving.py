"""Checkpoints of a run: saving ``last.pt`` (with ``step_N.pt`` and ``best.pt`` links), and the
checkpoint a resume continues from, checked against the run's settings."""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import Dict

from ..checkpoint import (
    CheckpointError,
    atomic_link,
    atomic_save,
    checkpoint_dict,
    is_resumable,
    load_checkpoint,
    prune,
    rng_state,
    spm_entry,
    step_checkpoints,
)
from ..config import RESUMABLE_KEYS, Config, differences, to_dict
from .run import Run
from .rundir import TrainingError


def save_checkpoint(run: Run, best: bool, step_copy: bool) -> None:
    """last.pt (atomically), and a step_N.pt / best.pt link to it; rank 0 only."""
    if not run.dist.main:
        return
    last = os.path.join(run.ckpt_dir, "last.pt")
    extra = {"shortlist": run.shortlist} if run.shortlist else {}
    weights = run.model.state_dict()
    if run.ema is not None:  # the averaged weights are the model; the raw ones resume training
        weights, extra["train_model"] = {**weights, **run.ema.state_dict()}, weights
    atomic_save(checkpoint_dict(weights, to_dict(run.cfg), spm_entry(run.tok), optimizer=run.optimizer.state_dict(),
                                scheduler=run.scheduler.state_dict(), train_state=asdict(run.state),
                                rng=rng_state(), **extra), last)
    if step_copy and run.cfg.train.keep_last > 0:
        atomic_link(last, os.path.join(run.ckpt_dir, f"step_{run.state.step}.pt"))
        prune(run.ckpt_dir, run.cfg.train.keep_last)
    if best:
        atomic_link(last, os.path.join(run.ckpt_dir, "best.pt"))


def resume_checkpoint(cfg: Config, run_dir: str) -> Dict:
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    path = os.path.join(ckpt_dir, "last.pt")
    if not os.path.exists(path):
        raise TrainingError(f"resume=true but there is no checkpoint at {path}; set run_dir= to the run to resume")
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        best = os.path.join(ckpt_dir, "best.pt")
        others = step_checkpoints(ckpt_dir)[::-1] + ([best] if os.path.exists(best) else [])
        hint = (f"; the previous good checkpoints are {', '.join(others)}: copy one to {path} to resume from it"
                if others else "; no other checkpoint exists in that directory")
        raise TrainingError(f"{e}{hint}") from None
    if not is_resumable(ckpt):
        raise TrainingError(f"{path} holds no optimizer or data position (an averaged or exported checkpoint): "
                            f"it cannot be resumed; start a new run from it with train.init_from={path}")
    check_resume_config(ckpt["config"], to_dict(cfg), path)
    return ckpt


def check_resume_config(saved: Dict, current: Dict, path: str) -> None:
    """Refuse to resume when a key outside ``RESUMABLE_KEYS`` changed, naming every such key."""
    changed = differences(saved, current, lambda key: key not in RESUMABLE_KEYS)
    if changed:
        details = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed)
        raise TrainingError(f"cannot resume from {path}: these settings differ from the checkpoint's and may not "
                            f"change on resume: {details}")
