"""Teacher-forcing schedules (pure functions of the step) and learning-rate schedules."""
from __future__ import annotations

import math
from typing import Optional

import torch

from ..config import OptimizerName, PlateauMetric, Scheduler, TfSchedule, require, teacher_forcing_k_rule


def guided_alignment_weight(step: int, weight: float, decay_steps: int = 0) -> float:
    """The guided alignment weight at update ``step``: ``weight``, or with ``decay_steps`` falling
    linearly from it to 0 at that update (attention guided early, then free to serve the translation)."""
    if decay_steps <= 0:
        return weight
    return weight * max(0.0, 1.0 - step / decay_steps)


def teacher_forcing_ratio(step: int, schedule: TfSchedule = TfSchedule.constant, start: float = 1.0, end: float = 0.0,
                          decay_steps: int = 10_000, k: float = 0.999) -> float:
    """Probability of feeding the gold token at training step ``step`` (0-based).

    constant:        start
    linear:          from start to end over ``decay_steps`` steps, then end
    exponential:     end + (start - end) * k**step            (0 < k < 1)
    inverse_sigmoid: end + (start - end) * k / (k + exp(step / k))   (k >= 1; Bengio et al., 2015)
    """
    schedule = TfSchedule(schedule)
    require(teacher_forcing_k_rule(schedule, k))
    if schedule is TfSchedule.constant:
        return float(start)
    if schedule is TfSchedule.linear:
        frac = min(1.0, step / max(1, decay_steps))
        return float(start + (end - start) * frac)
    if schedule is TfSchedule.exponential:
        return float(end + (start - end) * k ** step)
    z = step / k  # inverse_sigmoid
    decay = k / (k + math.exp(z)) if z < 700 else 0.0
    return float(end + (start - end) * decay)


def build_optimizer(params, name: OptimizerName, lr: float, betas=(0.9, 0.999), momentum: float = 0.0,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if OptimizerName(name) is OptimizerName.adam:
        params = list(params)
        try:  # one fused kernel instead of a dozen passes over the parameters (CPU and CUDA)
            return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


class LRSchedule:
    """constant | inverse_sqrt (linear warm-up, then lr * sqrt(warmup / step)) | plateau | linear |
    cosine. Every kind but constant warms up linearly over ``warmup_steps``.

    linear and cosine decay from the rate to ``min_lr`` over the run's budget: the progress is the
    larger of ``step / budget_steps`` and ``minutes / budget_minutes`` (whichever ends the run first),
    so a run stopped by ``train.max_minutes`` ends at the bottom of its schedule. With
    ``decay_fraction`` f < 1 the rate stays constant for the first 1 - f of the budget and decays over
    the last f only (warm-up, stable, decay).

    ``step_update(step[, minutes])`` is called after every update, ``step_valid(bleu, loss)`` after
    every validation (only plateau reacts). Its whole state is in ``state_dict`` for exact resume.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, kind: Scheduler = Scheduler.constant, warmup_steps: int = 0,
                 metric: PlateauMetric = PlateauMetric.bleu, factor: float = 0.5, patience: int = 2,
                 min_lr: float = 1e-6, budget_steps: int = 0, budget_minutes: float = 0.0,
                 decay_fraction: float = 1.0):
        self.optimizer, self.kind, self.warmup = optimizer, Scheduler(kind), warmup_steps
        self.base_lr = optimizer.param_groups[0]["lr"]
        self.metric, self.factor, self.patience, self.min_lr = PlateauMetric(metric), factor, patience, min_lr
        self.scale, self.bad = 1.0, 0
        self.best: Optional[float] = None
        self.budget_steps, self.budget_minutes, self.minutes = budget_steps, budget_minutes, 0.0
        self.decay_fraction = decay_fraction
        self.step_update(0)

    def progress(self, step: int) -> float:
        """How much of the budget is spent, in [0, 1]."""
        parts = [step / self.budget_steps if self.budget_steps else 0.0,
                 self.minutes / self.budget_minutes if self.budget_minutes else 0.0]
        return min(1.0, max(parts))

    def lr_at(self, step: int) -> float:
        lr = self.base_lr * self.scale
        if self.warmup and step < self.warmup:
            lr *= (step + 1) / self.warmup
        elif self.kind is Scheduler.inverse_sqrt and self.warmup:
            lr *= math.sqrt(self.warmup / max(step, 1))
        elif self.kind in (Scheduler.linear, Scheduler.cosine):
            p = max(0.0, self.progress(step) - (1.0 - self.decay_fraction)) / self.decay_fraction  # of the decay
            decay = 1.0 - p if self.kind is Scheduler.linear else 0.5 * (1.0 + math.cos(math.pi * p))
            return self.min_lr + (lr - self.min_lr) * decay
        return max(lr, self.min_lr) if self.kind is not Scheduler.constant else lr

    def step_update(self, step: int, minutes: Optional[float] = None) -> None:
        """Set the rate for the update after ``step``; ``minutes``: the run's time so far (the same
        on every rank), for a budget in minutes."""
        if minutes is not None:
            self.minutes = minutes
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)

    def step_valid(self, bleu: float, loss: float) -> None:
        if self.kind is not Scheduler.plateau:
            return
        value = bleu if self.metric is PlateauMetric.bleu else -loss
        if self.best is None or value > self.best:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            if self.bad > self.patience:
                self.scale *= self.factor
                self.bad = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad": self.bad, "minutes": self.minutes}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad = state["scale"], state["best"], state["bad"]
        self.minutes = state.get("minutes", 0.0)
