"""The training data of a run: one or several encoded corpora, drawn each epoch in proportion to
their weights.

An epoch draws as many pairs as the corpora hold together, ``total * weight / sum of weights``
from each (the rounding remainder goes to the largest fractions, so the quotas add up to the
total). A corpus drawn below its size gives a fresh random subset each epoch; above it, whole
passes plus a random remainder (upsampling). The draw depends only on (seed, epoch), so a resumed
run sees exactly the batches an uninterrupted one would; with one corpus it is every pair once, and
the batches are those of that corpus alone.

Pairs are numbered across corpora (corpus ``k``'s pairs follow those of corpora ``0..k-1``); every
corpus stays in its own memory-mapped cache entry and nothing is copied.
"""
from __future__ import annotations

import hashlib
from typing import List, Optional, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..config import CorpusSpec
from .batching import Batch, TokenArrays
from .dataset import EncodedCorpus
from .spm import PAD


def quotas(sizes: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Pairs drawn from each corpus per epoch: ``sum(sizes)`` split by ``weights`` (largest remainders
    rounded up), at least one from each."""
    n, w = np.asarray(sizes, dtype=np.int64), np.asarray(weights, dtype=np.float64)
    exact = n.sum() * w / w.sum()  # (k,)
    out = np.floor(exact).astype(np.int64)
    short = int(n.sum() - out.sum())
    out[np.argsort(-(exact - out), kind="stable")[:short]] += 1
    return np.maximum(out, 1)


def draw(sizes: ArrayLike, weights: ArrayLike, seed: int, epoch: int) -> np.ndarray:
    """(sum of quotas,) int64: the pairs (numbered across corpora) of one epoch, corpus by corpus."""
    rng = np.random.default_rng([seed & (2 ** 64 - 1), epoch, 0x6D6978])  # any train.seed, negative too
    counts = np.asarray(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for k, (size, n) in enumerate(zip(counts, quotas(counts, weights))):
        passes, rest = divmod(int(n), int(size))
        whole = np.tile(np.arange(size, dtype=np.int64), passes)  # (passes * size,)
        some = np.sort(rng.choice(size, rest, replace=False)).astype(np.int64)  # (rest,)
        parts.append(starts[k] + np.concatenate([whole, some]))
    return np.concatenate(parts)


def combined_fingerprint(fingerprints: Sequence[str]) -> str:
    """The content hash of several corpora: the corpus's own for one (as checkpoints store it), one
    hash over all of them, in order, otherwise."""
    if len(fingerprints) == 1:
        return fingerprints[0]
    return hashlib.blake2b("|".join(fingerprints).encode(), digest_size=16).hexdigest()


class TrainingData:
    """The encoded training corpora of a run, addressed as one: ``batch``, lengths, the epoch's draw."""

    def __init__(self, parts: Sequence[EncodedCorpus], specs: Sequence[CorpusSpec]):
        if len(parts) != len(specs) or not parts:
            raise ValueError("one encoded corpus per spec, at least one")
        self.parts, self.specs = list(parts), list(specs)
        self.sizes = np.array([len(p) for p in self.parts], dtype=np.int64)  # (k,)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])  # (k + 1,)
        self.src_lens = np.concatenate([p.src_lens for p in self.parts])  # (total,)
        self.tgt_lens = np.concatenate([p.tgt_lens for p in self.parts])  # (total,)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def resegmented(self, parts: Sequence[EncodedCorpus]) -> TrainingData:
        """The same pairs in another segmentation (an epoch's subword sampling): the same corpora,
        sizes and fingerprint, other token arrays."""
        if [len(p) for p in parts] != self.sizes.tolist():
            raise ValueError("a resegmentation holds the same pairs")
        for new, old in zip(parts, self.parts):
            new.fingerprint, new.guide, new.factors = old.fingerprint, old.guide, old.factors
        return TrainingData(parts, self.specs)

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.specs]

    @property
    def fingerprint(self) -> Optional[str]:
        """The content hash of the training files (``combined_fingerprint``)."""
        return combined_fingerprint([p.fingerprint or "" for p in self.parts]) or None

    def epoch_pairs(self, seed: int, epoch: int) -> np.ndarray:
        """The pairs of epoch ``epoch`` (numbered across corpora; a pair may come more than once)."""
        if len(self.parts) == 1:
            return np.arange(len(self), dtype=np.int64)
        return draw(self.sizes, [s.weight for s in self.specs], seed, epoch)

    def corpus_of(self, idx) -> np.ndarray:
        """The corpus (its position in ``specs``) of each pair in ``idx``."""
        return np.searchsorted(self.starts, np.asarray(idx, dtype=np.int64), side="right") - 1

    def batch(self, idx) -> Batch:
        """Pairs ``idx`` (numbered across corpora) as one padded batch, in the order given."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(self.parts) == 1:
            return self.parts[0].batch(idx)
        corpus = self.corpus_of(idx)  # (b,)
        pieces, rows = [], []
        for k in np.unique(corpus):
            mine = np.flatnonzero(corpus == k)
            pieces.append(self.parts[k].batch(idx[mine] - self.starts[k]))
            rows.append(mine)
        back = torch.from_numpy(np.argsort(np.concatenate(rows)))  # (b,) row of each pair in the cat

        def join(tensors: List[torch.Tensor]) -> torch.Tensor:  # each (b_k, w_k[, c]) -> (b, max w_k[, c]), PAD right
            width = max(t.size(1) for t in tensors)
            return torch.cat([torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, width - t.size(1)), value=PAD)
                              for t in tensors])[back]

        batch = Batch(src=join([p.src for p in pieces]), src_lens=torch.cat([p.src_lens for p in pieces])[back],
                      tgt_in=join([p.tgt_in for p in pieces]), tgt_out=join([p.tgt_out for p in pieces]))
        if any(p.align is not None for p in pieces):  # corpora without alignments get rows of zeros
            t, s = batch.tgt_out.size(1), batch.src.size(1)
            batch.align = torch.cat([torch.zeros(p.size, t, s) if p.align is None else torch.nn.functional.pad(
                p.align, (0, s - p.align.size(2), 0, t - p.align.size(1))) for p in pieces])[back]  # (b, t, s)
        return batch

    def sample(self, max_pairs: int, seed: int = 1) -> EncodedCorpus:
        """At most ``max_pairs`` pairs in memory, drawn from each corpus in proportion to its epoch
        quota (a fixed random sample): what the lexical shortlist counts."""
        if len(self.parts) == 1:
            return self.parts[0]
        share = quotas(self.sizes, [s.weight for s in self.specs]) / len(self)
        rng = np.random.default_rng(seed)
        src, tgt = [], []
        for part, size, s in zip(self.parts, self.sizes, share):
            n = min(int(size), max(1, int(round(max_pairs * s))))
            chosen = np.sort(rng.choice(int(size), n, replace=False))  # (n,)
            src.append(part.src.take(chosen))
            tgt.append(part.tgt.take(chosen))
        return EncodedCorpus(TokenArrays.concat(src), TokenArrays.concat(tgt))
