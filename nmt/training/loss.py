"""The training objective: token-level cross-entropy with label smoothing.

The output layer and the loss run over all real (non-PAD) target positions, in chunks of rows whose
logits (rows x vocab floats) stay under glibc malloc's largest mmap threshold (``HEAP_BLOCK_MAX``).
Larger blocks are always mapped fresh and handed back on free, so the logits, their softmax and
their gradient would arrive as new pages that the kernel zero-fills on first touch, every update:
an exp over 1,150 x 8,000 floats took 18.5 ms into a new tensor and 5.3 ms into a reused one (2
AVX2 cores). Under the threshold, glibc keeps freed blocks for reuse (docs/benchmarks.md).
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from ..config import Feed
from ..data.spm import PAD
from ..models.seq2seq import Seq2Seq

# glibc's mmap threshold never rises above 32 MiB on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
HEAP_BLOCK_MAX = 32 << 20


class SmoothedCrossEntropy(torch.autograd.Function):
    """Per row, (label-smoothed cross-entropy, plain cross-entropy) of ``logits`` (rows, vocab) against
    ``target`` (rows,): ``(1 - e) * nll + e * mean over the vocabulary of -log p``, as
    ``F.cross_entropy(label_smoothing=e)`` computes it, with the plain nll read off the same
    log-softmax (no gradient).

    Written out because the generic graph's backward (the mean's and the gather's gradients filled
    in, added, then the log-softmax backward) passes over the (rows, vocab) tensor several times;
    here it is ``softmax - (1 - e) onehot - e / vocab`` scaled per row: the saved log-probabilities'
    exponential, a multiply and a subtract in place (by scalars when every row has the same upstream
    gradient, as under a sum)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, smoothing: float):
        logp = torch.log_softmax(logits, dim=-1)  # (rows, vocab)
        nll = -logp.gather(1, target[:, None]).squeeze(1)  # (rows,)
        loss = nll.clone() if smoothing == 0 else (1 - smoothing) * nll - smoothing * logp.mean(-1)
        ctx.save_for_backward(logp, target)
        ctx.smoothing = smoothing
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll):
        logp, target = ctx.saved_tensors
        e, vocab = ctx.smoothing, logp.size(-1)
        g: Union[float, torch.Tensor]
        if grad_loss.stride(0) == 0:  # one upstream gradient for every row (the loss was summed)
            g = float(grad_loss[0])
            grad = logp.exp().mul_(g).sub_(g * e / vocab)  # (rows, vocab)
            grad.scatter_add_(1, target[:, None], logp.new_full((target.numel(), 1), -(1 - e) * g))
        else:
            g = grad_loss[:, None]  # (rows, 1)
            grad = logp.exp().mul_(g).sub_(g * (e / vocab))
            grad.scatter_add_(1, target[:, None], -(1 - e) * g)
        return grad, None, None


def loss_and_nll(features: torch.Tensor, output: nn.Linear, target: torch.Tensor,
                 label_smoothing: float = 0.0, chunk_rows: int = 0):
    """(loss, nll): the mean over non-PAD targets of CE(output(features), target) with label
    smoothing, and the plain cross-entropy (no smoothing, no gradient), the number that compares
    with the validation loss.

    features: (batch, tgt_len, size); target: (batch, tgt_len) with PAD at padding. ``chunk_rows``:
    rows per output-layer call, 0 for as many as keep the fp32 logits under ``HEAP_BLOCK_MAX``.
    """
    if chunk_rows <= 0:
        chunk_rows = max(1, (HEAP_BLOCK_MAX - 4096) // (4 * output.out_features))
    feats = features.flatten(0, 1)  # (batch*tgt_len, size)
    tgt = target.flatten()  # (batch*tgt_len,)
    keep = tgt != PAD
    if not bool(keep.all()):
        feats, tgt = feats[keep], tgt[keep]  # padding never reaches the output layer
    total = feats.new_zeros((), dtype=torch.float)
    nll = torch.zeros((), dtype=torch.float, device=feats.device)
    for f, t in zip(feats.split(chunk_rows), tgt.split(chunk_rows)):
        logits = output(f).float()  # (rows, vocab)
        token_loss, token_nll = SmoothedCrossEntropy.apply(logits, t, float(label_smoothing))  # (rows,), (rows,)
        total = total + token_loss.sum()
        nll = nll + token_nll.sum()
    n = max(int(tgt.numel()), 1)
    return total / n, nll / n


def guided_alignment_loss(weights: torch.Tensor, align: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the attention the alignments ask for and the attention given, per target
    piece that has a link, averaged over those pieces (Garg et al. 2019; Marian's ``ce`` cost):
    ``-sum_s align[b, t, s] log weights[b, t, s]``. weights, align: (batch, tgt_len, src_len); rows of
    ``align`` sum to 1 where the piece has a link, else 0 (those rows add nothing)."""
    linked = align.sum(-1)  # (batch, tgt_len): 1 or 0
    weights = weights.to(torch.promote_types(weights.dtype, torch.float32))  # bf16/fp16 autocast: in fp32
    ce = -(align * weights.clamp_min(1e-9).log()).sum(-1)  # (batch, tgt_len)
    return ce.sum() / linked.sum().clamp_min(1.0)


class Objective(nn.Module):
    """Wraps the model so that DistributedDataParallel sees the whole loss computation as forward."""

    def __init__(self, model: Seq2Seq, label_smoothing: float = 0.0):
        super().__init__()
        self.model, self.label_smoothing = model, label_smoothing

    def forward(self, src, src_lens, tgt_in, tgt_out, tf_ratio: float = 1.0, feed: Feed = Feed.argmax,
                align: Optional[torch.Tensor] = None, align_weight: float = 0.0):
        """(mean training loss, mean plain cross-entropy without gradient, guided alignment loss
        without gradient) over the real target tokens. With ``align`` (``Batch.align``) and
        ``align_weight`` > 0, the loss adds ``align_weight`` times ``guided_alignment_loss``; the
        third value is that cross-entropy (0 without it)."""
        feats, weights = self.model.features(src, src_lens, tgt_in, tf_ratio=tf_ratio, feed=feed)
        loss, nll = loss_and_nll(feats, self.model.decoder.output, tgt_out, self.label_smoothing)
        if align is None or align_weight <= 0 or weights is None:
            return loss, nll, loss.new_zeros(())
        guided = guided_alignment_loss(weights, align)
        return loss + align_weight * guided, nll, guided.detach()
