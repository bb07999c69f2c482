"""The training loop: ``fit`` and the epochs and updates it runs.

``fit`` reads top to bottom: check the settings, lock the run directory, read the data, build the
objects (a ``Run``), then an explicit loop over epochs and updates. One update (``update.py``),
validation and the test translation (``validation.py``), checkpoints (``saving.py``) and what a
run reports (``logs.py``) live in modules of their own.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from typing import Dict, Iterator, List, Optional

import numpy as np
from omegaconf import OmegaConf

from ..config import Config, to_dict
from ..data.batching import make_batches, padding_fraction
from ..launch import Launch
from ..precision import resolve_precision
from ..runpaths import RunPaths
from ..runtime import check_busy, pick_device, pick_threads
from .build import build_run, load_init_checkpoint
from .distributed import Dist, check_same_settings
from .logs import draw_plots, log_update, record_grad_flow, setup_logging
from .preflight import preflight
from .run import Run
from .rundir import RunLock, TrainingError, write_marker  # noqa: F401 (TrainingError: raised through fit)
from .saving import remove_partial_checkpoints, resume_checkpoint, save_checkpoint
from .signals import StopSignal
from .update import check_health, run_update
from .validation import run_validation, translate_test, validate_final

log = logging.getLogger("nmt.train")


def stop_reason(run: Run, validated_stop: bool, stop_votes: float, signal_requested: bool) -> Optional[str]:
    t, s = run.cfg.train, run.state
    if validated_stop:
        return "early_stopping"
    if t.max_steps and s.step >= t.max_steps:
        return "max_steps"
    if stop_votes > 0:
        return "signal" if signal_requested else "max_minutes"
    return None


def epoch_updates(run: Run) -> Iterator[List[List[int]]]:
    """This rank's batches (index lists) for each update of the current epoch, from
    ``state.position`` on (``run_update`` advances it); the epoch counter moves on at its end."""
    t, s, dist = run.cfg.train, run.state, run.dist
    per_update = dist.world * t.accum_steps
    data = run.begin_epoch()
    pairs = data.epoch_pairs(t.seed, s.epoch)  # (m,) this epoch's pairs, numbered across corpora
    src_lens, tgt_lens = data.src_lens[pairs], data.tgt_lens[pairs]  # (m,), (m,)
    order = [pairs[b] for b in make_batches(src_lens, tgt_lens, t.max_tokens, t.max_sentences, t.seed, s.epoch)]
    updates = len(order) // per_update
    if updates == 0:
        raise TrainingError(f"the training data gives {len(order)} batches, fewer than the {per_update} one update "
                            f"needs (ranks x accum_steps); lower train.max_tokens")
    if s.position == 0:
        log.info("epoch %d: %d batches, padding %.1f%%", s.epoch + 1, len(order),
                 100 * padding_fraction(order, data.src_lens, data.tgt_lens))
        if len(run.train.specs) > 1:
            log_corpus_counts(run, order[:updates * per_update])
    while s.position // per_update < updates:
        yield order[s.position + dist.rank * t.accum_steps: s.position + (dist.rank + 1) * t.accum_steps]
    s.next_epoch()


def log_corpus_counts(run: Run, batches: List[np.ndarray]) -> None:
    """The pairs each corpus gives the updates of this epoch (in the log and metrics.jsonl)."""
    counts = np.bincount(run.train.corpus_of(np.concatenate(batches)), minlength=len(run.train.specs))
    total = max(int(counts.sum()), 1)
    log.info("epoch %d draws %s", run.state.epoch + 1, ", ".join(
        f"{name} {n:,} pairs ({100 * n / total:.1f}%)" for name, n in zip(run.train.names, counts.tolist())))
    if run.metrics is not None:
        run.metrics.write("corpora", run.state.step, {"epoch": run.state.epoch + 1,
                                                      "pairs": dict(zip(run.train.names, counts.tolist()))})


def train_epoch(run: Run, stop_signal: StopSignal, bar) -> Optional[str]:
    """The updates of the current epoch from ``state.position``; the stop reason, or None at its end."""
    t, s, dist = run.cfg.train, run.state, run.dist
    for mine in epoch_updates(run):
        if t.grad_flow_every and s.step % t.grad_flow_every == 0:
            record_grad_flow(run, mine[0])
        u = run_update(run, mine)
        minutes = (time.time() - run.start_time) / 60
        out_of_time = bool(t.max_minutes) and minutes > t.max_minutes
        stop_votes, minutes = dist.all_sum([float(stop_signal.requested or out_of_time), minutes])
        if t.max_minutes:  # a schedule over a time budget: every rank uses the same (mean) time
            run.scheduler.step_update(s.step, minutes / dist.world)
        check_health(run, u)
        log_update(run, u)
        bar.update(1)
        early = validate_or_save(run, stop_signal) if s.step % t.valid_every == 0 else False
        reason = stop_reason(run, early, stop_votes, stop_signal.requested)
        if reason:
            return reason
    return None


def validate_or_save(run: Run, stop_signal: StopSignal) -> bool:
    """A periodic validation; one interrupted after a stop was asked for (which promised last.pt)
    still saves the updates before the interruption goes on."""
    try:
        return run_validation(run)
    except KeyboardInterrupt:
        if stop_signal.requested:
            save_checkpoint(run, best=False, step_copy=False)
            log.warning("validation interrupted; last.pt holds step %d", run.state.step)
        raise


def fit(cfg: Config, run_dir: str) -> Dict:
    """Train as ``cfg`` says, in ``run_dir``; returns a summary (steps, best BLEU, test scores, stop reason)."""
    launch = Launch.from_env()
    preflight(cfg, run_dir, run_dir_checks=launch.main, ignored=_hydra_files())
    device = pick_device(cfg.train.device, launch.local_rank)
    dist = Dist.from_env(device)
    run_dir = dist.broadcast(os.path.abspath(run_dir))
    if dist.main:
        os.makedirs(RunPaths(run_dir).checkpoints, exist_ok=True)
    dist.barrier()
    lock = RunLock(run_dir).acquire() if dist.main else None
    run_id = dist.broadcast(write_marker(run_dir) if dist.main else None)
    handlers = setup_logging(run_dir, dist.main)
    if dist.main:
        remove_partial_checkpoints(RunPaths(run_dir).checkpoints)
    try:
        return _fit(cfg, run_dir, device, dist, run_id)
    finally:
        for h in handlers:
            logging.getLogger("nmt").removeHandler(h)
            h.close()
        if lock is not None:
            lock.release()
        dist.close()


def _hydra_files() -> tuple:
    """What Hydra wrote into the run directory before ``fit`` (``nmt-train`` checked it before)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        return (".hydra", "train.log") if HydraConfig.initialized() else ()
    except ImportError:
        return ()


def _fit(cfg: Config, run_dir: str, device, dist: Dist, run_id: str) -> Dict:
    threads = pick_threads(cfg.train.threads, key="train.threads")
    log.info("device %s, %d torch threads (OMP_WAIT_POLICY=%s), training in %s (train.precision=%s)%s", device, threads,
             os.environ.get("OMP_WAIT_POLICY", "unset"), resolve_precision(cfg.train.precision, device),
             cfg.train.precision, f", {dist.world} processes" if dist.enabled else "")
    if device.type == "cpu" and cfg.train.threads <= 0 and (busy := check_busy(threads)):
        log.warning(busy)
    check_same_settings(cfg, dist)
    # read by rank 0 and sent to every rank: another machine may not see the run directory
    ckpt = dist.broadcast(resume_checkpoint(cfg, run_dir) if cfg.resume and dist.main else None)
    init = dist.broadcast(load_init_checkpoint(cfg) if cfg.train.init_from and ckpt is None and dist.main
                          else None)
    if dist.main:
        OmegaConf.save(OmegaConf.create(to_dict(cfg)), os.path.join(run_dir, "config.yaml"))
    run = build_run(cfg, run_dir, device, dist, ckpt, init, run_id)
    try:
        return _train(run)
    finally:
        run.close()


def _train(run: Run) -> Dict:
    """Train until a stop reason, validate the final weights, translate the test set; the summary."""
    cfg, dist, run_dir = run.cfg, run.dist, run.run_dir
    t, state = cfg.train, run.state
    reason = None
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    on_terminal = dist.main and sys.stderr.isatty()
    consoles = [lg for lg in (logging.root, logging.getLogger("nmt"))
                if any(type(h) is logging.StreamHandler for h in lg.handlers)]
    redirect = logging_redirect_tqdm(loggers=consoles) if on_terminal else contextlib.nullcontext()
    with StopSignal() as stop_signal, redirect, \
            tqdm(total=t.max_steps or None, initial=state.step, disable=not on_terminal, unit="step",
                 dynamic_ncols=True, leave=False) as bar:
        while reason is None:
            if t.max_epochs and state.epoch >= t.max_epochs:
                reason = "max_epochs"
                break
            if t.max_steps and state.step >= t.max_steps:  # checked before an update: a resume at the
                reason = "max_steps"  # limit changes nothing
                break
            reason = train_epoch(run, stop_signal, bar)
    interrupted = not validate_final(run, reason)
    log.info("training stopped (%s) after %d steps; best valid BLEU %.2f at step %d; checkpoints in %s",
             reason, state.step, state.best_bleu, state.best_step, run.paths.checkpoints)
    test = None
    if not interrupted:
        try:
            test = translate_test(run)
        except KeyboardInterrupt:
            log.warning("test translation skipped (interrupted); the checkpoints are saved")
    summary = {"steps": state.step, "epochs": state.epoch, "best_bleu": state.best_bleu,
               "best_step": state.best_step, "stop_reason": reason, "run_dir": run_dir,
               "minutes": (time.time() - run.start_time) / 60, "test": test}
    if dist.main:
        draw_plots(run)
        run.records.close()
        with open(run.paths.summary, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    return summary
