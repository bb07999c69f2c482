"""One update: forward, token-level loss, backward, clipping, optimizer step (``train_step``); the
run's update with its teacher-forcing ratio and schedule (``run_update``); and the health checks
that stop a diverging run (``check_health``)."""
from __future__ import annotations

import contextlib
import logging
import math
import statistics
from typing import List, Optional, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from ..config import Feed, Precision
from ..data.batching import Batch
from ..precision import autocast
from .run import Run, Update
from .rundir import TrainingError
from .schedules import guided_alignment_weight, teacher_forcing_ratio

log = logging.getLogger("nmt.train")


def train_step(objective, batches: List[Batch], optimizer, tf_ratio: float, feed: Feed = Feed.argmax,
               clip_norm: float = 1.0, clip_value: float = 0.0, precision: Precision = Precision.fp32,
               scaler: Optional[torch.amp.GradScaler] = None, align_weight: float = 0.0):
    """One update over ``batches`` (gradient accumulation): forward, token-level loss, backward,
    clipping, optimizer step. The loss is the mean over batches of each batch's per-token mean.

    ``objective`` is an ``Objective`` (possibly inside DistributedDataParallel); ``scaler``: fp16's
    loss scaling (``precision.loss_scaler``; the gradients are unscaled before the norm is taken);
    ``align_weight``: guided alignment's weight, for batches that carry alignments.
    Returns (summed token loss, summed token nll, target tokens, pre-clip gradient norm, applied,
    the guided alignment loss: its mean over the batches, 0 without guidance).
    A non-finite loss or gradient skips the update (under fp16 the scaler then lowers its scale).
    """
    scaler = scaler if scaler is not None else torch.amp.GradScaler(enabled=False)
    objective.train()
    optimizer.zero_grad(set_to_none=True)
    device = batches[0].src.device
    loss_sum, nll_sum, tokens, guided_sum = 0.0, 0.0, 0, 0.0
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        sync = objective.no_sync() if isinstance(objective, DDP) and not last else contextlib.nullcontext()
        with sync:
            with autocast(device, precision):
                loss, nll, guided = objective(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out,
                                              tf_ratio=tf_ratio, feed=feed, align=batch.align,
                                              align_weight=align_weight)
            scaler.scale(loss / len(batches)).backward()
        n = batch.num_tgt_tokens
        guided_sum += guided.item()
        loss_sum += (loss.item() - align_weight * guided.item()) * n  # the reported loss: cross-entropy alone
        nll_sum += nll.item() * n
        tokens += n
    scaler.unscale_(optimizer)
    params = [p for p in objective.parameters() if p.grad is not None]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip_norm if clip_norm > 0 else float("inf")))
    finite = math.isfinite(grad_norm) and math.isfinite(loss_sum)
    if finite:
        if clip_value > 0:
            torch.nn.utils.clip_grad_value_(params, clip_value)
        scaler.step(optimizer)  # optimizer.step(), unless the scaler saw an overflow
    scaler.update()  # fp16: the scale halves after an overflow, doubles after a run of clean updates
    return loss_sum, nll_sum, tokens, grad_norm, finite, guided_sum / len(batches)


def run_update(run: Run, batch_indices: Sequence[Sequence[int]]) -> Update:
    t, tf_cfg = run.cfg.train, run.cfg.teacher_forcing
    batches = [run.data.batch(idx).to(run.device) for idx in batch_indices]
    tf = teacher_forcing_ratio(run.state.step, tf_cfg.schedule, tf_cfg.start, tf_cfg.end, tf_cfg.decay_steps,
                               tf_cfg.k)
    lr = run.optimizer.param_groups[0]["lr"]
    align_weight = guided_alignment_weight(run.state.step, t.guided_alignment_weight, t.guided_alignment_decay_steps)
    loss_sum, nll_sum, tokens, gnorm, finite, guided = train_step(
        run.net, batches, run.optimizer, tf, tf_cfg.feed, t.clip_grad_norm, t.clip_grad_value, t.precision,
        run.scaler, align_weight)
    loss_sum, nll_sum, tokens, guided = run.dist.all_sum([loss_sum, nll_sum, tokens, guided])
    run.state.advance(run.dist.world * t.accum_steps)
    if finite and run.ema is not None:
        run.ema.update(run.model, run.state.step)
    run.scheduler.step_update(run.state.step)
    tokens = int(tokens)
    overflow = not finite and run.scaler.is_enabled() and math.isfinite(loss_sum)  # the loss was fine
    return Update(loss_sum / max(tokens, 1), nll_sum / max(tokens, 1), tokens, gnorm, finite,
                  finite and t.clip_grad_norm > 0 and gnorm > t.clip_grad_norm, tf, lr, overflow,
                  guided / run.dist.world if align_weight > 0 else None)


def check_health(run: Run, u: Update) -> None:
    """Count non-finite and blown-up updates in a row; stop with an error after too many."""
    s, t = run.state, run.cfg.train
    if u.overflow:
        s.overflowed()
        scale = run.scaler.get_scale()
        log.warning("step %d: fp16 gradients overflowed: update skipped, loss scale now %g (%d overflows so far)",
                    s.step, scale, s.overflows)
        if scale < 1:
            raise TrainingError(f"stopping at step {s.step}: the fp16 loss scale fell to {scale:g}, so the gradients "
                                f"overflow fp16 unscaled; train in bf16 or fp32, or lower optim.lr (the last good "
                                f"checkpoint is kept)")
        return
    if not u.applied:
        in_a_row = s.skipped_update()
        log.warning("step %d: non-finite loss or gradient (loss %s, grad norm %s): update skipped",
                    s.step, u.loss, u.grad_norm)
        if in_a_row >= t.max_nonfinite:
            raise TrainingError(f"stopping at step {s.step}: {in_a_row} non-finite updates in a row; lower "
                                f"optim.lr or check the data (the last good checkpoint is kept)")
        return
    recent = run.window.recent
    blown = bool(t.blowup_factor) and len(recent) >= 10 and u.loss > t.blowup_factor * statistics.median(recent)
    in_a_row = s.applied_update(blown)
    if not blown:
        recent.append(u.loss)
        return
    log.warning("step %d: loss %.4g is %.0fx the median of the last %d updates (%.4g): training is diverging; "
                "lower optim.lr or train.clip_grad_norm", s.step, u.loss, u.loss / statistics.median(recent),
                len(recent), statistics.median(recent))
    if in_a_row >= t.max_blowups:
        raise TrainingError(f"stopping at step {s.step}: the loss blew up for {in_a_row} updates in a row "
                            f"(now {u.loss:.4g}); lower optim.lr (the last good checkpoint is kept)")
