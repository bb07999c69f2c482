"""What a run reports: a log line and a metrics record per update, learning-curve plots,
gradient-flow records, and the logging set-up (stderr and RUN_DIR/train.log)."""
from __future__ import annotations

import logging
import math
import os
import time
from typing import List, Sequence

from .grad_flow import grad_flow
from .metrics import read_metrics
from .run import Run, Update

log = logging.getLogger("nmt.train")


def log_update(run: Run, u: Update) -> None:
    """metrics.jsonl every update; one plain log line every ``train.log_every`` updates."""
    s, w = run.state, run.window
    w.count(u)
    if not run.dist.main:
        return
    run.records.write("train", s.step, {"loss": u.loss, "nll": u.nll, "grad_norm": u.grad_norm, "lr": u.lr,
                                        "tf_ratio": u.tf_ratio, "tokens": u.tokens, "applied": int(u.applied),
                                        "clipped": int(u.clipped),
                                        **({"loss_scale": run.scaler.get_scale()} if run.scaler.is_enabled() else {}),
                                        **({"align": u.align} if u.align is not None else {})})
    if s.step % run.cfg.train.log_every and s.step != 1:
        return
    now = time.time()
    elapsed = int(now - run.start_time)
    log.info("step %d | epoch %d | loss %.4f | nll %.4f | ppl %.2f%s | lr %.3g | tf %.2f | gnorm %.3f%s | "
             "%.0f tok/s | %d:%02d:%02d", s.step, s.epoch + 1, u.loss, u.nll, math.exp(min(u.nll, 50)),
             f" | align {u.align:.4f}" if u.align is not None else "", u.lr,
             u.tf_ratio, u.grad_norm, f" (clipped {w.clipped}/{w.updates})" if w.clipped else "",
             w.tokens / max(now - w.since, 1e-9), elapsed // 3600, elapsed // 60 % 60, elapsed % 60)
    w.logged(now)
    run.records.flush()


def draw_plots(run: Run) -> None:
    if run.dist.main and run.cfg.train.plots:
        from .. import plots
        plots.learning_curves(read_metrics(run.records.path), os.path.join(run.run_dir, "plots"),
                              clip_norm=run.cfg.train.clip_grad_norm)


def record_grad_flow(run: Run, batch_indices: Sequence[int]) -> None:
    if not run.dist.main:
        return
    b = run.data.batch(batch_indices).to(run.device)
    flow = grad_flow(run.model, b, run.cfg.train.label_smoothing)
    run.records.write("grad_flow", run.state.step, flow)
    far = [v for v in flow["encoder"] if v]
    log.info("step %d | gradient flow: encoder |dL/dh| %.3g at distance 0, %.3g at %d | decoder %.3g at 0",
             run.state.step, far[0] if far else 0.0, far[-1] if far else 0.0, len(far) - 1,
             (flow["decoder"] or [0.0])[0] or 0.0)


def setup_logging(run_dir: str, main: bool) -> list:
    """INFO to stderr and RUN_DIR/train.log on rank 0 (Hydra may already provide both)."""
    logger = logging.getLogger("nmt")
    logger.setLevel(logging.INFO if main else logging.WARNING)
    path = os.path.abspath(os.path.join(run_dir, "train.log"))
    handlers = logging.getLogger().handlers + logger.handlers
    added: List[logging.Handler] = []
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
