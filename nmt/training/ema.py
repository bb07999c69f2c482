"""Exponential moving average of the weights (as Marian, fairseq and OpenNMT-py offer).

After every applied update, ``shadow = d * shadow + (1 - d) * weights`` with a warm start
``d = min(decay, (1 + step) / (10 + step))``, so early averages are not dominated by the random
initialisation. Validation, best.pt and the test translation use the averaged weights; the raw
training weights travel in the checkpoint as ``train_model`` so a resume continues exactly.
"""
from __future__ import annotations

import contextlib
from typing import Dict

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow: Dict[str, torch.Tensor] = {
            name: t.detach().float().clone() for name, t in model.state_dict().items() if t.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        current = model.state_dict()
        names = list(self.shadow)
        # torch's multi-tensor lerp (private but stable since 1.13; torch.optim's own EMA-style code uses
        # it): one kernel launch per dtype group instead of one per parameter
        torch._foreach_lerp_([self.shadow[n] for n in names], [current[n].float() for n in names], 1.0 - d)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The averaged weights as a full state dict of the model (non-float entries as they are)."""
        return dict(self.shadow)

    def load(self, state: Dict[str, torch.Tensor]) -> None:
        for name in self.shadow:
            self.shadow[name].copy_(state[name])

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """The model holds the averaged weights inside the block, its own again after it."""
        own = {n: t.detach().clone() for n, t in model.state_dict().items() if n in self.shadow}
        model.load_state_dict(self.shadow, strict=False)
        try:
            yield model
        finally:
            model.load_state_dict(own, strict=False)
