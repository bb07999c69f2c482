"""Greedy decoding and sampling (temperature, top-k, nucleus), batched, dropping finished sentences.

Both run over torch tensors and numpy arrays alike (``arrays.py``); sampling draws from the
backend's own generator."""
from __future__ import annotations

from typing import Any, Callable, List, Optional

from ..data.spm import BOS, EOS
from .arrays import NumpyOps, ops_for
from .common import Hypothesis, Prefix, length_limits, normaliser, restrict
from .options import SearchOptions, Strategy


def _one_best(model, src, src_lens, choose: Callable[[Any], Any],
              options: SearchOptions, prefix: Optional[Prefix] = None) -> List[List[Hypothesis]]:
    xp = ops_for(src, model)
    memory, state = model.encode(src, src_lens)
    batch = src.shape[0]
    limit = length_limits(src_lens, options, prefix, xp)  # (batch,)
    tokens = xp.full((batch, int(limit.max()) + 1), EOS, xp.long)
    scores = xp.zeros((batch,), xp.float)
    active = xp.arange(batch)  # sentence ids of the rows still decoding
    prev = xp.full((batch,), BOS, xp.long)
    for t in range(tokens.shape[1]):
        logits, state, _ = model.step(prev, state, memory)
        logits = xp.astype(logits, xp.float)  # (active, vocab)
        lse = normaliser(xp, model, logits)[:, 0]  # of the unconstrained distribution
        restrict(logits, t, options, t >= limit[active], tokens[active, :t], prefix, active)
        tok = choose(logits)  # (active,)
        tokens[active, t] = tok
        scores[active] += xp.take_along(logits, tok[:, None], 1)[:, 0] - lse  # log-probability of tok
        alive = tok != EOS
        if not bool(alive.all()):
            if not bool(alive.any()):
                break
            keep = xp.nonzero(alive)  # rows that go on
            state, memory = model.reorder(state, memory, keep)
            active, tok = active[keep], tok[keep]
        prev = tok
    out = []
    for row, score in zip(tokens.tolist(), scores.tolist()):
        out.append([Hypothesis(row[: row.index(EOS)] if EOS in row else row, score, score)])
    return out


def greedy_search(model, src, src_lens, options: SearchOptions = SearchOptions(strategy=Strategy.greedy),
                  prefix: Optional[Prefix] = None) -> List[List[Hypothesis]]:
    """The most probable token at every step (after the ``prefix``, if any); one hypothesis per
    sentence (score: log-probability, the prefix's included)."""
    with ops_for(src, model).no_grad():
        return _one_best(model, src, src_lens, lambda logits: logits.argmax(-1), options, prefix)


def sample_search(model, src, src_lens, options: SearchOptions = SearchOptions(strategy=Strategy.sample),
                  generator=None, prefix: Optional[Prefix] = None) -> List[List[Hypothesis]]:
    """Ancestral sampling from softmax(logits / temperature), restricted to the top-k tokens if k > 0
    and to the nucleus (the fewest most probable tokens whose probability reaches top_p) if p < 1.
    ``generator``: a ``torch.Generator`` for a torch model, a ``numpy.random.Generator`` for numpy
    arrays (default: seeded with ``options.seed``)."""
    xp = ops_for(src, model)
    choose = _numpy_sampler(options, generator) if isinstance(xp, NumpyOps) else _torch_sampler(options, generator)
    with xp.no_grad():
        return _one_best(model, src, src_lens, choose, options, prefix)


def _torch_sampler(options: SearchOptions, generator):
    import torch
    temperature, top_k, top_p = options.temperature, options.top_k, options.top_p

    def choose(logits: torch.Tensor) -> torch.Tensor:
        scaled = logits / temperature
        if top_k:
            kth = scaled.topk(min(top_k, scaled.size(-1)), dim=-1).values[:, -1:]  # (rows, 1)
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        if top_p < 1.0:
            probs, order = torch.softmax(scaled, -1).sort(dim=-1, descending=True)  # (rows, vocab)
            outside = probs.cumsum(-1) - probs >= top_p  # mass before a token already reaches p
            scaled = scaled.masked_fill(outside.scatter(1, order, outside), float("-inf"))
        return torch.multinomial(torch.softmax(scaled, -1), 1, generator=generator).squeeze(1)

    return choose


def _numpy_sampler(options: SearchOptions, generator):
    """The same distribution as ``_torch_sampler`` (not the same draws: another generator)."""
    import numpy as np
    rng = generator if generator is not None else np.random.default_rng(options.seed)
    temperature, top_k, top_p = options.temperature, options.top_k, options.top_p

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def choose(logits):
        scaled = logits / temperature
        if top_k:
            kth = -np.partition(-scaled, min(top_k, scaled.shape[-1]) - 1, axis=-1)[:, min(top_k, scaled.shape[-1]) - 1]
            scaled = np.where(scaled < kth[:, None], -np.inf, scaled)
        if top_p < 1.0:
            order = np.argsort(-scaled, axis=-1, kind="stable")  # (rows, vocab), most probable first
            probs = np.take_along_axis(softmax(scaled), order, -1)
            outside = np.zeros(scaled.shape, dtype=bool)
            np.put_along_axis(outside, order, probs.cumsum(-1) - probs >= top_p, -1)
            scaled = np.where(outside, -np.inf, scaled)
        cdf = softmax(scaled.astype(np.float64)).cumsum(-1)  # (rows, vocab)
        draw = rng.random((scaled.shape[0], 1)) * cdf[:, -1:]
        return np.minimum((cdf <= draw).sum(-1), scaled.shape[-1] - 1)

    return choose
