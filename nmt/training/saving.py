"""Checkpoints of a run: saving ``last.pt`` (with ``step_N.pt`` and ``best.pt`` links), and the
checkpoint a resume continues from, checked against the run's settings."""
from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import asdict
from typing import Dict, List

from ..checkpoint import (
    CheckpointError,
    atomic_link,
    atomic_save,
    checkpoint_dict,
    config_of,
    first_nonfinite,
    is_resumable,
    load_checkpoint,
    rng_state,
    spm_entry,
)
from ..config import RESUMABLE_KEYS, Config, differences, to_dict
from ..outputs import PARTIAL_SUFFIX
from ..runpaths import RunPaths
from .run import Run
from .rundir import TrainingError, nothing_to_resume, read_marker


def save_checkpoint(run: Run, best: bool, step_copy: bool) -> None:
    """last.pt (atomically), and a step_N.pt / best.pt link to it; rank 0 only."""
    if not run.dist.main:
        return
    last = run.paths.last
    extra = {"shortlist": run.shortlist} if run.shortlist else {}
    if run.scaler.is_enabled():
        extra["scaler"] = run.scaler.state_dict()
    weights = run.model.state_dict()
    if run.ema is not None:  # the averaged weights are the model; the raw ones resume training
        weights, extra["train_model"] = {**weights, **run.ema.state_dict()}, weights
    atomic_save(checkpoint_dict(weights, to_dict(run.cfg), spm_entry(run.tok), optimizer=run.optimizer.state_dict(),
                                scheduler=run.scheduler.state_dict(), train_state=asdict(run.state),
                                rng=rng_state(), **extra), last)
    if step_copy and run.cfg.train.keep_last > 0:
        atomic_link(last, run.paths.step(run.state.step))
        prune(run.paths, run.cfg.train.keep_last)
    if best:
        atomic_link(last, run.paths.best)


def resume_checkpoint(cfg: Config, run_dir: str) -> Dict:
    paths = RunPaths(run_dir)
    path = paths.last
    if not os.path.exists(path):
        raise nothing_to_resume(path)
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as e:
        others = paths.steps()[::-1] + ([paths.best] if os.path.exists(paths.best) else [])
        hint = (f"; the previous good checkpoints are {', '.join(others)}: copy one to {path} to resume from it"
                if others else "; no other checkpoint exists in that directory")
        raise TrainingError(f"{e}{hint}") from None
    if not is_resumable(ckpt):
        raise TrainingError(f"{path} holds no optimizer or data position (an averaged or exported checkpoint): "
                            f"it cannot be resumed; start a new run from it with train.init_from={path}")
    check_same_run(ckpt, run_dir, path)
    # the saved settings read through this version's schema: a key added since holds its default there
    check_resume_config(to_dict(config_of(ckpt, path)), to_dict(cfg), path)
    check_finite_state(ckpt, path)
    return ckpt


def check_same_run(ckpt: Dict, run_dir: str, path: str) -> None:
    """The checkpoint is this run's: its run id is the directory's marker, and its settings are
    those the run recorded in ``config.yaml`` (a ``last.pt`` copied in from another run is refused,
    so that it never replaces the run's ``best.pt``)."""
    marker = read_marker(run_dir)
    theirs = ckpt["train_state"].get("run_id") or ""
    if marker is not None and theirs and theirs != marker["run_id"]:
        raise TrainingError(f"cannot resume from {path}: it belongs to another run (run id {theirs}, this "
                            f"directory's is {marker['run_id']}); start a new run from it with "
                            f"train.init_from={path}")
    recorded = os.path.join(run_dir, "config.yaml")
    if os.path.isfile(recorded):
        from omegaconf import OmegaConf
        try:
            mine = OmegaConf.to_container(OmegaConf.load(recorded))
        except Exception:  # noqa: BLE001 (a config.yaml edited into something unreadable says nothing)
            return
        changed = _changed_settings(mine, ckpt["config"]) if isinstance(mine, dict) else ""
        if changed:
            raise TrainingError(f"cannot resume from {path}: its settings differ from the run's ({recorded}): "
                                f"{changed}; it is not this run's checkpoint")


def check_finite_state(ckpt: Dict, path: str) -> None:
    """No NaN or infinity in the weights or the optimizer state: training on from them would skip
    every update and write more broken checkpoints."""
    for entry in ("model", "train_model", "optimizer"):
        bad = first_nonfinite(ckpt.get(entry), entry)
        if bad is not None:
            raise TrainingError(f"cannot resume from {path}: {bad} holds NaN or infinite values; resume from an "
                                f"earlier checkpoint of the run (copy it to {path})")


def _changed_settings(saved: Dict, current: Dict) -> str:
    """The keys outside ``RESUMABLE_KEYS`` whose values differ, as ``key: old -> new, ...`` ("" if none)."""
    return ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in differences(saved, current,
                                                                       lambda key: key not in RESUMABLE_KEYS))


def check_resume_config(saved: Dict, current: Dict, path: str) -> None:
    """Refuse to resume when a key outside ``RESUMABLE_KEYS`` changed, naming every such key."""
    changed = _changed_settings(saved, current)
    if changed:
        raise TrainingError(f"cannot resume from {path}: these settings differ from the checkpoint's and may not "
                            f"change on resume: {changed}")


def remove_partial_checkpoints(directory: str) -> List[str]:
    """Delete the temporary files an interrupted save left in ``directory`` (``atomic_output``'s
    ``.NAME.pt.*.part``, and ``NAME.pt.tmp.PID`` of links and of earlier versions); call it only while
    holding the run's lock. Returns what it removed."""
    partial = re.compile(r"(\..+\.pt\..+" + re.escape(PARTIAL_SUFFIX) + r"|.+\.pt\.tmp\.\d+)")
    removed = []
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if partial.fullmatch(name):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
                removed.append(name)
    if removed:
        logging.getLogger("nmt.train").info("removed %d partial checkpoint file(s) left by an interrupted save: %s",
                                             len(removed), ", ".join(removed))
    return removed


def prune(paths: RunPaths, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints of a run."""
    steps = paths.steps()
    for path in steps[: max(0, len(steps) - keep)]:
        os.remove(path)
