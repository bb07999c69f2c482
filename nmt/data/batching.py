"""Token arrays, token-budget batches with length bucketing, and padding into tensors.

``TokenArrays`` holds sequences of ids as one flat array and offsets (in memory, or memory-mapped
from the training-corpus cache); every padded tensor and ``Batch`` is built from it by one gather.

Pairs are sorted by length (ties broken at random, per epoch), cut into batches that respect
``max_tokens`` (padded source or target tokens, whichever is larger) and ``max_sentences``, and
the batch order is shuffled. Everything depends only on (seed, epoch), so a resumed run sees
exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

from .spm import BOS, EOS, PAD

if TYPE_CHECKING:  # torch is imported where a tensor is made: padding numpy arrays needs none
    import torch


@dataclass
class Batch:
    src: torch.Tensor  # (batch, src_len) source ids + EOS, PAD-padded
    src_lens: torch.Tensor  # (batch,) int64, on CPU (pack_padded_sequence wants it there)
    tgt_in: torch.Tensor  # (batch, tgt_len) BOS + target ids, PAD-padded
    tgt_out: torch.Tensor  # (batch, tgt_len) target ids + EOS, PAD-padded
    # guided alignment: (batch, tgt_len, src_len) attention each target piece should give each source
    # piece (rows sum to 1, or 0 where the piece has no link); None when the corpus has no alignments
    align: Optional[torch.Tensor] = None

    @property
    def size(self) -> int:
        return self.src.size(0)

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD).sum())

    def to(self, device) -> Batch:
        return Batch(self.src.to(device, non_blocking=True), self.src_lens,
                     self.tgt_in.to(device, non_blocking=True),
                     self.tgt_out.to(device, non_blocking=True),
                     None if self.align is None else self.align.to(device, non_blocking=True))


def pad_flat(tokens: np.ndarray, starts: np.ndarray, lens: np.ndarray, bos: bool = False,
             eos: bool = False) -> torch.Tensor:
    """``pad_flat_array`` as a tensor."""
    import torch
    return torch.from_numpy(pad_flat_array(tokens, starts, lens, bos, eos))


def pad_flat_array(tokens: np.ndarray, starts: np.ndarray, lens: np.ndarray, bos: bool = False,
                   eos: bool = False) -> np.ndarray:
    """(len(starts), width) int64 array whose row r is ``[BOS] + tokens[starts[r]:starts[r] + lens[r]] + [EOS]``
    (BOS and EOS where asked), PAD-padded on the right. Tokens of shape (total, columns) (sources with
    factors) give (len(starts), width, columns), BOS/EOS/PAD in every column."""
    starts, lens = np.asarray(starts, dtype=np.int64), np.asarray(lens, dtype=np.int64)  # (b,), (b,)
    cols = np.arange(int(lens.max()) if len(lens) else 0)  # (w,)
    inside = cols[None, :] < lens[:, None]  # (b, w): real tokens, not padding
    out = np.full((len(lens), len(cols) + bos + eos, *tokens.shape[1:]), PAD, dtype=np.int64)  # (b, w + bos + eos, ...)
    if tokens.size and cols.size:
        gather = np.where(inside, starts[:, None] + cols[None, :], 0)  # (b, w) positions in tokens
        real = inside.reshape(inside.shape + (1,) * (tokens.ndim - 1))  # (b, w[, 1])
        out[:, int(bos):int(bos) + len(cols)] = np.where(real, tokens[gather], PAD)
    if bos:
        out[:, 0] = BOS
    if eos:
        out[np.arange(len(lens)), lens + int(bos)] = EOS
    return out


def ragged_positions(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The ranges [starts[i], starts[i] + lens[i]) concatenated into one array."""
    ends = np.cumsum(lens)  # (n,)
    return np.repeat(starts - (ends - lens), lens) + np.arange(ends[-1] if len(ends) else 0)


class TokenArrays:
    """Sequences of token ids as one flat array and offsets: ``self[i]`` is sequence i."""

    def __init__(self, tokens: np.ndarray, lens: np.ndarray):
        self.tokens = tokens  # (total tokens,) uint16 or int32; may be a read-only memory map
        self.lens = np.asarray(lens, dtype=np.int64)  # (n,)
        self.offsets = np.zeros(len(self.lens) + 1, dtype=np.int64)  # (n + 1,)
        np.cumsum(self.lens, out=self.offsets[1:])

    @classmethod
    def from_lists(cls, seqs: Sequence[Sequence[int]]) -> TokenArrays:
        """From lists of ids, or from (len, columns) arrays (sources with factors)."""
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        if len(seqs) and getattr(seqs[0], "ndim", 1) == 2:
            return cls(np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs]), lens)
        tokens = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int32, count=int(lens.sum()))
        return cls(tokens, lens)

    def __len__(self) -> int:
        return len(self.lens)

    def __getitem__(self, i: int) -> List[int]:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]].tolist()

    @classmethod
    def concat(cls, arrays: Sequence[TokenArrays]) -> TokenArrays:
        """The sequences of ``arrays``, one after another."""
        return cls(np.concatenate([a.tokens.astype(np.int32) for a in arrays]),
                   np.concatenate([a.lens for a in arrays]))

    def take(self, idx: np.ndarray) -> TokenArrays:
        """Sequences ``idx``, in that order, copied into memory (one gather)."""
        idx = np.asarray(idx, dtype=np.int64)
        lens = self.lens[idx]  # (len(idx),)
        return TokenArrays(np.asarray(self.tokens[ragged_positions(self.offsets[idx], lens)]), lens)

    def padded(self, idx: np.ndarray, bos: bool = False, eos: bool = False) -> torch.Tensor:
        """(len(idx), width) int64 tensor of ``[BOS] + seq + [EOS]`` per index, PAD-padded."""
        return pad_flat(self.tokens, self.offsets[idx], self.lens[idx], bos, eos)


def make_batch(src: TokenArrays, tgt: TokenArrays, idx: Iterable[int]) -> Batch:
    """Pairs ``idx`` as padded tensors: source + EOS, BOS + target, target + EOS."""
    idx = np.asarray(idx, dtype=np.int64)
    import torch
    return Batch(src=src.padded(idx, eos=True), src_lens=torch.from_numpy(src.lens[idx] + 1),
                 tgt_in=tgt.padded(idx, bos=True), tgt_out=tgt.padded(idx, eos=True))


def pad(seqs: Sequence[Sequence[int]], bos: bool = False, eos: bool = False) -> torch.Tensor:
    """Right-padded (len(seqs), width) int64 tensor of ``[BOS] + seq + [EOS]`` (BOS and EOS where asked)."""
    return TokenArrays.from_lists(seqs).padded(np.arange(len(seqs)), bos, eos)


def pad_array(seqs: Sequence[Sequence[int]], bos: bool = False, eos: bool = False) -> np.ndarray:
    """``pad`` as a numpy array (no torch)."""
    flat = TokenArrays.from_lists(seqs)
    return pad_flat_array(flat.tokens, flat.offsets[:-1], flat.lens, bos, eos)


def source_tensor(src: Sequence[Sequence[int]]):
    """Source ids + EOS, padded: (batch, src_len) and the (batch,) lengths."""
    import torch
    return tuple(torch.from_numpy(a) for a in source_arrays(src))


def source_arrays(src: Sequence[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
    """``source_tensor`` as numpy arrays (no torch)."""
    return pad_array(src, eos=True), np.asarray([len(s) + 1 for s in src], dtype=np.int64)


def make_batches(src_lens: ArrayLike, tgt_lens: ArrayLike, max_tokens: int,
                 max_sentences: int = 0, seed: int = 1, epoch: int = 0,
                 shuffle: bool = True) -> List[np.ndarray]:
    """Batches of pair indices (int64 arrays) of similar length, in an order fixed by (seed, epoch).

    A batch holds as many pairs as fit ``max_tokens`` counted with padding,
    ``batch * max(longest source, longest target)``, and at most ``max_sentences`` (0: no limit).
    A single pair longer than ``max_tokens`` gets a batch of its own.
    """
    src, tgt = np.asarray(src_lens, dtype=np.int64), np.asarray(tgt_lens, dtype=np.int64)
    import torch
    n = len(src)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    tie = torch.randperm(n, generator=gen).numpy() if shuffle else np.arange(n)
    # Sort by target length, then source length, random among equals: similar pairs sit together.
    order = np.lexsort((tie, src, tgt))  # (n,), the last key sorts first
    widths = (np.maximum(src, tgt) + 1)[order].tolist()  # + EOS / BOS
    bounds, start, longest = [], 0, 0
    for pos, length in enumerate(widths):
        grown = max(longest, length)
        size = pos - start
        if size and (grown * (size + 1) > max_tokens or (max_sentences and size >= max_sentences)):
            bounds.append((start, pos))
            start, grown = pos, length
        longest = grown
    if n:
        bounds.append((start, n))
    batches = [order[a:b] for a, b in bounds]
    if shuffle:
        perm = torch.randperm(len(batches), generator=gen).tolist()
        batches = [batches[p] for p in perm]
    return batches


def padding_fraction(batches: Sequence[Sequence[int]], src_lens: ArrayLike, tgt_lens: ArrayLike) -> float:
    """Fraction of source + target positions in ``batches`` that are padding."""
    src, tgt = np.asarray(src_lens, dtype=np.int64) + 1, np.asarray(tgt_lens, dtype=np.int64) + 1
    real = padded = 0
    for b in batches:
        s, t = src[b], tgt[b]
        real += int(s.sum() + t.sum())
        padded += len(b) * int(s.max() + t.max())
    return 1.0 - real / padded if padded else 0.0
