"""The training objective: token-level cross-entropy with label smoothing.

The output layer and the loss run over all real (non-PAD) target positions in one matmul; only
batches of more than ``chunk_rows`` target tokens are split, to bound the size of the logits
tensor (rows x vocab). Smaller chunks were measured slower on CPU, so the default is large.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.spm import PAD


def chunked_cross_entropy(features: torch.Tensor, output: nn.Linear, target: torch.Tensor,
                          label_smoothing: float = 0.0, chunk_rows: int = 4096) -> torch.Tensor:
    """Mean over non-PAD targets of CE(output(features), target).

    features: (batch, tgt_len, size); target: (batch, tgt_len) with PAD at padding.
    """
    feats = features.flatten(0, 1)  # (batch*tgt_len, size)
    tgt = target.flatten()  # (batch*tgt_len,)
    keep = tgt != PAD
    if not bool(keep.all()):
        feats, tgt = feats[keep], tgt[keep]  # padding never reaches the output layer
    total = feats.new_zeros((), dtype=torch.float)
    for f, t in zip(feats.split(chunk_rows), tgt.split(chunk_rows)):
        total = total + F.cross_entropy(output(f).float(), t, reduction="sum", label_smoothing=label_smoothing)
    return total / max(int(tgt.numel()), 1)


class Objective(nn.Module):
    """Wraps the model so that DistributedDataParallel sees the whole loss computation as forward."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0):
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, src, src_lens, tgt_in, tgt_out, tf_ratio: float = 1.0, feed: str = "argmax") -> torch.Tensor:
        feats, _ = self.model.features(src, src_lens, tgt_in, tf_ratio=tf_ratio, feed=feed)
        return chunked_cross_entropy(feats, self.model.decoder.output, tgt_out, self.label_smoothing)
