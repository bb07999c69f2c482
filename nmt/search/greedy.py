"""Greedy decoding and sampling (temperature, top-k), batched, dropping finished sentences."""
from __future__ import annotations

from typing import Callable, List

import torch

from ..data.spm import BOS, EOS
from .common import Hypothesis, check_options, constrain, max_lengths


def _one_best(model, src, src_lens, choose: Callable[[torch.Tensor], torch.Tensor],
              max_len_a: float, max_len_b: int, min_len: int) -> List[List[Hypothesis]]:
    memory, state = model.encode(src, src_lens)
    batch = src.size(0)
    limit = max_lengths(src_lens, max_len_a, max_len_b).to(src.device)  # (batch,)
    tokens = torch.full((batch, int(limit.max()) + 1), EOS, dtype=torch.long, device=src.device)
    scores = torch.zeros(batch, device=src.device, dtype=torch.float)
    active = torch.arange(batch, device=src.device)  # sentence ids of the rows still decoding
    prev = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
    for t in range(tokens.size(1)):
        logits, state, _ = model.step(prev, state, memory)
        logits = logits.float()  # (active, vocab)
        lse = torch.logsumexp(logits, dim=-1)  # normaliser of the unconstrained distribution
        logits = constrain(logits, t, min_len, t >= limit[active])
        tok = choose(logits)  # (active,)
        tokens[active, t] = tok
        scores[active] += logits.gather(1, tok[:, None]).squeeze(1) - lse  # log-probability of tok
        alive = tok != EOS
        if not bool(alive.all()):
            if not bool(alive.any()):
                break
            keep = alive.nonzero().squeeze(1)  # rows that go on
            state, memory = model.reorder(state, memory, keep)
            active, tok = active[keep], tok[keep]
        prev = tok
    out = []
    for row, score in zip(tokens.tolist(), scores.tolist()):
        out.append([Hypothesis(row[: row.index(EOS)] if EOS in row else row, score)])
    return out


@torch.inference_mode()
def greedy_search(model, src, src_lens, max_len_a: float = 1.5, max_len_b: int = 10,
                  min_len: int = 0) -> List[List[Hypothesis]]:
    """The most probable token at every step; one hypothesis per sentence (score: log-probability)."""
    check_options(min_len=min_len, max_len_a=max_len_a, max_len_b=max_len_b)
    return _one_best(model, src, src_lens, lambda logits: logits.argmax(-1), max_len_a, max_len_b, min_len)


@torch.inference_mode()
def sample_search(model, src, src_lens, temperature: float = 1.0, top_k: int = 0,
                  max_len_a: float = 1.5, max_len_b: int = 10, min_len: int = 0,
                  generator: torch.Generator = None) -> List[List[Hypothesis]]:
    """Ancestral sampling from softmax(logits / temperature), restricted to the top-k tokens if k > 0."""
    check_options(min_len=min_len, max_len_a=max_len_a, max_len_b=max_len_b, temperature=temperature, top_k=top_k)

    def choose(logits: torch.Tensor) -> torch.Tensor:
        scaled = logits / temperature
        if top_k:
            kth = scaled.topk(min(top_k, scaled.size(-1)), dim=-1).values[:, -1:]  # (rows, 1)
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        return torch.multinomial(torch.softmax(scaled, -1), 1, generator=generator).squeeze(1)

    return _one_best(model, src, src_lens, choose, max_len_a, max_len_b, min_len)
