"""Word alignments from attention: for each output word, the source word the decoder attended to
most while emitting it (attention argmax, mapped from sentencepiece pieces to whitespace words).

This is what the model looked at, not a trained aligner: good enough for terminology checks and
markup transfer where attention is sharp, and only as good as the attention where it is not.
Written in Pharaoh format, ``"SRC-TGT ..."`` with 0-based word indices.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # imported where used: the word-level helpers serve torch-free callers too
    import torch

WORD_START = "\u2581"  # sentencepiece's marker of a piece that begins a word


def forced_attention(model, src: torch.Tensor, src_lens: torch.Tensor, tgt_in: torch.Tensor
                     ) -> Optional[torch.Tensor]:
    """(batch, tgt_len, src_len) attention weights of each decoder step when it is fed ``tgt_in``
    (BOS + the hypothesis, padded), through the public step contract, so a single model and an
    ensemble (mean of its members' weights) give what search saw; None without attention."""
    import torch
    memory, state = model.encode(src, src_lens)
    rows = []
    for t in range(tgt_in.size(1)):
        _, state, weights = model.step(tgt_in[:, t], state, memory)  # weights: (batch, src_len) or None
        if weights is None:
            return None
        rows.append(weights.float())
    return torch.stack(rows, dim=1)


def word_index(pieces: Sequence[str]) -> List[int]:
    """The whitespace word each piece belongs to: a piece starting with ``▁`` begins a new word."""
    out, word = [], -1
    for piece in pieces:
        if piece.startswith(WORD_START) or word < 0:
            word += 1
        out.append(word)
    return out


def word_attention(weights: torch.Tensor, src_pieces: Sequence[str], tgt_pieces: Sequence[str]
                   ) -> List[List[float]]:
    """Piece-level weights (>= len(tgt_pieces), >= len(src_pieces)) to word level: a source word
    gets the sum of its pieces' weights, a target word the mean over its pieces (rows: target words)."""
    import torch
    src_words, tgt_words = word_index(src_pieces), word_index(tgt_pieces)
    n_src, n_tgt = (src_words[-1] + 1 if src_words else 0), (tgt_words[-1] + 1 if tgt_words else 0)
    w = weights[:len(tgt_pieces), :len(src_pieces)].double()  # (tgt pieces, src pieces)
    to_src = torch.zeros(len(src_pieces), n_src, dtype=torch.float64)
    to_src[torch.arange(len(src_pieces)), torch.tensor(src_words, dtype=torch.long)] = 1.0
    to_tgt = torch.zeros(n_tgt, len(tgt_pieces), dtype=torch.float64)
    to_tgt[torch.tensor(tgt_words, dtype=torch.long), torch.arange(len(tgt_pieces))] = 1.0
    to_tgt = to_tgt / to_tgt.sum(1, keepdim=True).clamp(min=1)
    return (to_tgt @ w @ to_src).tolist()  # (tgt words, src words)


def word_alignment(weights: torch.Tensor, src_pieces: Sequence[str], tgt_pieces: Sequence[str]
                   ) -> List[Tuple[int, int]]:
    """(source word, target word) pairs: each target piece links its word to the word of the source
    piece it attended to most (the source EOS excluded); unique, ordered by target then source."""
    if not src_pieces or not tgt_pieces:
        return []
    src_words, tgt_words = word_index(src_pieces), word_index(tgt_pieces)
    best = weights[:len(tgt_pieces), :len(src_pieces)].argmax(dim=1).tolist()
    return sorted({(src_words[s], tgt_words[t]) for t, s in enumerate(best)}, key=lambda p: (p[1], p[0]))


def pharaoh(pairs: Sequence[Tuple[int, int]]) -> str:
    return " ".join(f"{s}-{t}" for s, t in pairs)
