"""Lexical constraints: target phrases every hypothesis of a sentence must contain.

Beam search with dynamic beam allocation (Post & Vilar, 2018), vectorized over sentences and beams
(as Hu et al., 2019). Each hypothesis tracks, per constraint of its sentence, whether it is met and
how many of its pieces the hypothesis has just produced in a row (``progress``). At every step the
candidates of a beam are its best 2k pieces plus the next piece of each of its unmet constraints;
each candidate's *bank* is the number of constraint pieces it has produced (met constraints' pieces
plus its longest run in progress). The beam's k places are dealt to banks in turn (the best of the
highest bank, the best of the next, ..., then each bank's second best, ...), so hypotheses that
make progress on their constraints survive next to the ones the model likes best. EOS is only
allowed once every constraint is met; at the length limit a sentence whose hypotheses never met
them all still ends, its result flagged (``Hypothesis.constraints_met`` False), never dropped.

A constraint counts as met only when its pieces come in a row exactly as encoded, so every
hypothesis flagged met contains every phrase; the piece after a met phrase may not continue its last
word (``Constraints.continuations``), so "bicycle" is not met by "bicycles". A phrase given twice
must appear twice.

Written against ``arrays.py``'s operations, so it decodes torch and ONNX Runtime models alike.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence, Tuple

from ..data.spm import PAD

# phrases per sentence at most: each candidate of each beam tracks every phrase, so search holds
# beam x (2 beam + phrases) x phrases states per sentence
MAX_PHRASES = 64


class Constraints(NamedTuple):
    """A batch's constraints, as arrays: ``tokens`` (batch, C, L) the pieces of each sentence's
    constraints, PAD-padded; ``lens`` (batch, C) their lengths (0: no constraint in this place);
    ``earlier_twin`` (batch, C, C) True at [b, i, j] where constraint j < i of sentence b is the
    same phrase as i (a repeated phrase must appear once per mention); ``continuations`` (n,) the
    pieces that continue a word, never emitted right after a phrase is met (None: any may)."""
    tokens: Any
    lens: Any
    earlier_twin: Any
    continuations: Any = None

    @classmethod
    def of(cls, phrases: Sequence[Sequence[Sequence[int]]], xp,
           continuations: Optional[Sequence[int]] = None) -> Constraints:
        """From per-sentence lists of target id lists (and the ids that continue a word), as arrays of ``xp``."""
        from ..data.batching import pad_array
        count = max(1, max(len(p) for p in phrases))
        places = [list(p) + [[]] * (count - len(p)) for p in phrases]  # (batch, C) phrases, [] in empty places
        flat = [c for p in places for c in p] + [[PAD]]  # the last: every phrase place at least one piece wide
        tokens = pad_array(flat)[:-1].reshape(len(phrases), count, -1)  # (batch, C, L)
        lens = [[len(c) for c in p] for p in places]
        twins = [[[j < i and len(p[i]) > 0 and tuple(p[j]) == tuple(p[i]) for j in range(count)] for i in range(count)]
                 for p in places]
        return cls(xp.asarray(tokens, xp.long), xp.asarray(lens, xp.long), xp.asarray(twins, xp.bool),
                   None if continuations is None else xp.asarray(list(continuations), xp.long))

    def pieces(self) -> Any:
        """(batch,) the number of pieces a hypothesis must produce to meet all of its constraints."""
        return self.lens.sum(-1)


class Progress(NamedTuple):
    """Hypotheses' constraint states: (live, n, C) pieces of each constraint produced in a row so far
    and whether it is met; (live, n) whether the last piece met one."""
    run: Any
    met: Any
    ended: Any

    @classmethod
    def start(cls, xp, batch: int, k: int, count: int) -> Progress:
        return cls(xp.zeros((batch, k, count), xp.long), xp.zeros((batch, k, count), xp.bool),
                   xp.zeros((batch, k), xp.bool))

    def take(self, xp, index: Any) -> Progress:
        """The states of hypotheses ``index`` (live, m), each row's own."""
        return Progress(xp.take_along(self.run, index[..., None], 1), xp.take_along(self.met, index[..., None], 1),
                        xp.take_along(self.ended, index, 1))

    def rows(self, keep: Any) -> Progress:
        return Progress(self.run[keep], self.met[keep], self.ended[keep])


def open_(cons: Constraints, sentence: Any, met: Any) -> Any:
    """(live, n, C) True where a constraint exists and is not met yet; sentence: (live,) ids."""
    return (cons.lens[sentence][:, None, :] > 0) & ~met


def satisfied(cons: Constraints, sentence: Any, state: Progress) -> Any:
    """(live, n) whether every constraint is met."""
    return ~open_(cons, sentence, state.met).any(-1)


def bank(cons: Constraints, sentence: Any, state: Progress, xp) -> Any:
    """(live, n) constraint pieces produced: every met constraint's, plus the longest run in progress."""
    lens = cons.lens[sentence][:, None, :]  # (live, 1, C)
    done = xp.where(state.met, lens, 0).sum(-1)
    return done + xp.amax(xp.where(state.met, 0, state.run), -1)


def next_pieces(cons: Constraints, sentence: Any, state: Progress, xp) -> Any:
    """(live, n, C) the piece each hypothesis needs next for each of its constraints; PAD for one met
    or absent (PAD is never a candidate)."""
    tokens = cons.tokens[sentence]  # (live, C, L)
    live, count, width = tokens.shape
    run = state.run.clip(None, width - 1)  # (live, n, C); a run never reaches its length unmet
    at = (xp.arange(count)[None, None, :] * width + run).reshape(live, -1)  # (live, n*C) into C x L
    wanted = xp.take_along(tokens.reshape(live, count * width), at, 1).reshape(run.shape)  # (live, n, C)
    return xp.where(open_(cons, sentence, state.met), wanted, PAD)


def advance(cons: Constraints, sentence: Any, state: Progress, tokens: Any, xp, wanted: Optional[Any] = None
            ) -> Progress:
    """The states after each hypothesis emits ``tokens`` (live, n). A piece that continues a run
    extends it, any other restarts it (at 1 if it is the constraint's first piece); a run that
    reaches its constraint's length meets it (of a repeated phrase, only its first unmet mention).
    ``wanted``: (live, n, C) the hypotheses' ``next_pieces``, where the caller has them."""
    lens = cons.lens[sentence][:, None, :]  # (live, 1, C)
    first = cons.tokens[sentence][:, None, :, 0]  # (live, 1, C)
    live_open = open_(cons, sentence, state.met)  # (live, n, C)
    step = tokens[..., None]  # (live, n, 1)
    wanted = next_pieces(cons, sentence, state, xp) if wanted is None else wanted
    run = xp.where(wanted == step, state.run + 1, xp.where(first == step, 1, 0))
    run = xp.where(live_open, run, 0)
    ends = live_open & (run == lens)  # (live, n, C)
    twins = cons.earlier_twin[sentence][:, None, :, :]  # (live, 1, C, C)
    ends = ends & ~(ends[:, :, None, :] & twins).any(-1)  # an earlier mention of the same phrase goes first
    return Progress(xp.where(run == lens, 0, run), state.met | ends, ends.any(-1))


def extensions(xp, logits: Any, lse: Any, alive_scores: Any, cons: Constraints, sentence: Any,
               state: Progress, width: int) -> Tuple[Any, Any, Any, Any, Progress]:
    """The ``width`` preferred one-token extensions of each sentence's k beams, dealt to banks in
    turn (module docstring). logits: (live*k, vocab), restricted; lse: (live*k, 1); alive_scores:
    (live, k); state: the beams' (live, k, C).

    Returns (live, width) each: running scores, source beams, tokens, the preference (higher is
    preferred; the order the candidates come in) and their states."""
    live, k = alive_scores.shape
    vocab = logits.shape[-1]
    if cons.continuations is not None and bool(state.ended.any()):  # a met phrase's last word ends with it
        rows = xp.nonzero(state.ended.reshape(-1))
        logits[rows[:, None], cons.continuations[None, :]] = float("-inf")
    best = min(2 * k, vocab)
    _, own = xp.topk(logits, best)  # (live*k, best): each beam's own best pieces
    wanted = next_pieces(cons, sentence, state, xp)  # (live, k, C)
    pieces = xp.cat([own, wanted.reshape(live * k, -1)], 1)  # (live*k, W)
    w = pieces.shape[1]
    twice = (pieces[:, :, None] == pieces[:, None, :]) & (xp.arange(w)[None, :] < xp.arange(w)[:, None])[None]
    logp = xp.take_along(logits, pieces, 1) - lse  # (live*k, W)
    logp = xp.where(twice.any(-1), float("-inf"), logp)  # each piece once per beam
    scores = (alive_scores[..., None] + logp.reshape(live, k, w)).reshape(live, k * w)  # (live, N)
    beams = xp.repeat(xp.arange(k), w)[None, :] + xp.zeros((live, 1), xp.long)  # (live, N)
    tokens = pieces.reshape(live, k * w)
    after = advance(cons, sentence, state.take(xp, beams), tokens, xp,
                    xp.take_along(wanted, beams[..., None], 1))  # (live, N, C)
    banks = bank(cons, sentence, after, xp)  # (live, N)

    # Deal places to banks in turn: each candidate's rank among its bank's by score, then the order
    # (rank, highest bank first); impossible candidates (-inf) last. Memory stays (live, N).
    n = k * w
    position = xp.arange(n)[None, :]  # (1, N)
    scores, order = xp.topk(scores, n)  # (live, N), best first
    banks = xp.take_along(banks, order, 1)
    _, grouped = xp.topk(-xp.astype(banks * n + position, xp.double), n)  # by bank, best first within each
    banks, scores = xp.take_along(banks, grouped, 1), xp.take_along(scores, grouped, 1)
    first = xp.cat([xp.full((live, 1), True, xp.bool), banks[:, 1:] != banks[:, :-1]], 1)  # a bank's first
    rank = position - xp.cummax(xp.where(first, position, 0), 1)  # (live, N) within its bank
    levels = int(banks.max()) + 1
    key = xp.where(xp.isfinite(scores), rank * levels + (levels - 1 - banks), n * levels)
    preference, pick = xp.topk(-xp.astype(key, xp.double), width)  # (live, width)
    chosen = xp.take_along(order, xp.take_along(grouped, pick, 1), 1)  # among the N candidates
    return (xp.take_along(scores, pick, 1), xp.take_along(beams, chosen, 1), xp.take_along(tokens, chosen, 1),
            preference, after.take(xp, chosen))


