"""What greedy, sampling and beam search share: hypotheses, length limits, option checks."""
from __future__ import annotations

from typing import List, NamedTuple

import torch

from ..data.spm import EOS


class Hypothesis(NamedTuple):
    tokens: List[int]  # target ids, without EOS
    score: float  # log-probability (beam: after the length penalty)


def max_lengths(src_lens: torch.Tensor, a: float, b: int) -> torch.Tensor:
    """(batch,) longest output per sentence, ``a * source length + b`` (source without its EOS)."""
    return ((src_lens - 1).clamp(min=0).double() * a + b).floor().clamp(min=1).long()


def check_options(beam_size: int = 1, nbest: int = 1, min_len: int = 0, max_len_a: float = 0.0,
                  max_len_b: int = 1, temperature: float = 1.0, top_k: int = 0) -> None:
    """Reject invalid search options before any decoding, with a message naming the option."""
    if beam_size < 1:
        raise ValueError(f"beam size must be >= 1, got {beam_size}")
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be between 1 and the beam size ({beam_size}), got {nbest}")
    if min_len < 0:
        raise ValueError(f"min length must be >= 0, got {min_len}")
    if max_len_a < 0 or max_len_b < 0 or (max_len_a == 0 and max_len_b < 1):
        raise ValueError(f"max length a*src_len+b must allow at least one token (a={max_len_a}, b={max_len_b})")
    if max_len_a == 0 and min_len > max_len_b:
        raise ValueError(f"min length ({min_len}) exceeds max length ({max_len_b})")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k < 0:
        raise ValueError(f"top-k must be >= 0, got {top_k}")


def constrain(logp: torch.Tensor, t: int, min_len: int, at_max: torch.Tensor) -> torch.Tensor:
    """Forbid EOS before ``min_len`` tokens; allow only EOS where the length limit is reached.

    logp: (rows, vocab) log-probabilities or logits, changed in place; at_max: (rows,) bool.
    """
    if t < min_len:
        logp[:, EOS] = float("-inf")
    if bool(at_max.any()):
        eos_lp = logp[:, EOS].clone()
        logp[at_max] = float("-inf")
        logp[:, EOS] = torch.where(at_max, eos_lp, logp[:, EOS])
    return logp
