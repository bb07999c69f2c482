"""Config choices: ``Choice`` Enums (each compares equal to its string value) and ``choose``, the
check at the boundaries Hydra does not guard."""
from __future__ import annotations

import enum
from typing import Any

from ..errors import ConfigError


class Choice(str, enum.Enum):
    """A config choice: compares equal to its string value and prints as it."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


Cell = Choice("Cell", {n: n for n in ("rnn", "gru", "lstm")})
AttentionKind = Choice("AttentionKind", {n: n for n in ("final", "none", "bahdanau", "luong_dot", "luong_general")})
BridgeKind = Choice("BridgeKind", {n: n for n in ("zeros", "last", "bridge")})
Init = Choice("Init", {n: n for n in ("uniform", "xavier", "orthogonal")})
TfSchedule = Choice("TfSchedule", {n: n for n in ("constant", "linear", "exponential", "inverse_sigmoid")})
Feed = Choice("Feed", {n: n for n in ("argmax", "sample")})
OptimizerName = Choice("OptimizerName", {n: n for n in ("adam", "sgd")})
Scheduler = Choice("Scheduler", {n: n for n in ("constant", "plateau", "inverse_sqrt", "linear", "cosine")})
PlateauMetric = Choice("PlateauMetric", {n: n for n in ("bleu", "loss")})
Precision = Choice("Precision", {n: n for n in ("fp32", "bf16", "auto")})
FROM_CHECKPOINT = "checkpoint"  # translating at the precision the model trained with (the default)
INFERENCE_PRECISIONS = (FROM_CHECKPOINT, *(m.value for m in Precision))
Device = Choice("Device", {n: n for n in ("auto", "cpu", "cuda")})
SpmType = Choice("SpmType", {n: n for n in ("unigram", "bpe")})
Generate = Choice("Generate", {"toy": "toy"})


def choose(kind: type, value: Any, key: str) -> Any:
    """``value`` as a member of the choice ``kind``: the check at a boundary that Hydra does not
    guard (a Python API argument, a command-line flag); ConfigError naming ``key`` otherwise."""
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r}: choose one of {', '.join(m.value for m in kind)}") from None
