"""What greedy, sampling and beam search share: hypotheses, length limits, constraints.

Written against ``arrays.py``'s operations (``xp``), so torch tensors and numpy arrays alike."""
from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Sequence

from ..data.spm import BOS, EOS, PAD
from .arrays import ops_for
from .options import MAX_OUTPUT_LEN


class Hypothesis(NamedTuple):
    tokens: List[int]  # target ids, without EOS
    score: float  # what search ranks by: the log-probability (beam: divided by the length penalty, plus the
    # coverage penalty when one is set)
    logprob: float = 0.0  # log-probability of tokens + EOS, before any length penalty
    constraints_met: Optional[bool] = None  # with lexical constraints: whether it holds every phrase (None: none given)


def max_lengths(src_lens: Any, a: float, b: int) -> Any:
    """(batch,) longest output per sentence, ``a * source length + b`` (source without its EOS), at
    most ``MAX_OUTPUT_LEN``."""
    xp = ops_for(src_lens)
    longest = xp.floor(xp.astype((src_lens - 1).clip(0, None), xp.double) * a + b)
    return xp.astype(longest.clip(1, MAX_OUTPUT_LEN), xp.long)


def constrain(logp: Any, t: int, min_len: int, at_max: Any) -> Any:
    """Forbid EOS before ``min_len`` tokens; allow only EOS where the length limit is reached; never
    emit PAD or BOS (no training target holds them, but an untrained or damaged model may rank them high).

    logp: (rows, vocab) log-probabilities or logits, changed in place; at_max: (rows,) bool.
    """
    logp[:, PAD] = float("-inf")
    logp[:, BOS] = float("-inf")
    if t < min_len:
        logp[:, EOS] = float("-inf")
    if bool(at_max.any()):
        xp = ops_for(logp)
        eos_lp = xp.copy(logp[:, EOS])
        logp[at_max] = float("-inf")
        logp[:, EOS] = xp.where(at_max, eos_lp, logp[:, EOS])
    return logp


def block_repeats(logp: Any, history: Any, n: int) -> Any:
    """No n-gram twice: forbid every token that would complete an n-gram already in the row's
    history (as OpenNMT-py's and fairseq's ``no_repeat_ngram_size``). EOS is never forbidden.

    logp: (rows, vocab), changed in place; history: (rows, t) tokens so far.
    """
    t = history.shape[1]
    if n < 1 or t < n or t == 0:  # no complete n-gram yet
        return logp
    xp = ops_for(history)
    windows = xp.windows(history, n)  # (rows, t-n+1, n)
    if n > 1:
        match = (windows[..., :-1] == history[:, None, t - n + 1:]).all(-1)  # (rows, t-n+1)
    else:
        match = xp.full(windows.shape[:2], True, xp.bool)
    flat = xp.nonzero(match.reshape(-1))  # (hits,) positions in rows x (t-n+1)
    rows, at = flat // match.shape[1], flat % match.shape[1]
    banned = windows[rows, at, -1]
    keep = banned != EOS
    logp[rows[keep], banned[keep]] = float("-inf")
    return logp


class Guide(NamedTuple):
    """What one sentence's translation must hold, in target ids: a ``prefix`` it starts with and
    ``constraints``, phrases it contains (``constraints.py``); empty: searched freely."""
    prefix: Sequence[int] = ()
    constraints: Sequence[Sequence[int]] = ()


FREE = Guide()


class Prefix(NamedTuple):
    """Target prefixes a search must start with: ``tokens`` (batch, width) PAD-padded, ``lens``
    (batch,); a sentence with length 0 is searched freely."""
    tokens: Any
    lens: Any

    @classmethod
    def of(cls, prefixes, xp) -> Prefix:
        """From target id lists, as arrays of ``xp`` (``arrays.ops_for`` of the source batch)."""
        from ..data.batching import pad_array
        return cls(xp.asarray(pad_array(prefixes), xp.long), xp.asarray([len(p) for p in prefixes], xp.long))

    def force(self, logp: Any, raw: Any, t: int, sentence: Any) -> Any:
        """Rows (of sentences ``sentence``, (rows,)) whose prefix reaches past step ``t`` may only
        emit its t-th token, with its unconstrained score from ``raw``; logp changed in place."""
        if t >= self.tokens.shape[1]:
            return logp
        forced = ops_for(logp).nonzero(t < self.lens[sentence])  # (n,) rows
        if forced.shape[0]:
            tok = self.tokens[sentence[forced], t]  # (n,)
            keep = raw[forced, tok]
            logp[forced] = float("-inf")
            logp[forced, tok] = keep
        return logp


def length_limits(src_lens: Any, options, prefix: Optional[Prefix], xp, required: Optional[Any] = None) -> Any:
    """(batch,) longest output per sentence (``max_lengths``) as an array of ``xp``, never shorter
    than its prefix, and longer by the ``required`` (batch,) pieces (lexical constraints': phrases a
    translation would not hold by itself), at most ``MAX_OUTPUT_LEN``."""
    limit = xp.asarray(max_lengths(src_lens, options.max_len_a, options.max_len_b).tolist(), xp.long)
    if prefix is not None:
        limit = xp.maximum(limit, prefix.lens)
    return limit if required is None else (limit + required).clip(None, MAX_OUTPUT_LEN)


def normaliser(xp, model, logits: Any) -> Any:
    """(rows, 1) log-sum-exp of each row of a step's unrestricted output (logits: (rows, vocab)); 0
    where the model's step gives log-probabilities already (``model.log_probs``)."""
    if getattr(model, "log_probs", False):
        return xp.zeros((logits.shape[0], 1), xp.float)
    return xp.logsumexp(logits)


def restrict(logits: Any, t: int, options, at_max: Any, history: Any,
             prefix: Optional[Prefix] = None, sentence: Optional[Any] = None) -> Any:
    """Every constraint on step ``t``'s candidates, in place: lengths and special tokens
    (``constrain``), n-gram blocking over each row's ``history`` (rows, t), and forced prefixes
    (``sentence``: each row's sentence id)."""
    raw = ops_for(logits).copy(logits) if prefix is not None else None
    constrain(logits, t, options.min_len, at_max)
    if options.no_repeat_ngram:
        block_repeats(logits, history, options.no_repeat_ngram)
    if prefix is not None:
        assert raw is not None and sentence is not None  # both come with every prefix
        prefix.force(logits, raw, t, sentence)
    return logits
