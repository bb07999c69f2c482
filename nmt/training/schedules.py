"""Teacher-forcing schedules (pure functions of the step) and learning-rate schedules."""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError

TF_SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")


def teacher_forcing_ratio(step: int, schedule: str = "constant", start: float = 1.0, end: float = 0.0,
                          decay_steps: int = 10_000, k: float = 0.999) -> float:
    """Probability of feeding the gold token at training step ``step`` (0-based).

    constant:        start
    linear:          from start to end over ``decay_steps`` steps, then end
    exponential:     end + (start - end) * k**step            (0 < k < 1)
    inverse_sigmoid: end + (start - end) * k / (k + exp(step / k))   (k >= 1; Bengio et al., 2015)
    """
    if schedule == "constant":
        return float(start)
    if schedule == "linear":
        frac = min(1.0, step / max(1, decay_steps))
        return float(start + (end - start) * frac)
    if schedule == "exponential":
        if not 0.0 < k < 1.0:
            raise ConfigError(f"exponential teacher forcing needs 0 < k < 1, got {k}")
        return float(end + (start - end) * k ** step)
    if schedule == "inverse_sigmoid":
        if k < 1.0:
            raise ConfigError(f"inverse_sigmoid teacher forcing needs k >= 1, got {k}")
        z = step / k
        decay = k / (k + math.exp(z)) if z < 700 else 0.0
        return float(end + (start - end) * decay)
    raise ConfigError(f"unknown teacher-forcing schedule {schedule!r}; choose one of {TF_SCHEDULES}")


def build_optimizer(params, name: str, lr: float, betas=(0.9, 0.999), momentum: float = 0.0,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if name == "adam":
        params = list(params)
        try:  # one fused kernel instead of a dozen passes over the parameters (CPU and CUDA)
            return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose adam or sgd")


class LRSchedule:
    """constant | inverse_sqrt (linear warm-up, then lr * sqrt(warmup / step)) | plateau.

    ``step_update(step)`` is called after every update, ``step_valid(bleu, loss)`` after every
    validation (only plateau reacts). Its whole state is in ``state_dict`` for exact resume.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, kind: str = "constant", warmup_steps: int = 0,
                 metric: str = "bleu", factor: float = 0.5, patience: int = 2, min_lr: float = 1e-6):
        if kind not in ("constant", "inverse_sqrt", "plateau"):
            raise ConfigError(f"unknown lr scheduler {kind!r}; choose constant, inverse_sqrt or plateau")
        if metric not in ("bleu", "loss"):
            raise ConfigError(f"plateau metric must be bleu or loss, got {metric!r}")
        self.optimizer, self.kind, self.warmup = optimizer, kind, warmup_steps
        self.base_lr = optimizer.param_groups[0]["lr"]
        self.metric, self.factor, self.patience, self.min_lr = metric, factor, patience, min_lr
        self.scale, self.best, self.bad = 1.0, None, 0
        self.step_update(0)

    def lr_at(self, step: int) -> float:
        lr = self.base_lr * self.scale
        if self.warmup and step < self.warmup:
            lr *= (step + 1) / self.warmup
        elif self.kind == "inverse_sqrt" and self.warmup:
            lr *= math.sqrt(self.warmup / max(step, 1))
        return max(lr, self.min_lr) if self.kind != "constant" else lr

    def step_update(self, step: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)

    def step_valid(self, bleu: float, loss: float) -> None:
        if self.kind != "plateau":
            return
        value = bleu if self.metric == "bleu" else -loss
        if self.best is None or value > self.best:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            if self.bad > self.patience:
                self.scale *= self.factor
                self.bad = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad = state["scale"], state["best"], state["bad"]
