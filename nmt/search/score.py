"""Forced decoding: the model's log-probability of given translations, through the same ``step``
that search uses (so a search result and its forced score agree)."""
from __future__ import annotations

from typing import List, Tuple

import torch

from ..data.spm import PAD


@torch.inference_mode()
def forced_logprobs(model, src, src_lens, tgt_in, tgt_out) -> List[Tuple[float, int]]:
    """Per sentence, (sum of log p(token | prefix) over the target + EOS, number of those tokens).

    src: (batch, src_len); tgt_in: (batch, tgt_len) BOS + target, PAD-padded;
    tgt_out: (batch, tgt_len) target + EOS, PAD-padded.
    """
    memory, state = model.encode(src, src_lens)
    total = torch.zeros(src.size(0), dtype=torch.float64, device=src.device)
    for t in range(tgt_in.size(1)):
        logits, state, _ = model.step(tgt_in[:, t], state, memory)
        logits = logits.float()  # (batch, vocab)
        gold = tgt_out[:, t]
        lp = logits.gather(1, gold.clamp(min=0)[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)
        total += torch.where(gold != PAD, lp, torch.zeros_like(lp)).double()
    counts = (tgt_out != PAD).sum(1)
    return list(zip(total.tolist(), counts.tolist()))
