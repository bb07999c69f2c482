"""Word alignments in Pharaoh format, for guided alignment training and its alignment error rate.

One line per sentence pair: links ``i-j`` (source word i, target word j, 0-based, words separated by
whitespace in the corpus lines as given), separated by spaces; ``i?j`` marks a possible (not sure)
link, as gold alignments do. A blank line is a pair without links. eflomal, fast_align and
awesome-align write this format.

Guided alignment (``data.alignments``, ``train.guided_alignment_weight``) turns a pair's links into a
distribution over source pieces for every target piece (``Guide.targets``): a target piece of word j
spreads its mass evenly over the pieces of the source words linked to j. Pieces map to words by
sentencepiece's word-start marker, so the mapping holds for any segmentation (subword sampling too).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from .batching import ragged_positions
from .corpus import CorpusError, iter_lines, iter_parallel, resolve, tag_words
from .spm import EOS, PAD

if TYPE_CHECKING:
    import torch

_LINK = re.compile(r"(\d+)([-?])(\d+)")


def parse_links(text: str, where: str) -> List[Tuple[int, int, bool]]:
    """The links of one Pharaoh line as (source word, target word, sure); a CorpusError naming
    ``where`` (FILE:LINE) for anything that is not a link."""
    links = []
    for item in text.split():
        m = _LINK.fullmatch(item)
        if m is None:
            raise CorpusError(f"{where}: {item!r} is not an alignment link (Pharaoh format: SRC-TGT word "
                              f"indices from 0, e.g. '0-0 1-2'; SRC?TGT for a possible link)")
        links.append((int(m.group(1)), int(m.group(3)), m.group(2) == "-"))
    return links


def iter_alignments(path: str) -> Iterator[List[Tuple[int, int, bool]]]:
    """The links of each line of a Pharaoh file, streamed."""
    for number, text in enumerate(iter_lines(path), start=1):
        yield parse_links(text, f"{path}:{number}")


@dataclass
class Links:
    """One corpus's alignments, flat: line r's links are ``src[starts[r]:starts[r + 1]]`` (source
    word indices) with ``tgt[...]`` (target word indices)."""
    src: np.ndarray  # (links,) int32
    tgt: np.ndarray  # (links,) int32
    starts: np.ndarray  # (lines + 1,) int64

    def __len__(self) -> int:
        return len(self.starts) - 1


def read_links(path: str, corpus: str, src_lang: str, tgt_lang: str) -> Links:
    """The alignments of training corpus ``corpus`` from ``path``, checked line by line against the
    corpus: one line per pair, every index inside its sentence's words (a CorpusError naming the
    alignment file, the line and the corpus file otherwise). Possible links count as links."""
    src_file, tgt_file = resolve(corpus, src_lang), resolve(corpus, tgt_lang)
    src_words: List[int] = []
    tgt_words: List[int] = []
    counts: List[int] = []
    pairs = iter_parallel(corpus, src_lang, tgt_lang, warn=False)
    for number, (links, pair) in enumerate(itertools.zip_longest(iter_alignments(path), pairs), start=1):
        if links is None or pair is None:
            have = number - 1 + (sum(1 for _ in pairs) + 1 if links is None else 0)
            lines = number - 1 if links is None else f"more than {number - 1}"
            raise CorpusError(f"{path}: {lines} lines of alignments for {have if links is None else number - 1} "
                              f"pairs in {src_file}: one line per pair (a blank line for a pair without links)")
        n_src, n_tgt = len(pair[0].split()), len(pair[1].split())
        for i, j, _ in links:
            if i >= n_src or j >= n_tgt:
                side, index, words, file = ("source", i, n_src, src_file) if i >= n_src else \
                    ("target", j, n_tgt, tgt_file)
                raise CorpusError(f"{path}:{number}: link {i}-{j} points past the {side} sentence, which has "
                                  f"{words} words ({file}:{number}); word indices start at 0")
            src_words.append(i)
            tgt_words.append(j)
        counts.append(len(links))
    starts = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))])
    return Links(np.asarray(src_words, dtype=np.int32), np.asarray(tgt_words, dtype=np.int32), starts)


def piece_words(ids: np.ndarray, word_start: np.ndarray, skip_words: int = 0) -> np.ndarray:
    """The word each piece of ``ids`` (batch, len) belongs to, counting from 0 after ``skip_words``
    leading words (a source tag); -1 at PAD, EOS and the skipped words. ``word_start``: (vocab,)
    bool, the pieces that begin a word; a sentence's first piece always does."""
    real = (ids != PAD) & (ids != EOS)  # (batch, len)
    starts = word_start[ids] & real
    starts[:, 0] |= real[:, 0]
    words = np.cumsum(starts, axis=1) - 1 - skip_words  # (batch, len)
    return np.where(real & (words >= 0), words, -1)


@dataclass
class Guide:
    """What guided alignment needs of one training corpus: its links, the corpus line of each kept
    pair (the cache's ``lines.idx``), the word-start pieces of each side and the source tag's words."""
    links: Links
    lines: np.ndarray  # (kept pairs,) int64: the corpus line of each pair the cache kept
    src_word_start: np.ndarray  # (src vocab,) bool
    tgt_word_start: np.ndarray  # (tgt vocab,) bool
    tag_words: int = 0  # words before the sentence proper (a src_prefix tag: 1)

    def targets_array(self, pairs: np.ndarray, src: np.ndarray, tgt_out: np.ndarray) -> np.ndarray:
        """(batch, tgt_len, src_len) float32: row (b, t) spreads 1 over the source pieces aligned to
        target piece t of pair ``pairs[b]``; all zero where t has no link (or is EOS or PAD).
        src: (batch, src_len) ids + EOS; tgt_out: (batch, tgt_len) ids + EOS, both PAD-padded."""
        sw = piece_words(src, self.src_word_start, self.tag_words)  # (b, s)
        tw = piece_words(tgt_out, self.tgt_word_start)  # (b, t)
        lines = self.lines[pairs]  # (b,)
        first, last = self.links.starts[lines], self.links.starts[lines + 1]  # (b,), (b,)
        counts = last - first
        rows = np.repeat(np.arange(len(pairs)), counts)  # (links,) batch row of each link
        at = ragged_positions(first, counts)  # (links,) each pair's links, in batch order
        li, lj = self.links.src[at], self.links.tgt[at]  # (links,)
        n_i, n_j = max(int(sw.max()), int(li.max(initial=0))) + 2, max(int(tw.max()), int(lj.max(initial=0))) + 2
        linked = np.zeros((len(pairs), n_j, n_i), dtype=np.float32)  # (b, target words + 1, source words + 1)
        linked[rows, lj, li] = 1.0  # the last word slot (index -1) stays empty: PAD, EOS and tags land there
        out = linked[np.arange(len(pairs))[:, None, None], tw[:, :, None], sw[:, None, :]]  # (b, t, s)
        mass = out.sum(-1, keepdims=True)  # (b, t, 1)
        return np.divide(out, mass, out=out, where=mass > 0)

    def targets(self, pairs, src: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
        import torch
        return torch.from_numpy(self.targets_array(np.asarray(pairs, dtype=np.int64), src.numpy(), tgt_out.numpy()))


def alignment_error_rate(hypotheses: Sequence[Set[Tuple[int, int]]],
                         references: Sequence[Tuple[Set[Tuple[int, int]], Set[Tuple[int, int]]]]) -> float:
    """AER (Och & Ney 2003) in percent: 1 - (|A∩S| + |A∩P|) / (|A| + |S|) over a corpus, with
    A the hypothesis links, S the sure and P the possible (sure included) reference links."""
    a_s = a_p = a = s = 0
    for hyp, (sure, possible) in zip(hypotheses, references):
        possible = possible | sure
        a_s += len(hyp & sure)
        a_p += len(hyp & possible)
        a += len(hyp)
        s += len(sure)
    return 100.0 * (1.0 - (a_s + a_p) / max(a + s, 1))


def reference_links(path: str) -> List[Tuple[Set[Tuple[int, int]], Set[Tuple[int, int]]]]:
    """Per line of a Pharaoh file, (sure links, possible links)."""
    out = []
    for links in iter_alignments(path):
        out.append(({(i, j) for i, j, sure in links if sure}, {(i, j) for i, j, sure in links if not sure}))
    return out


def links_of(text: str, where: str = "") -> Set[Tuple[int, int]]:
    """The (source, target) links of one Pharaoh line, sure and possible alike."""
    return {(i, j) for i, j, _ in parse_links(text, where)}


def guide_for(links: Links, lines: np.ndarray, tok, tag: Optional[str]) -> Guide:
    """The ``Guide`` of an encoded corpus whose pairs come from corpus lines ``lines``, with source
    tag ``tag``."""
    return Guide(links, lines, tok.src_word_start, tok.tgt_word_start, tag_words(tag))
