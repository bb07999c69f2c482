"""nmt: recurrent sequence-to-sequence neural machine translation.

    import nmt
    model = nmt.load("runs/m30k")                 # a checkpoint, a run directory, or a list (ensemble)
    model.translate(["Ein Hund rennt."])          # -> ["A dog is running."]
    model.score(sources, targets)                 # -> log-probabilities
    nmt.train(["experiment=toy", "run_dir=runs/x"])

Importing ``nmt`` loads nothing heavy (no torch, no matplotlib) and changes no global state.
"""
from __future__ import annotations

__version__ = "0.2.0"
__all__ = ["__version__", "load", "train"]


def load(path, device: str = "cpu", precision: str = "checkpoint"):
    """See ``nmt.api.load`` (``precision``: ``config.FROM_CHECKPOINT`` by default, spelled out here so
    that ``import nmt`` loads nothing)."""
    from .api import load as _load
    return _load(path, device, precision)


def train(overrides=(), config_name: str = "train") -> dict:
    """See ``nmt.api.train``."""
    from .api import train as _train
    return _train(overrides, config_name)
