"""The training objective: token-level cross-entropy with label smoothing.

The output layer and the loss are one function (``LinearCrossEntropy``): over all real (non-PAD)
target positions, chunk by chunk, it computes the logits, the loss and, in the same pass, the
gradient of the summed loss with respect to the logits, and turns it at once into the gradients of
the features, the weight and the bias. The logits never outlive their chunk, so the loss holds one
chunk of logits and the gradients, where the generic graph kept every row's log-probabilities for
backward: 4,096 target tokens over a 32,000-piece vocabulary grew the process by 815 MB that way
and by 185-216 MB this way, at the same speed (and level on a whole update of the recipe: paired
A/B, docs/benchmarks.md). Chunks stay under glibc malloc's largest mmap threshold
(``HEAP_BLOCK_MAX``): larger blocks are mapped fresh and handed back on free, so they would arrive
as new pages that the kernel zero-fills on first touch, every update (an exp over 1,150 x 8,000
floats took 18.5 ms into a new tensor and 5.3 ms into a reused one on 2 AVX2 cores); under it,
glibc keeps freed blocks for reuse (docs/benchmarks.md).

Training may run the softmax over a sample of the columns instead of the whole vocabulary
(``sample_columns``, ``train.softmax_samples``): each batch's target pieces and N others.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from ..config import Feed
from ..data.spm import PAD
from ..models.seq2seq import Seq2Seq

# glibc's mmap threshold never rises above 32 MiB on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
HEAP_BLOCK_MAX = 32 << 20


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype autocast would run a linear layer in here (``t``'s own without autocast)."""
    kind = t.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else t.dtype


class LinearCrossEntropy(torch.autograd.Function):
    """Sums over rows of (label-smoothed cross-entropy, plain cross-entropy) of the logits
    ``feats W^T + b`` (rows, vocab) against ``target`` (rows,): per row ``(1 - e) * nll + e * mean
    over the vocabulary of -log p``, as ``F.cross_entropy(label_smoothing=e)`` computes it; the
    plain nll carries no gradient.

    Forward runs ``chunk_rows`` rows at a time. Each chunk's logits (fp32; the product itself at
    autocast's precision, as ``nn.Linear`` would run it) give the log-normalizer, the target's
    logit and the loss; the vocabulary mean of the logits needs no pass over them (``feats
    mean_v(W) + mean_v(b)``). Where a gradient is wanted, the logits become in place the gradient of
    the summed loss, ``softmax - (1 - e) onehot - e / vocab``, which two GEMMs turn into the chunk's
    feature gradient and its share of the weight gradient; backward scales them by the upstream
    gradient (a scalar: the outputs are sums), into new tensors, so the graph may be walked again.
    ``want_grad`` False (the caller's grad mode is off: ``needs_input_grad`` cannot tell inside
    forward) computes the loss alone. With ``cand`` (columns,) and ``shift`` (columns,) from
    ``sample_columns`` (``target`` then indexes ``cand``), the softmax runs over those columns only,
    each logit plus its shift; the smoothing's vocabulary mean stays the whole vocabulary's, and the
    weight and bias gradients come back whole-vocabulary sized."""

    @staticmethod
    def forward(ctx, feats, weight, bias, target, smoothing: float, chunk_rows: int, want_grad: bool = True,
                cand: Optional[torch.Tensor] = None, shift: Optional[torch.Tensor] = None):
        e, vocab = smoothing, weight.size(0)
        dtype = _compute_dtype(feats)
        acc = torch.promote_types(dtype, torch.float32)  # the softmax and the sums: fp32 at least
        with torch.autocast(feats.device.type, enabled=False):  # the dtypes are chosen here
            f, w = feats.to(dtype), weight.to(dtype)
            b = None if bias is None else bias.to(dtype)
            mean_w = weight.to(acc).mean(0)  # (size,): the vocabulary mean of the logits is feats . mean_w
            mean_logit = feats.to(acc) @ mean_w  # (rows,)
            if bias is not None:
                mean_logit += bias.to(acc).mean()
            if cand is not None:  # the softmax runs over these columns only: (cands, size), (cands,)
                w, b = w.index_select(0, cand), None if b is None else b.index_select(0, cand)
            loss = feats.new_zeros((), dtype=acc)
            nll = feats.new_zeros((), dtype=acc)
            grad_f = torch.empty(f.shape, dtype=acc, device=f.device) if want_grad else None
            grad_w = grad_b = None
            for start in range(0, f.size(0), chunk_rows):
                rows = slice(start, start + chunk_rows)
                fc, tc = f[rows], target[rows]
                logits = (fc.mm(w.t()) if b is None else torch.addmm(b, fc, w.t())).to(acc)  # (chunk, columns)
                if shift is not None:
                    logits += shift  # a sampled column stands for (rest / samples) columns
                lse = torch.logsumexp(logits, 1)  # (chunk,)
                token_nll = lse - logits.gather(1, tc[:, None]).squeeze(1)  # (chunk,)
                nll += token_nll.sum()
                loss += token_nll.sum() if e == 0 else ((1 - e) * token_nll + e * (lse - mean_logit[rows])).sum()
                if grad_f is None:  # no gradient wanted
                    continue
                grad = logits.sub_(lse[:, None]).exp_()  # (chunk, columns): the softmax, in place
                if e and cand is None:
                    grad.sub_(e / vocab)  # the smoothing's mean over the vocabulary (sampled: added below)
                grad.scatter_add_(1, tc[:, None], grad.new_full((tc.numel(), 1), -(1 - e)))
                g = grad.to(dtype)
                grad_f[rows] = g.mm(w)  # (chunk, size)
                if grad_w is None:
                    grad_w = g.t().mm(fc).to(acc)  # (columns, size)
                elif dtype == acc:
                    grad_w.addmm_(g.t(), fc)  # in place: no (columns, size) temporary per chunk
                else:
                    grad_w.add_(g.t().mm(fc))
                if b is not None:
                    grad_b = grad.sum(0) if grad_b is None else grad_b.add_(grad.sum(0))
            if cand is not None and grad_w is not None:  # back to the whole vocabulary
                grad_w = grad_w.new_zeros((vocab, w.size(1))).index_add_(0, cand, grad_w)  # (vocab, size)
                grad_b = None if grad_b is None else grad_b.new_zeros(vocab).index_add_(0, cand, grad_b)
                if e:  # d(-e * mean logit) / d(logit) = -e / vocab for every column of every row
                    grad_f -= e * mean_w
                    grad_w -= (e / vocab) * f.to(acc).sum(0)
                    if grad_b is not None:
                        grad_b -= e * f.size(0) / vocab
        ctx.grads = (grad_f, grad_w, grad_b)
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_nll):
        grad_f, grad_w, grad_b = ctx.grads
        if grad_w is None:  # empty target: no chunk ran
            return None, None, None, None, None, None, None, None, None
        return (grad_f * grad_loss, grad_w * grad_loss, None if grad_b is None else grad_b * grad_loss,
                None, None, None, None, None, None)


def sample_columns(target: torch.Tensor, vocab: int, samples: int):
    """The output columns a sampled softmax computes: every piece ``target`` holds, and ``samples``
    others drawn uniformly without replacement (from the global generator: resume replays them).
    Returns (cand (n,), shift (n,), target as positions in cand): ``shift`` is 0 for a target's
    own columns and log(others / samples) for a sampled one, so its exp stands for the columns it
    was drawn from and the log-normalizer over cand estimates the full vocabulary's (Jean et al.
    2015's target set, with the usual log-proposal correction for the sampled part). None where
    the sample would cover the whole vocabulary."""
    pos, at = target.unique(return_inverse=True)  # (p,) sorted; target's positions in it
    present = torch.zeros(vocab, dtype=torch.bool, device=target.device)
    present[pos] = True
    rest = (~present).nonzero().squeeze(1)  # (vocab - p,)
    if samples >= rest.numel():
        return None
    pick = rest[torch.randperm(rest.numel(), device=target.device)[:samples]]  # (samples,)
    shift = torch.zeros(pos.numel() + samples, device=target.device)
    shift[pos.numel():] = math.log(rest.numel() / samples)
    return torch.cat([pos, pick]), shift, at


def loss_and_nll(features: torch.Tensor, output: nn.Linear, target: torch.Tensor,
                 label_smoothing: float = 0.0, chunk_rows: int = 0, softmax_samples: int = 0):
    """(loss, nll): the mean over non-PAD targets of CE(output(features), target) with label
    smoothing, and the plain cross-entropy (no smoothing, no gradient), the number that compares
    with the validation loss.

    features: (batch, tgt_len, size); target: (batch, tgt_len) with PAD at padding. ``chunk_rows``:
    rows per chunk, 0 for as many as keep the fp32 logits under ``HEAP_BLOCK_MAX``.
    ``softmax_samples`` > 0 (training only: where a gradient is wanted): the softmax runs over the
    batch's target pieces and that many others sampled uniformly (``sample_columns``), and both
    numbers are that estimate; the smoothing's vocabulary mean stays exact.
    """
    vocab = output.out_features
    if chunk_rows <= 0:
        chunk_rows = max(1, (HEAP_BLOCK_MAX - 4096) // (4 * vocab))
    feats = features.flatten(0, 1)  # (batch*tgt_len, size)
    tgt = target.flatten()  # (batch*tgt_len,)
    keep = tgt != PAD
    if not bool(keep.all()):
        feats, tgt = feats[keep], tgt[keep]  # padding never reaches the output layer
    want_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                                for t in (feats, output.weight, output.bias))
    cand = shift = None
    if softmax_samples > 0 and want_grad and tgt.numel():
        sampled = sample_columns(tgt, vocab, softmax_samples)
        if sampled is not None:
            cand, shift, tgt = sampled
    total, nll = LinearCrossEntropy.apply(feats, output.weight, output.bias, tgt, float(label_smoothing), chunk_rows,
                                          want_grad, cand, shift)  # validation (no_grad): the loss alone
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

    def __init__(self, model: Seq2Seq, label_smoothing: float = 0.0, softmax_samples: int = 0):
        super().__init__()
        self.model, self.label_smoothing, self.softmax_samples = model, label_smoothing, softmax_samples

    def forward(self, src, src_lens, tgt_in, tgt_out, tf_ratio: float = 1.0, feed: Feed = Feed.argmax,
                align: Optional[torch.Tensor] = None, align_weight: float = 0.0):
        """(mean training loss, mean plain cross-entropy without gradient, guided alignment loss
        without gradient) over the real target tokens. With ``align`` (``Batch.align``) and
        ``align_weight`` > 0, the loss adds ``align_weight`` times ``guided_alignment_loss``; the
        third value is that cross-entropy (0 without it)."""
        feats, weights = self.model.features(src, src_lens, tgt_in, tf_ratio=tf_ratio, feed=feed)
        loss, nll = loss_and_nll(feats, self.model.decoder.output, tgt_out, self.label_smoothing,
                                 softmax_samples=self.softmax_samples)
        if align is None or align_weight <= 0 or weights is None:
            return loss, nll, loss.new_zeros(())
        guided = guided_alignment_loss(weights, align)
        return loss + align_weight * guided, nll, guided.detach()
