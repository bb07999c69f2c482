"""Word alignments from attention: for each output word, the source word the decoder attended to
most while emitting it (attention argmax, mapped from sentencepiece pieces to whitespace words).

This is what the model looked at, not a trained aligner: good enough for terminology checks and
markup transfer where attention is sharp, and only as good as the attention where it is not.
Written in Pharaoh format, ``"SRC-TGT ..."`` with 0-based word indices.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..data.spm import WORD_START
from .arrays import ops_for


def forced_attention(model, src: Any, src_lens: Any, tgt_in: Any) -> Optional[Any]:
    """(batch, tgt_len, src_len) attention weights of each decoder step when it is fed ``tgt_in``
    (BOS + the hypothesis, padded), through the public step contract, so a single model and an
    ensemble (mean of its members' weights) give what search saw; None without attention. Torch
    tensors or numpy arrays, as the model's."""
    xp = ops_for(src, model)
    memory, state = model.encode(src, src_lens)
    rows = []
    for t in range(tgt_in.shape[1]):
        _, state, weights = model.step(tgt_in[:, t], state, memory)  # weights: (batch, src_len) or None
        if weights is None:
            return None
        rows.append(xp.astype(weights, xp.float))
    return xp.stack(rows, 1)


def word_index(pieces: Sequence[str]) -> List[int]:
    """The whitespace word each piece belongs to: a piece starting with ``▁`` begins a new word."""
    out, word = [], -1
    for piece in pieces:
        if piece.startswith(WORD_START) or word < 0:
            word += 1
        out.append(word)
    return out


def word_attention(weights: Any, src_pieces: Sequence[str], tgt_pieces: Sequence[str]) -> List[List[float]]:
    """Piece-level weights (>= len(tgt_pieces), >= len(src_pieces)) to word level: a source word
    gets the sum of its pieces' weights, a target word the mean over its pieces (rows: target words).
    ``weights``: a CPU tensor or an array."""
    src_words, tgt_words = word_index(src_pieces), word_index(tgt_pieces)
    n_src, n_tgt = (src_words[-1] + 1 if src_words else 0), (tgt_words[-1] + 1 if tgt_words else 0)
    w = np.asarray(weights, dtype=np.float64)[:len(tgt_pieces), :len(src_pieces)]  # (tgt pieces, src pieces)
    to_src = np.zeros((len(src_pieces), n_src))
    to_src[np.arange(len(src_pieces)), src_words] = 1.0
    to_tgt = np.zeros((n_tgt, len(tgt_pieces)))
    to_tgt[tgt_words, np.arange(len(tgt_pieces))] = 1.0
    to_tgt = to_tgt / to_tgt.sum(1, keepdims=True).clip(1, None)
    return (to_tgt @ w @ to_src).tolist()  # (tgt words, src words)


def word_alignment(weights: Any, src_pieces: Sequence[str], tgt_pieces: Sequence[str]) -> List[Tuple[int, int]]:
    """(source word, target word) pairs: each target piece links its word to the word of the source
    piece it attended to most (the source EOS excluded); unique, ordered by target then source."""
    if not src_pieces or not tgt_pieces:
        return []
    src_words, tgt_words = word_index(src_pieces), word_index(tgt_pieces)
    best = np.asarray(weights)[:len(tgt_pieces), :len(src_pieces)].argmax(axis=1).tolist()
    return sorted({(src_words[s], tgt_words[t]) for t, s in enumerate(best)}, key=lambda p: (p[1], p[0]))


def pharaoh(pairs: Sequence[Tuple[int, int]]) -> str:
    return " ".join(f"{s}-{t}" for s, t in pairs)
