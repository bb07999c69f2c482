"""The training loop: ``train_step`` (one update) and ``fit`` (everything around it).

``fit`` reads top to bottom: check the settings, lock the run directory, read the data, build the
objects (a ``Run``), then an explicit loop over epochs and updates. Saving a checkpoint,
validating, logging an update, deciding to stop and the final test translation are functions of
their own, below.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import statistics
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel as DDP

from ..checkpoint import (
    CheckpointError,
    atomic_link,
    atomic_save,
    is_resumable,
    load_checkpoint,
    load_model,
    make_checkpoint,
    prune,
    remove_partial_checkpoints,
    rng_state,
    set_rng_state,
    step_checkpoints,
)
from ..config import RESUMABLE_KEYS, Config, differences, to_dict
from ..data.batching import Batch, make_batches, padding_fraction
from ..data.dataset import EncodedCorpus, read_split
from ..data.spm import PAD
from ..eval.bleu import score as sacre_score
from ..models.seq2seq import count_parameters
from ..precision import autocast, resolve_precision
from ..runtime import check_busy, pick_device, pick_threads
from ..search import SearchOptions
from ..translator import Translator
from .build import build_training, check_init_from, prepare_data, training_shortlist
from .distributed import Dist
from .grad_flow import grad_flow
from .metrics import MetricsLog, read_metrics
from .preflight import preflight
from .rundir import RunLock, TrainingError
from .schedules import teacher_forcing_ratio
from .signals import StopSignal

log = logging.getLogger("nmt.train")


@dataclass
class TrainState:
    """Everything about the loop's progress that a checkpoint must restore."""
    step: int = 0  # updates done
    epoch: int = 0
    position: int = 0  # index of the next batch in this epoch's batch order
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0
    nonfinite: int = 0  # non-finite updates in a row
    blowups: int = 0  # updates in a row whose loss blew up
    corpus: str = ""  # content hash of the training files (a resume over changed files is refused)


@dataclass
class Update:
    """What one update reports."""
    loss: float  # mean training loss per target token (with label smoothing)
    nll: float  # mean cross-entropy per target token (no smoothing)
    tokens: int
    grad_norm: float  # before clipping
    applied: bool  # finite: the optimizer stepped
    clipped: bool
    tf_ratio: float
    lr: float


@dataclass
class Window:
    """Running totals since the last log line (tokens, time) and the last validation (clipping)."""
    since: float = field(default_factory=time.time)
    tokens: int = 0
    updates: int = 0
    clipped: int = 0
    valid_updates: int = 0
    valid_clipped: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=50))  # recent finite losses
    validated_at: int = -1  # step of the last validation


@dataclass
class Run:
    """The live objects of one training run."""
    cfg: Config
    run_dir: str
    device: torch.device
    dist: Dist
    tok: object
    train: EncodedCorpus
    valid: EncodedCorpus
    model: torch.nn.Module
    net: torch.nn.Module  # the Objective, inside DDP when distributed
    optimizer: torch.optim.Optimizer
    scheduler: object
    state: TrainState
    metrics: Optional[MetricsLog]
    translator: Translator
    shortlist: Optional[Dict[str, torch.Tensor]] = None  # saved with every checkpoint (rank 0)
    start_time: float = field(default_factory=time.time)
    start_step: int = 0  # the step this process started (or resumed) at
    window: Window = field(default_factory=Window)

    @property
    def ckpt_dir(self) -> str:
        return os.path.join(self.run_dir, "checkpoints")


# ---- one update ------------------------------------------------------------------------------------

def train_step(objective, batches: List[Batch], optimizer, tf_ratio: float, feed: str = "argmax",
               clip_norm: float = 1.0, clip_value: float = 0.0, precision: str = "fp32"):
    """One update over ``batches`` (gradient accumulation): forward, token-level loss, backward,
    clipping, optimizer step. The loss is the mean over batches of each batch's per-token mean.

    ``objective`` is an ``Objective`` (possibly inside DistributedDataParallel).
    Returns (summed token loss, summed token nll, target tokens, pre-clip gradient norm, applied).
    A non-finite loss or gradient skips the update.
    """
    objective.train()
    optimizer.zero_grad(set_to_none=True)
    device = batches[0].src.device
    loss_sum, nll_sum, tokens = 0.0, 0.0, 0
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        sync = objective.no_sync() if isinstance(objective, DDP) and not last else contextlib.nullcontext()
        with sync:
            with autocast(device, precision):
                loss, nll = objective(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out, tf_ratio=tf_ratio,
                                      feed=feed)
            (loss / len(batches)).backward()
        n = batch.num_tgt_tokens
        loss_sum += loss.item() * n
        nll_sum += nll.item() * n
        tokens += n
    params = [p for p in objective.parameters() if p.grad is not None]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip_norm if clip_norm > 0 else float("inf")))
    finite = math.isfinite(grad_norm) and math.isfinite(loss_sum)
    if finite:
        if clip_value > 0:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        optimizer.step()
    return loss_sum, nll_sum, tokens, grad_norm, finite


def run_update(run: Run, batch_indices: Sequence[Sequence[int]]) -> Update:
    t, tf_cfg = run.cfg.train, run.cfg.teacher_forcing
    batches = [run.train.batch(idx).to(run.device) for idx in batch_indices]
    tf = teacher_forcing_ratio(run.state.step, tf_cfg.schedule, tf_cfg.start, tf_cfg.end, tf_cfg.decay_steps,
                               tf_cfg.k)
    lr = run.optimizer.param_groups[0]["lr"]
    loss_sum, nll_sum, tokens, gnorm, finite = train_step(run.net, batches, run.optimizer, tf, tf_cfg.feed,
                                                          t.clip_grad_norm, t.clip_grad_value, t.precision)
    loss_sum, nll_sum, tokens = run.dist.all_sum([loss_sum, nll_sum, tokens])
    run.state.position += run.dist.world * t.accum_steps
    run.state.step += 1
    run.scheduler.step_update(run.state.step)
    tokens = int(tokens)
    return Update(loss_sum / max(tokens, 1), nll_sum / max(tokens, 1), tokens, gnorm, finite,
                  finite and t.clip_grad_norm > 0 and gnorm > t.clip_grad_norm, tf, lr)


def check_health(run: Run, u: Update) -> None:
    """Count non-finite and blown-up updates in a row; stop with an error after too many."""
    s, t = run.state, run.cfg.train
    if not u.applied:
        s.nonfinite += 1
        log.warning("step %d: non-finite loss or gradient (loss %s, grad norm %s): update skipped",
                    s.step, u.loss, u.grad_norm)
        if s.nonfinite >= t.max_nonfinite:
            raise TrainingError(f"stopping at step {s.step}: {s.nonfinite} non-finite updates in a row; lower "
                                f"optim.lr or check the data (the last good checkpoint is kept)")
        return
    s.nonfinite = 0
    recent = run.window.recent
    blown = bool(t.blowup_factor) and len(recent) >= 10 and u.loss > t.blowup_factor * statistics.median(recent)
    if not blown:
        s.blowups = 0
        recent.append(u.loss)
        return
    s.blowups += 1
    log.warning("step %d: loss %.4g is %.0fx the median of the last %d updates (%.4g): training is diverging; "
                "lower optim.lr or train.clip_grad_norm", s.step, u.loss, u.loss / statistics.median(recent),
                len(recent), statistics.median(recent))
    if s.blowups >= t.max_blowups:
        raise TrainingError(f"stopping at step {s.step}: the loss blew up for {s.blowups} updates in a row "
                            f"(now {u.loss:.4g}); lower optim.lr (the last good checkpoint is kept)")


def log_update(run: Run, u: Update) -> None:
    """metrics.jsonl every update; one plain log line every ``train.log_every`` updates."""
    s, w = run.state, run.window
    w.tokens += u.tokens
    w.updates += 1
    w.clipped += int(u.clipped)
    w.valid_updates += 1
    w.valid_clipped += int(u.clipped)
    if not run.dist.main:
        return
    run.metrics.write("train", s.step, {"loss": u.loss, "nll": u.nll, "grad_norm": u.grad_norm, "lr": u.lr,
                                        "tf_ratio": u.tf_ratio, "tokens": u.tokens, "applied": int(u.applied),
                                        "clipped": int(u.clipped)})
    if s.step % run.cfg.train.log_every and s.step != 1:
        return
    now = time.time()
    elapsed = int(now - run.start_time)
    log.info("step %d | epoch %d | loss %.4f | nll %.4f | ppl %.2f | lr %.3g | tf %.2f | gnorm %.3f%s | "
             "%.0f tok/s | %d:%02d:%02d", s.step, s.epoch + 1, u.loss, u.nll, math.exp(min(u.nll, 50)), u.lr,
             u.tf_ratio, u.grad_norm, f" (clipped {w.clipped}/{w.updates})" if w.clipped else "",
             w.tokens / max(now - w.since, 1e-9), elapsed // 3600, elapsed // 60 % 60, elapsed % 60)
    w.since, w.tokens, w.updates, w.clipped = now, 0, 0, 0
    run.metrics.flush()


# ---- validation, checkpoints, test -------------------------------------------------------------------

@torch.inference_mode()
def valid_loss(model, data: EncodedCorpus, device, max_tokens: int, precision: str) -> float:
    """Per-token cross-entropy of the gold targets (no label smoothing, no dropout)."""
    model.eval()
    total, tokens = 0.0, 0
    for idx in make_batches(data.src_lens, data.tgt_lens, max_tokens, shuffle=False):
        b = data.batch(idx).to(device)
        with autocast(device, precision):
            logits, _ = model(b.src, b.src_lens, b.tgt_in)
        total += float(F.cross_entropy(logits.float().flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD,
                                       reduction="sum"))
        tokens += b.num_tgt_tokens
    return total / max(tokens, 1)


def save_checkpoint(run: Run, best: bool, step_copy: bool) -> None:
    """last.pt (atomically), and a step_N.pt / best.pt link to it; rank 0 only."""
    if not run.dist.main:
        return
    last = os.path.join(run.ckpt_dir, "last.pt")
    atomic_save(make_checkpoint(run.model, to_dict(run.cfg), run.tok, optimizer=run.optimizer.state_dict(),
                                scheduler=run.scheduler.state_dict(), train_state=asdict(run.state),
                                rng=rng_state(), **({"shortlist": run.shortlist} if run.shortlist else {})), last)
    if step_copy and run.cfg.train.keep_last > 0:
        atomic_link(last, os.path.join(run.ckpt_dir, f"step_{run.state.step}.pt"))
        prune(run.ckpt_dir, run.cfg.train.keep_last)
    if best:
        atomic_link(last, os.path.join(run.ckpt_dir, "best.pt"))


def validate(run: Run) -> bool:
    """Validate on rank 0 and checkpoint; True when early stopping says stop (same answer on all ranks)."""
    s, t = run.state, run.cfg.train
    stop = False
    run.window.validated_at = s.step
    if run.dist.main:
        start = time.time()
        log.info("step %d: validating on %d sentences", s.step, len(run.valid))
        loss = valid_loss(run.model, run.valid, run.device, t.max_tokens, t.precision)
        hyps = [h[0][0] for h in run.translator.translate(run.valid.src_text)]
        scores = sacre_score(hyps, [run.valid.tgt_text])
        bleu = scores["bleu"]["score"]
        improved = bleu > s.best_bleu
        if improved:
            s.best_bleu, s.best_step, s.bad_validations = bleu, s.step, 0
        else:
            s.bad_validations += 1
        run.scheduler.step_valid(bleu, loss)
        w = run.window
        clipped_share = w.valid_clipped / max(w.valid_updates, 1)
        run.metrics.write("valid", s.step, {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": bleu,
                                            "chrf": scores["chrf"]["score"], "seconds": time.time() - start,
                                            "clipped_share": clipped_share})
        run.metrics.flush()
        log.info("step %d | valid loss %.3f ppl %.2f | BLEU %.2f chrF %.2f | best BLEU %.2f at step %d%s | "
                 "%.0f%% of %d updates clipped | %.1f s", s.step, loss, math.exp(min(loss, 50)), bleu,
                 scores["chrf"]["score"], s.best_bleu, s.best_step,
                 "" if improved else f" ({s.bad_validations} without improvement)", 100 * clipped_share,
                 w.valid_updates, time.time() - start)
        w.valid_updates, w.valid_clipped = 0, 0
        stop = bool(t.patience) and s.bad_validations >= t.patience
        save_checkpoint(run, best=improved, step_copy=True)
        draw_plots(run)
    if run.dist.enabled:  # a plateau schedule reacts to rank 0's validation: every rank follows it
        run.scheduler.load_state_dict(run.dist.broadcast(run.scheduler.state_dict()))
        run.scheduler.step_update(s.step)
    return run.dist.broadcast(stop)


def draw_plots(run: Run) -> None:
    if run.dist.main and run.cfg.train.plots:
        from .. import plots
        plots.learning_curves(read_metrics(run.metrics.path), os.path.join(run.run_dir, "plots"),
                              clip_norm=run.cfg.train.clip_grad_norm)


def record_grad_flow(run: Run, batch_indices: Sequence[int]) -> None:
    if not run.dist.main:
        return
    b = run.train.batch(batch_indices).to(run.device)
    flow = grad_flow(run.model, b, run.cfg.train.label_smoothing)
    run.metrics.write("grad_flow", run.state.step, flow)
    far = [v for v in flow["encoder"] if v]
    log.info("step %d | gradient flow: encoder |dL/dh| %.3g at distance 0, %.3g at %d | decoder %.3g at 0",
             run.state.step, far[0] if far else 0.0, far[-1] if far else 0.0, len(far) - 1,
             (flow["decoder"] or [0.0])[0] or 0.0)


def translate_test(run: Run) -> Optional[Dict]:
    """best.pt translates data.test with beam search (``train.test_beam``, nmt-translate's other
    defaults); writes RUN_DIR/test/hyp.txt and RUN_DIR/test/scores.json and logs the scores."""
    d, t = run.cfg.data, run.cfg.train
    if not run.dist.main or not d.test:
        return None
    best, step = os.path.join(run.ckpt_dir, "best.pt"), run.state.best_step
    if not os.path.exists(best):
        best, step = os.path.join(run.ckpt_dir, "last.pt"), run.state.step
    test = read_split(d.test, "test", d.src_lang, d.tgt_lang)
    start = time.time()
    loaded = load_model(best, run.device)
    translator = Translator(loaded.model, loaded.tokenizer, SearchOptions(beam_size=t.test_beam),
                            precision=t.precision)
    hyps = [n[0][0] for n in translator.translate(test.src)]
    scores = sacre_score(hyps, [test.tgt])
    out_dir = os.path.join(run.run_dir, "test")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "hyp.txt"), "w", encoding="utf-8") as f:
        f.writelines(h + "\n" for h in hyps)
    result = {"checkpoint": best, "step": step, "precision": resolve_precision(t.precision, run.device),
              "source": test.src_path, "reference": test.tgt_path, "beam": t.test_beam,
              "sentences": len(hyps), "seconds": round(time.time() - start, 2),
              **{k: {"score": v["score"], "signature": v["signature"]} for k, v in scores.items()}}
    with open(os.path.join(out_dir, "scores.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    run.metrics.write("test", run.state.step, {"bleu": scores["bleu"]["score"], "chrf": scores["chrf"]["score"]})
    log.info("test (%s, beam %d, %s of step %d, %s): %s | %s", test.src_path, t.test_beam, os.path.basename(best),
             step, result["precision"], scores["bleu"]["text"], scores["chrf"]["text"])
    log.info("test signatures: BLEU %s | chrF %s", scores["bleu"]["signature"], scores["chrf"]["signature"])
    return result


# ---- the loop ----------------------------------------------------------------------------------------

def stop_reason(run: Run, validated_stop: bool, stop_votes: float, signal_requested: bool) -> Optional[str]:
    t, s = run.cfg.train, run.state
    if validated_stop:
        return "early_stopping"
    if t.max_steps and s.step >= t.max_steps:
        return "max_steps"
    if stop_votes > 0:
        return "signal" if signal_requested else "max_minutes"
    return None


def train_epoch(run: Run, stop_signal: StopSignal, bar) -> Optional[str]:
    """The updates of the current epoch from ``state.position``; the stop reason, or None at its end."""
    t, s, dist = run.cfg.train, run.state, run.dist
    per_update = dist.world * t.accum_steps
    order = make_batches(run.train.src_lens, run.train.tgt_lens, t.max_tokens, t.max_sentences, t.seed, s.epoch)
    updates = len(order) // per_update
    if updates == 0:
        raise TrainingError(f"the training data gives {len(order)} batches, fewer than the {per_update} one update "
                            f"needs (ranks x accum_steps); lower train.max_tokens")
    if s.position == 0:
        log.info("epoch %d: %d batches, padding %.1f%%", s.epoch + 1, len(order),
                 100 * padding_fraction(order, run.train.src_lens, run.train.tgt_lens))
    while s.position // per_update < updates:
        mine = order[s.position + dist.rank * t.accum_steps: s.position + (dist.rank + 1) * t.accum_steps]
        if t.grad_flow_every and s.step % t.grad_flow_every == 0:
            record_grad_flow(run, mine[0])
        u = run_update(run, mine)
        out_of_time = bool(t.max_minutes) and time.time() - run.start_time > 60 * t.max_minutes
        (stop_votes,) = dist.all_sum([float(stop_signal.requested or out_of_time)])
        check_health(run, u)
        log_update(run, u)
        bar.update(1)
        early = validate(run) if s.step % t.valid_every == 0 else False
        reason = stop_reason(run, early, stop_votes, stop_signal.requested)
        if reason:
            return reason
    s.epoch, s.position = s.epoch + 1, 0
    return None


def fit(cfg: Config, run_dir: str) -> Dict:
    """Train as ``cfg`` says, in ``run_dir``; returns a summary (steps, best BLEU, test scores, stop reason)."""
    preflight(cfg, run_dir, run_dir_checks=int(os.environ.get("RANK", "0")) == 0)
    device = pick_device(cfg.train.device, int(os.environ.get("LOCAL_RANK", "0")))
    dist = Dist.from_env(device)
    run_dir = dist.broadcast(os.path.abspath(run_dir))
    if dist.main:
        os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    dist.barrier()
    lock = RunLock(run_dir).acquire() if dist.main else None
    handlers = _setup_logging(run_dir, dist.main)
    if dist.main:
        remove_partial_checkpoints(os.path.join(run_dir, "checkpoints"))
    try:
        return _fit(cfg, run_dir, device, dist)
    finally:
        for h in handlers:
            logging.getLogger("nmt").removeHandler(h)
            h.close()
        if lock is not None:
            lock.release()
        dist.close()


def _fit(cfg: Config, run_dir: str, device, dist: Dist) -> Dict:
    threads = pick_threads(cfg.train.threads)
    log.info("device %s, %d torch threads (OMP_WAIT_POLICY=%s)%s", device, threads,
             os.environ.get("OMP_WAIT_POLICY", "unset"), f", {dist.world} processes" if dist.enabled else "")
    if device.type == "cpu" and cfg.train.threads <= 0 and (busy := check_busy(threads)):
        log.warning(busy)
    ckpt = _resume_checkpoint(cfg, run_dir) if cfg.resume else None
    init = check_init_from(cfg) if cfg.train.init_from and ckpt is None else None
    if dist.main:
        OmegaConf.save(OmegaConf.create(to_dict(cfg)), os.path.join(run_dir, "config.yaml"))
    torch.manual_seed(cfg.train.seed)
    random.seed(cfg.train.seed)
    tok, train, valid = prepare_data(cfg, ckpt or init, run_dir, dist,
                                     resumed_corpus=ckpt["train_state"].get("corpus") if ckpt else None)
    model, optimizer, scheduler, state_dict = build_training(cfg, tok, device, ckpt, init)
    state = TrainState(**state_dict) if state_dict else TrainState()
    state.corpus = train.fingerprint or ""
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
        log.info("resumed from %s at step %d (epoch %d)", os.path.join(run_dir, "checkpoints", "last.pt"),
                 state.step, state.epoch + 1)
    log.info("model: %s parameters", f"{count_parameters(model):,}")
    from .loss import Objective
    objective = Objective(model, cfg.train.label_smoothing)
    t = cfg.train
    validation_options = SearchOptions(strategy="beam" if t.valid_beam > 1 else "greedy", beam_size=t.valid_beam,
                                       max_len_a=t.valid_max_len_a, max_len_b=t.valid_max_len_b)
    run = Run(cfg=cfg, run_dir=run_dir, device=device, dist=dist, tok=tok, train=train, valid=valid, model=model,
              net=DDP(objective) if dist.enabled else objective, optimizer=optimizer, scheduler=scheduler,
              state=state, start_step=state.step,
              metrics=MetricsLog(run_dir, t.tensorboard, resume_step=state.step if ckpt else -1) if dist.main else None,
              translator=Translator(model, tok, validation_options, batch_size=t.valid_batch_size,
                                    precision=t.precision),
              shortlist=training_shortlist(train, tok) if dist.main else None)
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
             reason, state.step, state.best_bleu, state.best_step, run.ckpt_dir)
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
        run.metrics.close()
        with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    return summary


def validate_final(run: Run, reason: str) -> bool:
    """However training stopped (steps, epochs, time budget, signal), the final weights are validated,
    so best.pt and the test translation use them when they are the better ones. last.pt is saved
    first: a second Ctrl-C during this validation skips it (and the test) and loses no update.
    Returns False when interrupted."""
    s = run.state
    if run.window.validated_at == s.step or s.step == run.start_step:  # validated, or nothing new since the start
        return True
    if reason not in ("max_steps", "max_epochs"):
        save_checkpoint(run, best=False, step_copy=False)  # every update is kept, whatever happens next
        if reason == "signal":
            log.warning("validating the final weights (step %d) before stopping; Ctrl-C again to skip", s.step)
    try:
        validate(run)
    except KeyboardInterrupt:
        log.warning("final validation skipped (interrupted); last.pt holds step %d", s.step)
        return False
    if run.dist.main:
        log.info("final weights (step %d) %s: best.pt is step %d (valid BLEU %.2f)", s.step,
                 "are the best so far" if s.best_step == s.step else "did not beat the best", s.best_step,
                 s.best_bleu)
    return True


def _resume_checkpoint(cfg: Config, run_dir: str) -> Dict:
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


def _setup_logging(run_dir: str, main: bool) -> list:
    """INFO to stderr and RUN_DIR/train.log on rank 0 (Hydra may already provide both)."""
    logger = logging.getLogger("nmt")
    logger.setLevel(logging.INFO if main else logging.WARNING)
    path = os.path.abspath(os.path.join(run_dir, "train.log"))
    handlers, added = logging.getLogger().handlers + logger.handlers, []
    if main and not any(getattr(h, "baseFilename", None) == path for h in handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        added.append(handler)
    if not any(type(h) is logging.StreamHandler for h in handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
        added.append(stream)
    for h in added:
        logger.addHandler(h)
    return added
