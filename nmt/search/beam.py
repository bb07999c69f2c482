"""Beam search batched over sentences x beams.

The encoder runs once per batch; attention keys travel in ``memory`` and are only re-indexed
when sentences finish and leave the batch. Each step is tensor operations over all live rows:
add running scores, take the top 2K over beam x vocab, move EOS candidates into each sentence's
finished list (kept as tensors, best K by penalised score), keep the best K others alive.
A sentence is done once it has K finished hypotheses or reaches its length limit.
"""
from __future__ import annotations

from typing import List, Optional

import torch

from ..data.spm import BOS, EOS, PAD
from ..errors import ConfigError
from .common import Hypothesis, Prefix, length_limits, restrict
from .options import Penalty, SearchOptions


def length_penalty(length: int, alpha: float, kind: Penalty) -> float:
    """Divisor of a hypothesis score: GNMT ((5 + len) / 6) ** alpha, the length, or 1."""
    if kind is Penalty.gnmt:
        return ((5.0 + length) / 6.0) ** alpha
    if kind is Penalty.average:
        return float(length)
    return 1.0


def topk_step(scores: torch.Tensor, logp: torch.Tensor, k: int):
    """The pure scoring step: extend every beam by every candidate and keep the best ``k``.

    scores: (batch, beam) running log-probabilities; logp: (batch, beam, cand) log-probabilities of
    each beam's candidates (the whole vocabulary, or a pre-selected best few).
    Returns (batch, k) candidate scores, source beams and candidate positions, best first.
    """
    vocab = logp.size(-1)
    cand = (scores.unsqueeze(-1) + logp).view(scores.size(0), -1)  # (batch, beam*vocab)
    top_scores, flat = cand.topk(k, dim=-1)
    return top_scores, torch.div(flat, vocab, rounding_mode="floor"), flat % vocab


@torch.inference_mode()
def beam_search(model, src, src_lens, options: SearchOptions = SearchOptions(),
                prefix: Optional[Prefix] = None) -> List[List[Hypothesis]]:
    """Per sentence, the ``options.nbest`` best finished hypotheses, best first; with ``prefix``,
    each starts with its sentence's prefix (forced; its log-probability counts in the score).

    src: (batch, src_len) ids + EOS, PAD-padded; src_lens: (batch,) on CPU.
    """
    k, device = options.beam_size, src.device
    alpha, penalty = options.alpha, options.penalty
    batch = src.size(0)
    memory, state = model.encode(src, src_lens)  # memory stays one row per sentence: its k beams share it
    state, _ = model.reorder(state, None, torch.arange(batch, device=device).repeat_interleave(k))
    limit = length_limits(src_lens, options, prefix, device)  # (batch,)
    steps = int(limit.max()) + 1

    alive_scores = torch.full((batch, k), float("-inf"), device=device)
    alive_scores[:, 0] = 0.0  # all beams start identical: let only the first expand
    alive_tokens = torch.empty((batch, k, 0), dtype=torch.long, device=device)  # (live, beam, t)
    finished = _Finished(batch, k, steps, device)
    coverage = _Coverage(options.coverage_penalty, src_lens, k, src.size(1), device)  # nothing when beta is 0
    active = torch.arange(batch, device=device)  # sentence ids of the live rows
    prev = torch.full((batch * k,), BOS, dtype=torch.long, device=device)

    for t in range(steps):
        live = active.size(0)
        logits, state, weights = model.step(prev, state, memory)
        logits = logits.float()  # (live*beam, vocab)
        coverage.add(weights)
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)  # normaliser of the unconstrained distribution
        at_max = (t >= limit[active]).repeat_interleave(k)  # (live*beam,)
        restrict(logits, t, options, at_max, alive_tokens.reshape(live * k, t), prefix, active.repeat_interleave(k))
        top_scores, top_beams, top_tokens = _best_extensions(logits, lse, alive_scores)  # (live, 2k) each
        history = alive_tokens.gather(1, top_beams[..., None].expand(-1, -1, t))  # (live, 2k, t)

        is_eos = top_tokens == EOS  # EOS among the best k finishes a hypothesis
        finished.add(active, top_scores[:, :k], is_eos[:, :k], history[:, :k], length_penalty(t + 1, alpha, penalty),
                     coverage.penalty(top_beams[:, :k]))

        # The best k candidates that did not end stay alive (scores are sorted, so topk keeps order).
        alive_scores, pos = torch.where(is_eos, torch.full_like(top_scores, float("-inf")), top_scores).topk(k, dim=1)
        beams = top_beams.gather(1, pos)  # (live, beam)
        tokens = top_tokens.gather(1, pos)
        alive_tokens = torch.cat([history.gather(1, pos[..., None].expand(-1, -1, t)), tokens[..., None]], dim=2)
        coverage.follow(beams)

        done = finished.full(active) | (t >= limit[active])
        if bool(done.all()):
            break
        keep = (~done).nonzero().squeeze(1)  # live rows (sentences) that go on
        rows = (keep[:, None] * k + beams[keep]).view(-1)  # (kept*beam,) rows of the state to continue
        shrink = keep.size(0) < live
        state, _ = model.reorder(state, None, rows)
        if shrink:
            _, memory = model.reorder(None, memory, keep)
            active, alive_scores, alive_tokens = active[keep], alive_scores[keep], alive_tokens[keep]
            coverage.keep(keep)
        prev = alive_tokens[:, :, -1].reshape(-1)  # (live*beam,)

    return finished.nbest(options.nbest)


def _best_extensions(logits: torch.Tensor, lse: torch.Tensor, alive_scores: torch.Tensor):
    """The best 2k one-token extensions of each sentence's k beams: (live, 2k) running scores, source
    beams and tokens, best first. logits: (live*k, vocab), restricted; lse: (live*k, 1), their
    unrestricted normaliser; alive_scores: (live, k).

    The best 2k of beam x vocab are among each beam's own best 2k: those are selected first, so the
    log-softmax and the beam-wide top-k run over (live, k, 2k) instead of (live, k, vocab)."""
    live, k = alive_scores.shape
    width = min(2 * k, logits.size(-1))
    row_logits, row_tokens = logits.topk(width, dim=-1)  # (live*k, width)
    logp = (row_logits - lse).view(live, k, width)
    top_scores, top_beams, top_pos = topk_step(alive_scores, logp, 2 * k)  # (live, 2k)
    return top_scores, top_beams, row_tokens.view(live, k * width).gather(1, top_beams * width + top_pos)


class _Coverage:
    """GNMT's coverage penalty (Wu et al., 2016): beta * sum over source positions j of
    log min(attention mass on j so far, 1), added to a finished hypothesis's score, so that a
    translation that never attended to part of its source ranks lower. Keeps each live beam's mass;
    with beta 0 (off) it keeps nothing and adds nothing."""

    FLOOR = 1e-20  # mass that fp32 attention rounded to 0 still gives a finite log

    def __init__(self, beta: float, src_lens: torch.Tensor, k: int, src_len: int, device: torch.device):
        self.beta = beta
        if beta:
            self.real = torch.arange(src_len, device=device)[None, :] < src_lens.to(device)[:, None]  # (live, src)
            self.mass = torch.zeros(src_lens.size(0), k, src_len, device=device)  # (live, k, src_len)

    def add(self, weights: Optional[torch.Tensor]) -> None:
        """weights: (live*k, src_len), this step's attention of every beam."""
        if not self.beta:
            return
        if weights is None:
            raise ConfigError("a coverage penalty needs a model with attention (this one has attention=none or "
                              "final): leave it at 0")
        self.mass = self.mass + weights.float().view(self.mass.shape)

    def penalty(self, beams: torch.Tensor) -> Optional[torch.Tensor]:
        """(live, n) the penalty of extending the source beams ``beams`` (live, n); None when off."""
        if not self.beta:
            return None
        mass = self.mass.gather(1, beams[..., None].expand(-1, -1, self.mass.size(2)))  # (live, n, src_len)
        logs = torch.where(self.real[:, None, :], mass.clamp(self.FLOOR, 1.0).log(), torch.zeros_like(mass))
        return self.beta * logs.sum(-1)

    def follow(self, beams: torch.Tensor) -> None:
        """The beams that stay alive: beams (live, k) are their source beams."""
        if self.beta:
            self.mass = self.mass.gather(1, beams[..., None].expand(-1, -1, self.mass.size(2)))

    def keep(self, rows: torch.Tensor) -> None:
        """Only the sentences ``rows`` go on."""
        if self.beta:
            self.mass, self.real = self.mass[rows], self.real[rows]


class _Finished:
    """Each sentence's best ``k`` finished hypotheses, kept as tensors: penalised scores, best first
    (-inf: an empty place), their raw log-probabilities, and their tokens (EOS, then PAD)."""

    def __init__(self, batch: int, k: int, steps: int, device: torch.device):
        self.scores = torch.full((batch, k), float("-inf"), device=device)  # (batch, k)
        self.logp = torch.zeros((batch, k), device=device)  # (batch, k)
        self.tokens = torch.full((batch, k, steps), PAD, dtype=torch.long, device=device)  # (batch, k, steps)

    def add(self, active: torch.Tensor, scores: torch.Tensor, is_eos: torch.Tensor, history: torch.Tensor,
            divisor: float, bonus: Optional[torch.Tensor] = None) -> None:
        """Merge the candidates that end here into the lists of the sentences ``active`` (live,).
        scores, is_eos: (live, k), the best k candidates of this step t; history: (live, k, t) their
        tokens before it; ``divisor``: the length penalty of a hypothesis ending at t; ``bonus``:
        (live, k) added to the penalised score (the coverage penalty, <= 0)."""
        live, k = scores.shape
        t, steps = history.size(2), self.tokens.size(2)
        ends = is_eos & torch.isfinite(scores)
        final = scores / divisor if bonus is None else scores / divisor + bonus
        new_scores = torch.where(ends, final, torch.full_like(scores, float("-inf")))
        new_tokens = torch.full((live, k, steps), PAD, dtype=torch.long, device=scores.device)
        new_tokens[:, :, :t] = history
        new_tokens[:, :, t] = EOS
        best, pick = torch.cat([self.scores[active], new_scores], dim=1).topk(k, dim=1)  # of (live, 2k)
        self.scores[active] = best
        self.logp[active] = torch.cat([self.logp[active], scores], dim=1).gather(1, pick)
        self.tokens[active] = torch.cat([self.tokens[active], new_tokens], dim=1).gather(
            1, pick[..., None].expand(-1, -1, steps))

    def full(self, active: torch.Tensor) -> torch.Tensor:
        """(live,) whether each of these sentences has ``k`` finished hypotheses."""
        return torch.isfinite(self.scores[active][:, -1])

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
