"""Beam search batched over sentences x beams.

The encoder runs once per batch; attention keys travel in ``memory`` and are only re-indexed
when sentences finish and leave the batch. Each step is tensor operations over all live rows:
add running scores, take the top 2K over beam x vocab, move EOS candidates into each sentence's
finished list (kept as tensors, best K by penalised score), keep the best K others alive.
A sentence is done once it has K finished hypotheses or reaches its length limit.

Written against ``arrays.py``'s operations (``xp``): the same search decodes over a PyTorch model
(torch tensors) and over the ONNX Runtime backend (numpy arrays, no torch).
"""
from __future__ import annotations

from typing import Any, List, Optional

from ..data.spm import BOS, EOS, PAD
from ..errors import ConfigError
from .arrays import ops_for
from .common import Hypothesis, Prefix, length_limits, normaliser, restrict
from .constraints import Constraints, Progress, extensions, satisfied
from .options import Penalty, SearchOptions


def length_penalty(length: int, alpha: float, kind: Penalty) -> float:
    """Divisor of a hypothesis score: GNMT ((5 + len) / 6) ** alpha, the length, or 1."""
    if kind is Penalty.gnmt:
        return ((5.0 + length) / 6.0) ** alpha
    if kind is Penalty.average:
        return float(length)
    return 1.0


def topk_step(scores: Any, logp: Any, k: int):
    """The pure scoring step: extend every beam by every candidate and keep the best ``k``.

    scores: (batch, beam) running log-probabilities; logp: (batch, beam, cand) log-probabilities of
    each beam's candidates (the whole vocabulary, or a pre-selected best few).
    Returns (batch, k) candidate scores, source beams and candidate positions, best first.
    """
    vocab = logp.shape[-1]
    cand = (scores[..., None] + logp).reshape(scores.shape[0], -1)  # (batch, beam*vocab)
    top_scores, flat = ops_for(cand).topk(cand, k)
    return top_scores, flat // vocab, flat % vocab


def beam_search(model, src, src_lens, options: SearchOptions = SearchOptions(),
                prefix: Optional[Prefix] = None, constraints: Optional[Constraints] = None) -> List[List[Hypothesis]]:
    """Per sentence, the ``options.nbest`` best finished hypotheses, best first; with ``prefix``,
    each starts with its sentence's prefix (forced; its log-probability counts in the score); with
    ``constraints``, each contains its sentence's phrases (``constraints.py``; a sentence whose
    hypotheses could not meet them within its length limit gets its best unconstrained-ending ones,
    flagged).

    src: (batch, src_len) ids + EOS, PAD-padded; src_lens: (batch,) on CPU (torch or numpy, as the
    model's arrays).
    """
    xp = ops_for(src, model)
    with xp.no_grad():
        return _beam_search(xp, model, src, src_lens, options, prefix, constraints)


def _beam_search(xp, model, src, src_lens, options: SearchOptions, prefix: Optional[Prefix],
                 cons: Optional[Constraints]) -> List[List[Hypothesis]]:
    k, alpha, penalty = options.beam_size, options.alpha, options.penalty
    batch = src.shape[0]
    memory, state = model.encode(src, src_lens)  # memory stays one row per sentence: its k beams share it
    state, _ = model.reorder(state, None, xp.repeat(xp.arange(batch), k))
    limit = length_limits(src_lens, options, prefix, xp, None if cons is None else cons.pieces())  # (batch,)
    steps = int(limit.max()) + 1

    alive_scores = xp.full((batch, k), float("-inf"), xp.float)
    alive_scores[:, 0] = 0.0  # all beams start identical: let only the first expand
    alive_tokens = xp.zeros((batch, k, 0), xp.long)  # (live, beam, t)
    finished = _Finished(xp, batch, k, steps)
    lexical = _Free(xp) if cons is None else _Lexical(xp, cons, batch, k, steps)
    coverage = _Coverage(xp, options.coverage_penalty, src_lens, k, src.shape[1])  # nothing when beta is 0
    active = xp.arange(batch)  # sentence ids of the live rows
    prev = xp.full((batch * k,), BOS, xp.long)

    for t in range(steps):
        live = active.shape[0]
        logits, state, weights = model.step(prev, state, memory)
        logits = xp.astype(logits, xp.float)  # (live*beam, vocab)
        coverage.add(weights)
        lse = normaliser(xp, model, logits)  # (live*beam, 1) of the unconstrained distribution
        at_max = xp.repeat(t >= limit[active], k)  # (live*beam,)
        restrict(logits, t, options, at_max, alive_tokens.reshape(live * k, t), prefix, xp.repeat(active, k))
        top_scores, top_beams, top_tokens, preference = lexical.extend(logits, lse, alive_scores, at_max, active)
        history = xp.take_along(alive_tokens, top_beams[..., None], 1)  # (live, 2k, t)

        is_eos = top_tokens == EOS  # EOS among the first k finishes a hypothesis
        lexical.end(finished, active, top_scores[:, :k], is_eos[:, :k], top_beams[:, :k], history[:, :k],
                    length_penalty(t + 1, alpha, penalty), coverage.penalty(top_beams[:, :k]))

        # The first k candidates that did not end stay alive, in the order of preference.
        _, pos = xp.topk(xp.where(is_eos, float("-inf"), preference), k)  # (live, beam)
        alive_scores = xp.take_along(xp.where(is_eos, float("-inf"), top_scores), pos, 1)
        beams = xp.take_along(top_beams, pos, 1)  # (live, beam)
        tokens = xp.take_along(top_tokens, pos, 1)
        alive_tokens = xp.cat([xp.take_along(history, pos[..., None], 1), tokens[..., None]], 2)
        coverage.follow(beams)
        lexical.follow(pos)

        done = finished.full(active) | (t >= limit[active])
        if bool(done.all()):
            break
        keep = xp.nonzero(~done)  # live rows (sentences) that go on
        rows = (keep[:, None] * k + beams[keep]).reshape(-1)  # (kept*beam,) rows of the state to continue
        shrink = keep.shape[0] < live
        state, _ = model.reorder(state, None, rows)
        if shrink:
            _, memory = model.reorder(None, memory, keep)
            active, alive_scores, alive_tokens = active[keep], alive_scores[keep], alive_tokens[keep]
            coverage.keep(keep)
            lexical.keep(keep)
        prev = alive_tokens[:, :, -1].reshape(-1)  # (live*beam,)

    return lexical.results(finished, options.nbest)


def _best_extensions(xp, logits: Any, lse: Any, alive_scores: Any):
    """The best 2k one-token extensions of each sentence's k beams: (live, 2k) running scores, source
    beams and tokens, best first. logits: (live*k, vocab), restricted; lse: (live*k, 1), their
    unrestricted normaliser; alive_scores: (live, k).

    The best 2k of beam x vocab are among each beam's own best 2k: those are selected first, so the
    log-softmax and the beam-wide top-k run over (live, k, 2k) instead of (live, k, vocab)."""
    live, k = alive_scores.shape
    width = min(2 * k, logits.shape[-1])
    row_logits, row_tokens = xp.topk(logits, width)  # (live*k, width)
    logp = (row_logits - lse).reshape(live, k, width)
    top_scores, top_beams, top_pos = topk_step(alive_scores, logp, 2 * k)  # (live, 2k)
    return top_scores, top_beams, xp.take_along(row_tokens.reshape(live, k * width), top_beams * width + top_pos, 1)


class _Free:
    """Search without lexical constraints: the best 2k extensions, best first; the best k that do
    not end stay alive."""

    def __init__(self, xp):
        self.xp = xp  # the search's operations (a model may bring its own: the bundle's top-k)

    def extend(self, logits: Any, lse: Any, alive_scores: Any, at_max: Any, active: Any):
        """(live, 2k) each: running scores, source beams, tokens, and the preference among them (higher
        first). logits: (live*k, vocab), restricted; at_max: (live*k,) rows at their length limit;
        active: (live,) sentence ids."""
        top_scores, top_beams, top_tokens = _best_extensions(self.xp, logits, lse, alive_scores)
        return top_scores, top_beams, top_tokens, top_scores

    def end(self, finished: _Finished, active: Any, scores: Any, is_eos: Any, beams: Any, history: Any,
            divisor: float, bonus: Optional[Any]) -> None:
        """The first k candidates (live, k) that end (``is_eos``), into ``finished``."""
        finished.add(active, scores, is_eos, history, divisor, bonus)

    def follow(self, pos: Any) -> None:
        """The candidates at ``pos`` (live, k) stay alive."""

    def keep(self, rows: Any) -> None:
        """Only the sentences ``rows`` go on."""

    def results(self, finished: _Finished, nbest: int) -> List[List[Hypothesis]]:
        return finished.nbest(nbest)


class _Lexical(_Free):
    """Search with lexical constraints (``constraints.py``): extensions dealt to banks in turn, EOS
    only for a beam that met its constraints (or at its length limit, into ``unmet``)."""

    def __init__(self, xp, cons: Constraints, batch: int, k: int, steps: int):
        super().__init__(xp)
        self.cons, self.k = cons, k
        self.state = Progress.start(xp, batch, k, cons.lens.shape[1])  # (live, beam, C)
        self.unmet = _Finished(xp, batch, k, steps)  # ended at the length limit with phrases missing
        self.after: Optional[Progress] = None  # the candidates' states, this step
        self.met: Any = None  # (live, beam) whether each beam met its constraints, this step

    def extend(self, logits, lse, alive_scores, at_max, active):
        xp = self.xp
        self.met = satisfied(self.cons, active, self.state)  # (live, beam)
        logits[xp.nonzero((~self.met).reshape(-1) & ~at_max), EOS] = float("-inf")  # no EOS with phrases missing
        top_scores, top_beams, top_tokens, preference, self.after = extensions(
            xp, logits, lse, alive_scores, self.cons, active, self.state, 2 * self.k)
        return top_scores, top_beams, top_tokens, preference

    def end(self, finished, active, scores, is_eos, beams, history, divisor, bonus):
        met = self.xp.take_along(self.met, beams, 1)  # (live, k): before the limit, only a met beam can end
        finished.add(active, scores, is_eos & met, history, divisor, bonus)
        self.unmet.add(active, scores, is_eos & ~met, history, divisor, bonus)

    def follow(self, pos):
        assert self.after is not None  # extend ran this step
        self.state = self.after.take(self.xp, pos)

    def keep(self, rows):
        self.state = self.state.rows(rows)

    def results(self, finished, nbest):
        """Per sentence, its hypotheses that met every constraint, flagged met; where none ended, the
        ones that reached the length limit without, flagged not met; None where it has no constraints."""
        out = []
        found = self.xp.isfinite(finished.scores[:, 0]).tolist()
        asked = (self.cons.lens > 0).any(-1).tolist()
        for met, missing, ok, has in zip(finished.nbest(nbest), self.unmet.nbest(nbest), found, asked):
            out.append([h._replace(constraints_met=ok if has else None) for h in (met if ok or not has else missing)])
        return out


class _Coverage:
    """GNMT's coverage penalty (Wu et al., 2016): beta * sum over source positions j of
    log min(attention mass on j so far, 1), added to a finished hypothesis's score, so that a
    translation that never attended to part of its source ranks lower. Keeps each live beam's mass;
    with beta 0 (off) it keeps nothing and adds nothing."""

    FLOOR = 1e-20  # mass that fp32 attention rounded to 0 still gives a finite log

    def __init__(self, xp, beta: float, src_lens: Any, k: int, src_len: int):
        self.xp, self.beta = xp, beta
        if beta:
            lens = xp.asarray(src_lens.tolist(), xp.long)
            self.real = xp.arange(src_len)[None, :] < lens[:, None]  # (live, src)
            self.mass = xp.zeros((lens.shape[0], k, src_len), xp.float)  # (live, k, src_len)

    def add(self, weights: Optional[Any]) -> None:
        """weights: (live*k, src_len), this step's attention of every beam."""
        if not self.beta:
            return
        if weights is None:
            raise ConfigError("a coverage penalty needs a model with attention (this one has attention=none or "
                              "final): leave it at 0")
        self.mass = self.mass + self.xp.astype(weights, self.xp.float).reshape(self.mass.shape)

    def penalty(self, beams: Any) -> Optional[Any]:
        """(live, n) the penalty of extending the source beams ``beams`` (live, n); None when off."""
        if not self.beta:
            return None
        xp = self.xp
        mass = xp.take_along(self.mass, beams[..., None], 1)  # (live, n, src_len)
        logs = xp.where(self.real[:, None, :], xp.log(mass.clip(self.FLOOR, 1.0)), 0.0)
        return self.beta * logs.sum(-1)

    def follow(self, beams: Any) -> None:
        """The beams that stay alive: beams (live, k) are their source beams."""
        if self.beta:
            self.mass = self.xp.take_along(self.mass, beams[..., None], 1)

    def keep(self, rows: Any) -> None:
        """Only the sentences ``rows`` go on."""
        if self.beta:
            self.mass, self.real = self.mass[rows], self.real[rows]


class _Finished:
    """Each sentence's best ``k`` finished hypotheses, kept as tensors: penalised scores, best first
    (-inf: an empty place), their raw log-probabilities, and their tokens (EOS, then PAD)."""

    def __init__(self, xp, batch: int, k: int, steps: int):
        self.xp = xp
        self.scores = xp.full((batch, k), float("-inf"), xp.float)  # (batch, k)
        self.logp = xp.zeros((batch, k), xp.float)  # (batch, k)
        self.tokens = xp.full((batch, k, steps), PAD, xp.long)  # (batch, k, steps)

    def add(self, active: Any, scores: Any, is_eos: Any, history: Any,
            divisor: float, bonus: Optional[Any] = None) -> None:
        """Merge the candidates that end here into the lists of the sentences ``active`` (live,).
        scores, is_eos: (live, k), the best k candidates of this step t; history: (live, k, t) their
        tokens before it; ``divisor``: the length penalty of a hypothesis ending at t; ``bonus``:
        (live, k) added to the penalised score (the coverage penalty, <= 0)."""
        xp, (live, k) = self.xp, scores.shape
        t, steps = history.shape[2], self.tokens.shape[2]
        ends = is_eos & xp.isfinite(scores)
        final = scores / divisor if bonus is None else scores / divisor + bonus
        new_scores = xp.where(ends, final, float("-inf"))
        new_tokens = xp.full((live, k, steps), PAD, xp.long)
        new_tokens[:, :, :t] = history
        new_tokens[:, :, t] = EOS
        best, pick = xp.topk(xp.cat([self.scores[active], new_scores], 1), k)  # of (live, 2k)
        self.scores[active] = best
        self.logp[active] = xp.take_along(xp.cat([self.logp[active], scores], 1), pick, 1)
        self.tokens[active] = xp.take_along(xp.cat([self.tokens[active], new_tokens], 1), pick[..., None], 1)

    def full(self, active: Any) -> Any:
        """(live,) whether each of these sentences has ``k`` finished hypotheses."""
        return self.xp.isfinite(self.scores[active][:, -1])

    def nbest(self, nbest: int) -> List[List[Hypothesis]]:
        """Per sentence, its ``nbest`` finished hypotheses (at least one, even if none finished)."""
        out = []
        for scores, logps, hyps in zip(self.scores.tolist(), self.logp.tolist(), self.tokens.tolist()):
            nb: List[Hypothesis] = []
            for score, logp, toks in zip(scores[:nbest], logps[:nbest], hyps[:nbest]):
                if score != float("-inf") or not nb:
                    nb.append(Hypothesis(toks[: toks.index(EOS)] if EOS in toks else toks, score, logp))
            out.append(nb)
        return out
