"""Config choices: ``Choice`` Enums (each compares equal to its string value) and ``choose``, the
check at the boundaries Hydra does not guard."""
from __future__ import annotations

import enum
from typing import Any, Type, TypeVar

from ..errors import ConfigError


class Choice(str, enum.Enum):
    """A config choice: compares equal to its string value and prints as it."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Cell(Choice):
    rnn = "rnn"
    gru = "gru"
    lstm = "lstm"


class AttentionKind(Choice):
    final = "final"
    none = "none"
    bahdanau = "bahdanau"
    luong_dot = "luong_dot"
    luong_general = "luong_general"


class BridgeKind(Choice):
    zeros = "zeros"
    last = "last"
    bridge = "bridge"


class FactorCombine(Choice):
    concat = "concat"
    sum = "sum"


class Init(Choice):
    uniform = "uniform"
    xavier = "xavier"
    orthogonal = "orthogonal"


class TfSchedule(Choice):
    constant = "constant"
    linear = "linear"
    exponential = "exponential"
    inverse_sigmoid = "inverse_sigmoid"


class Feed(Choice):
    argmax = "argmax"
    sample = "sample"


class OptimizerName(Choice):
    adam = "adam"
    sgd = "sgd"


class Scheduler(Choice):
    constant = "constant"
    plateau = "plateau"
    inverse_sqrt = "inverse_sqrt"
    linear = "linear"
    cosine = "cosine"


class PlateauMetric(Choice):
    bleu = "bleu"
    loss = "loss"


class Precision(Choice):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    auto = "auto"


FROM_CHECKPOINT = "checkpoint"  # translating at the precision the model trained with (the default)
INFERENCE_PRECISIONS = (FROM_CHECKPOINT, *(m.value for m in Precision))



class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class SpmType(Choice):
    unigram = "unigram"
    bpe = "bpe"


class Generate(Choice):
    toy = "toy"


E = TypeVar("E", bound=Choice)


def choose(kind: Type[E], value: Any, key: str) -> E:
    """``value`` as a member of the choice ``kind``: the check at a boundary that Hydra does not
    guard (a Python API argument, a command-line flag); ConfigError naming ``key`` otherwise."""
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r}: choose one of {', '.join(m.value for m in kind)}") from None
