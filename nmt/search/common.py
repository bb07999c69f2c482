"""What greedy, sampling and beam search share: hypotheses, length limits, constraints."""
from __future__ import annotations

from typing import List, NamedTuple, Optional

import torch

from ..data.spm import BOS, EOS, PAD
from .options import MAX_OUTPUT_LEN


class Hypothesis(NamedTuple):
    tokens: List[int]  # target ids, without EOS
    score: float  # what search ranks by: the log-probability (beam: divided by the length penalty, plus the
    # coverage penalty when one is set)
    logprob: float = 0.0  # log-probability of tokens + EOS, before any length penalty


def max_lengths(src_lens: torch.Tensor, a: float, b: int) -> torch.Tensor:
    """(batch,) longest output per sentence, ``a * source length + b`` (source without its EOS), at
    most ``MAX_OUTPUT_LEN``."""
    return ((src_lens - 1).clamp(min=0).double() * a + b).floor().clamp(min=1, max=MAX_OUTPUT_LEN).long()


def constrain(logp: torch.Tensor, t: int, min_len: int, at_max: torch.Tensor) -> torch.Tensor:
    """Forbid EOS before ``min_len`` tokens; allow only EOS where the length limit is reached; never
    emit PAD or BOS (no training target holds them, but an untrained or damaged model may rank them high).

    logp: (rows, vocab) log-probabilities or logits, changed in place; at_max: (rows,) bool.
    """
    logp[:, PAD] = float("-inf")
    logp[:, BOS] = float("-inf")
    if t < min_len:
        logp[:, EOS] = float("-inf")
    if bool(at_max.any()):
        eos_lp = logp[:, EOS].clone()
        logp[at_max] = float("-inf")
        logp[:, EOS] = torch.where(at_max, eos_lp, logp[:, EOS])
    return logp


def block_repeats(logp: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """No n-gram twice: forbid every token that would complete an n-gram already in the row's
    history (as OpenNMT-py's and fairseq's ``no_repeat_ngram_size``). EOS is never forbidden.

    logp: (rows, vocab), changed in place; history: (rows, t) tokens so far.
    """
    t = history.size(1)
    if n < 1 or t < n - 1 or t == 0:
        return logp
    windows = history.unfold(1, n, 1) if t >= n else history.new_empty(history.size(0), 0, n)  # (rows, t-n+1, n)
    if n > 1:
        match = (windows[..., :-1] == history[:, t - n + 1:].unsqueeze(1)).all(-1)  # (rows, t-n+1)
    else:
        match = torch.ones(windows.shape[:2], dtype=torch.bool, device=history.device)
    rows, at = match.nonzero(as_tuple=True)
    banned = windows[rows, at, -1]
    keep = banned != EOS
    logp[rows[keep], banned[keep]] = float("-inf")
    return logp


class Prefix(NamedTuple):
    """Target prefixes a search must start with: ``tokens`` (batch, width) PAD-padded, ``lens``
    (batch,); a sentence with length 0 is searched freely."""
    tokens: torch.Tensor
    lens: torch.Tensor

    @classmethod
    def of(cls, prefixes, device) -> Prefix:
        from ..data.batching import pad
        return cls(pad(prefixes).to(device), torch.tensor([len(p) for p in prefixes], device=device))

    def force(self, logp: torch.Tensor, raw: torch.Tensor, t: int, sentence: torch.Tensor) -> torch.Tensor:
        """Rows (of sentences ``sentence``, (rows,)) whose prefix reaches past step ``t`` may only
        emit its t-th token, with its unconstrained score from ``raw``; logp changed in place."""
        if t >= self.tokens.size(1):
            return logp
        forced = (t < self.lens[sentence]).nonzero().squeeze(1)  # (n,) rows
        if forced.numel():
            tok = self.tokens[sentence[forced], t]  # (n,)
            keep = raw[forced, tok]
            logp[forced] = float("-inf")
            logp[forced, tok] = keep
        return logp


def length_limits(src_lens: torch.Tensor, options, prefix: Optional[Prefix], device) -> torch.Tensor:
    """(batch,) longest output per sentence (``max_lengths``), never shorter than its prefix."""
    limit = max_lengths(src_lens, options.max_len_a, options.max_len_b).to(device)
    return limit if prefix is None else torch.maximum(limit, prefix.lens)


def restrict(logits: torch.Tensor, t: int, options, at_max: torch.Tensor, history: torch.Tensor,
             prefix: Optional[Prefix] = None, sentence: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Every constraint on step ``t``'s candidates, in place: lengths and special tokens
    (``constrain``), n-gram blocking over each row's ``history`` (rows, t), and forced prefixes
    (``sentence``: each row's sentence id)."""
    raw = logits.clone() if prefix is not None else None
    constrain(logits, t, options.min_len, at_max)
    if options.no_repeat_ngram:
        block_repeats(logits, history, options.no_repeat_ngram)
    if prefix is not None:
        assert raw is not None and sentence is not None  # both come with every prefix
        prefix.force(logits, raw, t, sentence)
    return logits
