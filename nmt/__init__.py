"""nmt: recurrent sequence-to-sequence neural machine translation.

    import nmt
    model = nmt.load("runs/m30k")                 # a checkpoint, a run directory, or a list (ensemble)
    model.translate(["Ein Hund rennt."])          # -> ["A dog is running."]
    model.score(sources, targets)                 # -> log-probabilities
    nmt.train(["experiment=toy", "run_dir=runs/x"])

Importing ``nmt`` loads nothing heavy (no torch, no matplotlib) and changes no global state.
"""
from __future__ import annotations

from .config.inference import InferenceSettings as _Defaults  # no torch, no Hydra

__version__ = "0.2.0"
__all__ = ["__version__", "load", "train"]


def load(path, device=_Defaults.device, precision: str = _Defaults.precision, int8: bool = _Defaults.int8,
         fp16_weights: bool = _Defaults.fp16_weights, threads: int = _Defaults.threads):
    """See ``nmt.api.load`` (``device``: a name or a ``torch.device``; ``path`` may be an exported
    bundle, run by ONNX Runtime without torch)."""
    from .api import load as _load
    return _load(path, device, precision, int8=int8, fp16_weights=fp16_weights, threads=threads)


def train(overrides=(), config_name: str = "train") -> dict:
    """See ``nmt.api.train``."""
    from .api import train as _train
    return _train(overrides, config_name)
