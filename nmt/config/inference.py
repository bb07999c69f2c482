"""``InferenceSettings``: how a trained model is loaded and run for translation (device, precision,
compressed weights, threads, the lexical shortlist, batching), declared once. ``nmt-translate``'s and
``nmt-serve``'s flags, ``nmt-score``'s, ``nmt.load`` and ``Model.translate`` take their defaults
from these fields; how to search is ``SearchOptions``'."""
from __future__ import annotations

from dataclasses import dataclass

from .choices import FROM_CHECKPOINT


@dataclass(frozen=True)
class InferenceSettings:
    device: str = "cpu"  # cpu, cuda or auto
    precision: str = FROM_CHECKPOINT  # one of INFERENCE_PRECISIONS: by default what the model trained with
    int8: bool = False  # dynamic int8 quantization of the linear and RNN layers (CPU)
    fp16_weights: bool = False  # linear and RNN weights stored in fp16, multiplied in fp32 (CPU)
    threads: int = 0  # torch threads (0: the CPUs this process may use)
    shortlist: int = 0  # lexical shortlist: each source token's K likeliest target tokens (0: off)
    shortlist_frequent: int = 100  # and the N most frequent target tokens, always candidates
    batch_size: int = 64  # sentences per search batch
    max_tokens: int = 8000  # padded source tokens per search batch
