"""Token-budget batches with length bucketing, and padding into tensors.

Pairs are sorted by length (ties broken at random, per epoch), cut into batches that respect
``max_tokens`` (padded source or target tokens, whichever is larger) and ``max_sentences``, and
the batch order is shuffled. Everything depends only on (seed, epoch), so a resumed run sees
exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch

from .spm import BOS, EOS, PAD


@dataclass
class Batch:
    src: torch.Tensor  # (batch, src_len) source ids + EOS, PAD-padded
    src_lens: torch.Tensor  # (batch,) int64, on CPU (pack_padded_sequence wants it there)
    tgt_in: torch.Tensor  # (batch, tgt_len) BOS + target ids, PAD-padded
    tgt_out: torch.Tensor  # (batch, tgt_len) target ids + EOS, PAD-padded
    index: torch.Tensor  # (batch,) positions of the pairs in the corpus

    @property
    def size(self) -> int:
        return self.src.size(0)

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD).sum())

    def to(self, device) -> "Batch":
        return Batch(self.src.to(device, non_blocking=True), self.src_lens,
                     self.tgt_in.to(device, non_blocking=True),
                     self.tgt_out.to(device, non_blocking=True), self.index)


def pad(seqs: Sequence[Sequence[int]], prefix: Sequence[int] = (), suffix: Sequence[int] = ()) -> torch.Tensor:
    """Right-padded (len(seqs), max_len) int64 tensor of ``prefix + seq + suffix``."""
    width = max(len(s) for s in seqs) + len(prefix) + len(suffix)
    out = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for row, s in enumerate(seqs):
        full = list(prefix) + list(s) + list(suffix)
        out[row, : len(full)] = torch.tensor(full, dtype=torch.long)
    return out


def source_tensor(src: Sequence[Sequence[int]]):
    """Source ids + EOS, padded: (batch, src_len) and the (batch,) lengths."""
    lens = torch.tensor([len(s) + 1 for s in src], dtype=torch.long)
    return pad(src, suffix=[EOS]), lens


def collate(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], index: Sequence[int]) -> Batch:
    src_t, src_lens = source_tensor(src)
    return Batch(src=src_t, src_lens=src_lens, tgt_in=pad(tgt, prefix=[BOS]),
                 tgt_out=pad(tgt, suffix=[EOS]), index=torch.tensor(list(index), dtype=torch.long))


def make_batches(src_lens: Sequence[int], tgt_lens: Sequence[int], max_tokens: int,
                 max_sentences: int = 0, seed: int = 1, epoch: int = 0,
                 shuffle: bool = True) -> List[List[int]]:
    """Batches of pair indices of similar length, in an order fixed by (seed, epoch).

    A batch holds as many pairs as fit ``max_tokens`` counted with padding,
    ``batch * max(longest source, longest target)``, and at most ``max_sentences`` (0: no limit).
    A single pair longer than ``max_tokens`` gets a batch of its own.
    """
    n = len(src_lens)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    tie = torch.randperm(n, generator=gen).tolist() if shuffle else list(range(n))
    # Sort by target length, then source length, random among equals: similar pairs sit together.
    order = sorted(range(n), key=lambda i: (tgt_lens[i], src_lens[i], tie[i]))
    batches, current, longest = [], [], 0
    for i in order:
        length = max(src_lens[i], tgt_lens[i]) + 1  # + EOS / BOS
        grown = max(longest, length)
        full = current and (grown * (len(current) + 1) > max_tokens
                            or (max_sentences and len(current) >= max_sentences))
        if full:
            batches.append(current)
            current, grown = [], length
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    if shuffle:
        perm = torch.randperm(len(batches), generator=gen).tolist()
        batches = [batches[p] for p in perm]
    return batches


def padding_fraction(batches: Sequence[Sequence[int]], src_lens: Sequence[int], tgt_lens: Sequence[int]) -> float:
    """Fraction of source + target positions in ``batches`` that are padding."""
    real = padded = 0
    for b in batches:
        s = [src_lens[i] + 1 for i in b]
        t = [tgt_lens[i] + 1 for i in b]
        real += sum(s) + sum(t)
        padded += len(b) * (max(s) + max(t))
    return 1.0 - real / padded if padded else 0.0
