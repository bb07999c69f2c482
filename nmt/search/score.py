"""Forced decoding: the model's log-probability of given translations, through the same ``step``
that search uses (so a search result and its forced score agree)."""
from __future__ import annotations

from typing import List, Tuple

from ..data.spm import PAD
from .arrays import ops_for
from .common import normaliser


def forced_logprobs(model, src, src_lens, tgt_in, tgt_out) -> List[Tuple[float, int]]:
    """Per sentence, (sum of log p(token | prefix) over the target + EOS, number of those tokens).

    src: (batch, src_len); tgt_in: (batch, tgt_len) BOS + target, PAD-padded;
    tgt_out: (batch, tgt_len) target + EOS, PAD-padded (torch tensors or numpy arrays, as the model's).
    """
    xp = ops_for(src, model)
    with xp.no_grad():
        memory, state = model.encode(src, src_lens)
        total = xp.zeros((src.shape[0],), xp.double)
        for t in range(tgt_in.shape[1]):
            logits, state, _ = model.step(tgt_in[:, t], state, memory)
            logits = xp.astype(logits, xp.float)  # (batch, vocab)
            gold = tgt_out[:, t]
            lp = xp.take_along(logits, gold.clip(0, None)[:, None], 1)[:, 0] - normaliser(xp, model, logits)[:, 0]
            total += xp.astype(xp.where(gold != PAD, lp, 0.0), xp.double)
        counts = (tgt_out != PAD).sum(1)
    return list(zip(total.tolist(), counts.tolist()))
