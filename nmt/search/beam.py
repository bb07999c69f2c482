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
    memory, state = model.encode(src, src_lens)
    state, memory = model.reorder(state, memory, torch.arange(batch, device=device).repeat_interleave(k))
    limit = length_limits(src_lens, options, prefix, device)  # (batch,)
    steps = int(limit.max()) + 1

    alive_scores = torch.full((batch, k), float("-inf"), device=device)
    alive_scores[:, 0] = 0.0  # all beams start identical: let only the first expand
    alive_tokens = torch.empty((batch, k, 0), dtype=torch.long, device=device)  # (live, beam, t)
    fin_scores = torch.full((batch, k), float("-inf"), device=device)  # penalised, best first
    fin_logp = torch.zeros((batch, k), device=device)  # the same hypotheses' raw log-probabilities
    fin_tokens = torch.full((batch, k, steps), PAD, dtype=torch.long, device=device)
    active = torch.arange(batch, device=device)  # sentence ids of the live rows
    prev = torch.full((batch * k,), BOS, dtype=torch.long, device=device)
    beam_offsets = torch.arange(k, device=device)

    for t in range(steps):
        live = active.size(0)
        logits, state, _ = model.step(prev, state, memory)
        logits = logits.float()  # (live*beam, vocab)
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)  # normaliser of the unconstrained distribution
        at_max = (t >= limit[active]).repeat_interleave(k)  # (live*beam,)
        restrict(logits, t, options, at_max, alive_tokens.reshape(live * k, t), prefix, active.repeat_interleave(k))
        # The best 2k of beam x vocab are among each beam's own best 2k: select those first, so the
        # log-softmax and the beam-wide top-k run over (live, beam, 2k) instead of (live, beam, vocab).
        width = min(2 * k, logits.size(-1))
        row_logits, row_tokens = logits.topk(width, dim=-1)  # (live*beam, width)
        logp = (row_logits - lse).view(live, k, width)
        top_scores, top_beams, top_pos = topk_step(alive_scores, logp, 2 * k)  # (live, 2k)
        top_tokens = row_tokens.view(live, k * width).gather(1, top_beams * width + top_pos)
        history = alive_tokens.gather(1, top_beams[..., None].expand(-1, -1, t))  # (live, 2k, t)

        # EOS among the best k candidates finishes a hypothesis; merge with the finished so far.
        is_eos = top_tokens == EOS
        ends = is_eos[:, :k] & torch.isfinite(top_scores[:, :k])
        new_scores = torch.where(ends, top_scores[:, :k] / length_penalty(t + 1, alpha, penalty),
                                 torch.full_like(top_scores[:, :k], float("-inf")))
        new_tokens = torch.full((live, k, steps), PAD, dtype=torch.long, device=device)
        new_tokens[:, :, :t] = history[:, :k]
        new_tokens[:, :, t] = EOS
        merged = torch.cat([fin_scores[active], new_scores], dim=1)  # (live, 2k)
        best, pick = merged.topk(k, dim=1)
        fin_scores[active] = best
        fin_logp[active] = torch.cat([fin_logp[active], top_scores[:, :k]], dim=1).gather(1, pick)
        fin_tokens[active] = torch.cat([fin_tokens[active], new_tokens], dim=1).gather(
            1, pick[..., None].expand(-1, -1, steps))

        # The best k candidates that did not end stay alive (scores are sorted, so topk keeps order).
        alive_scores, pos = torch.where(is_eos, torch.full_like(top_scores, float("-inf")), top_scores).topk(k, dim=1)
        beams = top_beams.gather(1, pos)  # (live, beam)
        tokens = top_tokens.gather(1, pos)
        alive_tokens = torch.cat([history.gather(1, pos[..., None].expand(-1, -1, t)), tokens[..., None]], dim=2)

        done = torch.isfinite(fin_scores[active][:, -1]) | (t >= limit[active])
        if bool(done.all()):
            break
        keep = (~done).nonzero().squeeze(1)  # live rows (sentences) that go on
        rows = (keep[:, None] * k + beams[keep]).view(-1)  # (kept*beam,) rows of the state to continue
        shrink = keep.size(0) < live
        state, _ = model.reorder(state, None, rows)
        if shrink:
            _, memory = model.reorder(None, memory, (keep[:, None] * k + beam_offsets).view(-1))
            active, alive_scores, alive_tokens = active[keep], alive_scores[keep], alive_tokens[keep]
        prev = alive_tokens[:, :, -1].reshape(-1)  # (live*beam,)

    return _nbest_lists(fin_scores, fin_logp, fin_tokens, options.nbest)


def _nbest_lists(fin_scores, fin_logp, fin_tokens, nbest: int) -> List[List[Hypothesis]]:
    """Per sentence, its ``nbest`` finished hypotheses (at least one, even if none finished)."""
    out = []
    for scores, logps, hyps in zip(fin_scores.tolist(), fin_logp.tolist(), fin_tokens.tolist()):
        nb = []
        for score, logp, toks in zip(scores[:nbest], logps[:nbest], hyps[:nbest]):
            if score != float("-inf") or not nb:
                nb.append(Hypothesis(toks[: toks.index(EOS)] if EOS in toks else toks, score, logp))
        out.append(nb)
    return out
