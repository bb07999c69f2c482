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
    """Mean over non-PAD targets of CE(output(features), target), with label smoothing."""
    return loss_and_nll(features, output, target, label_smoothing, chunk_rows)[0]


def loss_and_nll(features: torch.Tensor, output: nn.Linear, target: torch.Tensor,
                 label_smoothing: float = 0.0, chunk_rows: int = 4096):
    """(loss, nll): the mean over non-PAD targets of CE(output(features), target) with label
    smoothing, and the plain cross-entropy (no smoothing, no gradient), the number that compares
    with the validation loss.

    features: (batch, tgt_len, size); target: (batch, tgt_len) with PAD at padding.
    """
    feats = features.flatten(0, 1)  # (batch*tgt_len, size)
    tgt = target.flatten()  # (batch*tgt_len,)
    keep = tgt != PAD
    if not bool(keep.all()):
        feats, tgt = feats[keep], tgt[keep]  # padding never reaches the output layer
    total = feats.new_zeros((), dtype=torch.float)
    nll = torch.zeros((), dtype=torch.float, device=feats.device)
    for f, t in zip(feats.split(chunk_rows), tgt.split(chunk_rows)):
        logits = output(f).float()  # (rows, vocab)
        if label_smoothing > 0:
            # (1 - e) * nll + e * mean over the vocabulary of -log p: cross_entropy's smoothing, with
            # the plain nll read off the same log-softmax.
            logp = torch.log_softmax(logits, dim=-1)
            token_nll = -logp.gather(1, t[:, None]).squeeze(1)
            total = total + ((1 - label_smoothing) * token_nll - label_smoothing * logp.mean(-1)).sum()
            nll = nll + token_nll.detach().sum()
        else:
            part = F.cross_entropy(logits, t, reduction="sum")
            total = total + part
            nll = nll + part.detach()
    n = max(int(tgt.numel()), 1)
    return total / n, nll / n


class Objective(nn.Module):
    """Wraps the model so that DistributedDataParallel sees the whole loss computation as forward."""

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0):
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, src, src_lens, tgt_in, tgt_out, tf_ratio: float = 1.0, feed: str = "argmax"):
        """(mean training loss, mean plain cross-entropy without gradient) over the real target tokens."""
        feats, _ = self.model.features(src, src_lens, tgt_in, tf_ratio=tf_ratio, feed=feed)
        return loss_and_nll(feats, self.model.decoder.output, tgt_out, self.label_smoothing)
