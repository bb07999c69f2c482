"""A lexical shortlist: search over the target tokens a batch's source makes likely, not the whole
vocabulary.

Built once from the training data (``build_shortlist``): for every source token, the target tokens
that co-occur with it most strongly in training pairs (Dice coefficient over sentence pairs), plus
the most frequent target tokens. At decoding time (``Shortlisted``) a batch's candidates are the
union of its sentences' candidates (their source tokens' lists, the frequent tokens and the special
ids); the output layer runs over those rows instead of the full vocabulary, and each sentence's
softmax over its own candidates, so a translation does not depend on the rest of its batch. Scores
are normalised over the candidates, so they differ slightly from a full-vocabulary search.

Candidate position i stands for target id ``candidates[i]``; the special ids (pad, unk, bos, eos)
come first and keep their positions, so search code runs unchanged in candidate space.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..data.batching import ragged_positions
from ..data.spm import BOS, EOS, PAD, UNK
from ..errors import ConfigError

SPECIALS = max(PAD, UNK, BOS, EOS) + 1  # the special ids come first in every vocabulary
MAX_PAIRS = 200_000  # training pairs counted at most (a fixed random sample of a larger corpus)
_CHUNK = 10_000  # pairs counted at a time: memory stays small


def _distinct_per_pair(tokens: np.ndarray, offsets: np.ndarray, pairs: np.ndarray,
                       vocab: int) -> Tuple[np.ndarray, np.ndarray]:
    """(position in ``pairs``, token) of every distinct token of every pair, sorted by pair, then token."""
    starts = offsets[pairs]
    lens = offsets[pairs + 1] - starts  # (m,)
    owner = np.repeat(np.arange(len(pairs)), lens)  # (tokens,) which pair each token belongs to
    keys = np.unique(owner * vocab + tokens[ragged_positions(starts, lens)].astype(np.int64))
    return keys // vocab, keys % vocab


def build_shortlist(src_tokens: np.ndarray, src_offsets: np.ndarray, tgt_tokens: np.ndarray, tgt_offsets: np.ndarray,
                    src_vocab: int, tgt_vocab: int, per_token: int = 50, frequent: int = 100,
                    max_pairs: int = MAX_PAIRS, seed: int = 1) -> Dict[str, torch.Tensor]:
    """Shortlist tables from encoded training pairs (flat token arrays and their offsets).

    Returns ``{"table": (src_vocab, per_token) int32, -1 where a token has fewer partners,
    "frequent": (frequent,) int32}``. At most ``max_pairs`` pairs (a fixed random sample) are counted.
    """
    n = len(src_offsets) - 1
    pairs = np.arange(n) if n <= max_pairs else np.sort(np.random.default_rng(seed).choice(n, max_pairs, replace=False))
    src_df, tgt_df = np.zeros(src_vocab, np.int64), np.zeros(tgt_vocab, np.int64)
    keys, counts = np.zeros(0, np.int64), np.zeros(0, np.int64)  # co-occurring (source, target) keys
    for start in range(0, len(pairs), _CHUNK):
        chunk = pairs[start:start + _CHUNK]
        s_pair, s_tok = _distinct_per_pair(src_tokens, src_offsets, chunk, src_vocab)
        t_pair, t_tok = _distinct_per_pair(tgt_tokens, tgt_offsets, chunk, tgt_vocab)
        src_df += np.bincount(s_tok, minlength=src_vocab)
        tgt_df += np.bincount(t_tok, minlength=tgt_vocab)
        t_lens = np.bincount(t_pair, minlength=len(chunk))  # (m,) distinct target tokens per pair
        meets = t_lens[s_pair]  # each source token meets every distinct target token of its pair once
        partners = t_tok[ragged_positions((np.cumsum(t_lens) - t_lens)[s_pair], meets)]
        new_keys, new_counts = np.unique(np.repeat(s_tok, meets) * tgt_vocab + partners, return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, new_keys]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([counts, new_counts]), minlength=len(keys))
        counts = counts.astype(np.int64)
    s, t = keys // tgt_vocab, keys % tgt_vocab
    dice = 2.0 * counts / (src_df[s] + tgt_df[t])
    order = np.lexsort((-dice, s))  # by source token, best partner first
    s, t = s[order], t[order]
    first = np.searchsorted(s, np.arange(src_vocab))  # (src_vocab,) where each token's run starts
    rank = np.arange(len(s)) - first[s]  # position of each partner within its source token's run
    table = np.full((src_vocab, per_token), -1, dtype=np.int32)
    keep = rank < per_token
    table[s[keep], rank[keep]] = t[keep]
    tgt_df[:SPECIALS] = -1  # the specials are always candidates anyway
    top = np.argsort(-tgt_df, kind="stable")[:frequent]
    return {"table": torch.from_numpy(table), "frequent": torch.from_numpy(top[tgt_df[top] > 0].astype(np.int32))}


def select(stored: Optional[Dict[str, torch.Tensor]], per_token: int, frequent: int,
           source: str) -> Optional[Dict[str, torch.Tensor]]:
    """What ``--shortlist K`` / ``translate(shortlist=K)`` decode with: None for K = 0, else the
    checkpoint's shortlist ``trim``-med; an error naming ``source`` where it has none."""
    if not per_token:
        return None
    if stored is None:
        raise ConfigError(f"{source} has no lexical shortlist: shortlists work with a single model saved by a "
                          f"training run that built one")
    return trim(stored, per_token, frequent)


def trim(shortlist: Dict[str, torch.Tensor], per_token: int, frequent: int) -> Dict[str, torch.Tensor]:
    """The stored shortlist cut to ``per_token`` partners per source token and ``frequent`` targets."""
    width = shortlist["table"].size(1)
    if not 1 <= per_token <= width:
        raise ConfigError(f"shortlist size must be between 1 and {width} (what the checkpoint stores), got {per_token}")
    if frequent < 0:
        raise ConfigError(f"shortlist frequent-token count must be >= 0, got {frequent}")
    return {"table": shortlist["table"][:, :per_token], "frequent": shortlist["frequent"][:frequent]}


def candidates(shortlist: Dict[str, torch.Tensor], src: torch.Tensor,
               required: Optional[List[List[int]]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """A batch's candidates: (n,) int64 target ids, the specials first in their own positions, then
    the union of every sentence's candidates in increasing order; and (batch, n) bool, True where a
    candidate is one of that sentence's own (its source tokens' partners, the frequent tokens, the
    specials, and its ``required`` ids: its lexical constraints' pieces). src: (batch, src_len),
    PAD-padded."""
    table = shortlist["table"].to(src.device)
    frequent = shortlist["frequent"].to(src.device).long()
    rows = table[src].long()  # (batch, src_len, per_token)
    rows = rows.masked_fill((src == PAD)[..., None] | (rows < SPECIALS), -1).flatten(1)  # (batch, src_len * k)
    if required:
        from ..data.batching import pad_array
        extra = torch.as_tensor(pad_array(required), dtype=torch.long, device=src.device)  # (batch, most), PAD-padded
        rows = torch.cat([rows, extra.masked_fill(extra < SPECIALS, -1)], 1)
    ids = torch.cat([torch.arange(SPECIALS, device=src.device),
                     torch.cat([rows[rows >= 0], frequent]).unique()])  # (n,) unique() sorts
    own = torch.zeros(src.size(0), ids.numel(), dtype=torch.bool, device=src.device)  # (batch, n)
    own[:, :SPECIALS] = True
    own[:, torch.searchsorted(ids[SPECIALS:], frequent) + SPECIALS] = True
    positions = torch.searchsorted(ids[SPECIALS:], rows.clamp(min=SPECIALS)) + SPECIALS  # (batch, src_len * k)
    own.scatter_(1, positions.masked_fill(rows < 0, PAD), True)  # no partner: PAD, a candidate anyway
    return ids, own


def _rows_of(output, ids: torch.Tensor):
    """The output layer restricted to rows ``ids``, as a function of the attentional vectors, and the
    packed rows (None for a plain layer). A
    dynamically quantized layer (int8 or fp16 weights) keeps its rows quantized, packed once here,
    and computes them as the whole layer computes its columns (int8 with ``reduce_range``, as it does)."""
    weight, bias = output.weight, output.bias
    if not callable(weight):  # a plain nn.Linear
        rows, row_bias = weight[ids], None if bias is None else bias[ids]  # (n, output_size), (n,)
        return (lambda h: F.linear(h, rows, row_bias)), None
    weight, bias, cpu_ids = weight(), bias(), ids.cpu()
    rows, row_bias = weight[cpu_ids], None if bias is None else bias[cpu_ids]
    if output._packed_params.dtype == torch.float16:
        packed = torch.ops.quantized.linear_prepack_fp16(rows, row_bias)
        return (lambda h: torch.ops.quantized.linear_dynamic_fp16(h.float(), packed)), packed
    packed = torch.ops.quantized.linear_prepack(rows, row_bias)
    return (lambda h: torch.ops.quantized.linear_dynamic(h.float(), packed, reduce_range=True)), packed


class ShortlistMemory(NamedTuple):
    memory: Any  # the model's own memory
    own: torch.Tensor  # (rows, n) bool: each row's own candidates


class Shortlisted:
    """A model that decodes over a batch's candidates only: the contract search uses (``encode``,
    ``reorder``, ``step``), with token ids in candidate space (position i is id ``ids[i]``). Each
    sentence's distribution is normalised over its own candidates (the rest get -inf), so a
    sentence's translation does not depend on the others in its batch."""

    def __init__(self, model, ids: torch.Tensor, own: torch.Tensor):
        dec = model.decoder
        self.model, self.ids, self.own = model, ids, own
        self.id_list = ids.tolist()  # for mapping hypotheses back, once per batch
        # (rows, output_size) -> (rows, n): the candidates' logits; the packed quantized rows, if any
        self.project, self.packed = _rows_of(dec.output, ids)

    def encode(self, src, src_lens):
        memory, state = self.model.encode(src, src_lens)
        return ShortlistMemory(memory, self.own), state

    def reorder(self, state, memory: Optional[ShortlistMemory], index):
        """As the model's; ``own`` follows the memory's rows (one per sentence when its beams share it)."""
        state, inner = self.model.reorder(state, None if memory is None else memory.memory, index)
        return state, None if memory is None else ShortlistMemory(inner, memory.own.index_select(0, index))

    def step(self, prev_tokens, state, memory: ShortlistMemory):
        """prev_tokens: (rows,) candidate positions -> logits (rows, n), -inf outside each row's own
        candidates; state; weights."""
        dec = self.model.decoder
        attn_h, state, weights = dec.step_features(dec.embed_tokens(self.ids[prev_tokens]), state,
                                                  memory.memory)
        logits = self.project(attn_h)  # (rows, n), rows = memory rows * beams
        own = memory.own  # (memory rows, n): each sentence's candidates, for all of its beams
        logits = logits.view(own.size(0), -1, own.size(1)).masked_fill(~own[:, None, :], float("-inf"))
        logits = logits.view(-1, own.size(1))
        return logits, state, (None if weights is None else weights[:, 0])

    def to_vocabulary(self, tokens: List[int]) -> List[int]:
        """Candidate positions -> target ids."""
        return [self.id_list[i] for i in tokens]

    @functools.cached_property
    def _position(self) -> Dict[int, int]:
        """Target id -> candidate position, built once per batch on first use."""
        return {t: i for i, t in enumerate(self.id_list)}

    def positions(self, ids: Sequence[int], missing_ok: bool = False) -> List[int]:
        """Target ids -> candidate positions: each id must be a candidate (``candidates``' ``required``),
        or with ``missing_ok`` those that are not are left out."""
        where = self._position
        return [where[t] for t in ids if not missing_ok or t in where]
