"""Source factors: word-level streams beside the source text (case, a term flag, a part of speech),
one value per source word, each embedded and combined with the piece embedding at the encoder's input
(``data.src_factors``, ``encoder.factor_embed_size``, ``encoder.factor_combine``).

Files: factor NAME of a corpus PREFIX is ``PREFIX.SRC_LANG.NAME`` (``.gz`` too), one line per source
line holding whitespace-separated values, exactly as many as the source line has words (a blank line
for a blank source line); anything else is refused, naming both files and the line.

A piece takes the value of the word it belongs to (sentencepiece's word-start marker, the mapping
guided alignment uses), so factors follow any segmentation, subword sampling included. A source is
then (src_len, 1 + factors) ids: the piece's id, then its factor ids. Positions outside the words
carry the ids the sentencepiece vocabularies give them there: PAD at padding, EOS at EOS, BOS at a
``src_prefix`` tag; so a source row pads and ends the same way in every column.

Each factor's vocabulary is built from the training data (ids after the specials, most frequent
first) and stored in the checkpoint; a value the training data never had reads as UNK.
"""
from __future__ import annotations

import collections
import functools
import itertools
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Callable,
    Counter,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

import numpy as np

from .alignments import piece_words
from .batching import pad_array
from .corpus import CorpusError, display_name, iter_lines, resolve
from .spm import BOS, EOS, PAD, UNK

if TYPE_CHECKING:
    import torch

T = TypeVar("T")
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # factor ids 0-3: as the sentencepiece models' PAD, UNK, BOS, EOS


def factor_file(prefix: str, src_lang: str, name: str) -> str:
    """The file of factor ``name`` beside corpus ``prefix``: ``PREFIX.SRC_LANG.NAME`` (or ``.gz``)."""
    return resolve(prefix, f"{src_lang}.{name}")


@dataclass(frozen=True)
class FactorVocab:
    """One factor's values; value k has id ``len(SPECIALS) + k``."""
    name: str
    values: Tuple[str, ...]

    def __len__(self) -> int:
        return len(SPECIALS) + len(self.values)

    @functools.cached_property
    def _index(self) -> Dict[str, int]:
        return {v: len(SPECIALS) + k for k, v in enumerate(self.values)}

    def ids(self, values: Sequence[str]) -> List[int]:
        index = self._index
        return [index.get(v, UNK) for v in values]

    @classmethod
    def from_counts(cls, name: str, counts: Counter[str]) -> FactorVocab:
        return cls(name, tuple(sorted(counts, key=lambda v: (-counts[v], v))))

    def to_dict(self) -> dict:
        return {"name": self.name, "values": list(self.values)}

    @classmethod
    def from_dict(cls, d: Mapping) -> FactorVocab:
        return cls(str(d["name"]), tuple(str(v) for v in d["values"]))


def split_values(line: str, words: int, where: str, source: str) -> List[str]:
    """A factor line's values: one per word of its source line (``words``); a CorpusError naming the
    factor line (``where``) and the source line (``source``) otherwise."""
    values = line.split()
    if len(values) != words:
        raise CorpusError(f"{where}: {len(values)} factor values for {words} words in {source}: one value per "
                          f"source word (whitespace-separated)")
    return values


def _file_line(name: str, number: int) -> str:
    return f"{name}:{number}"


def iter_factor_values(source_lines: Iterable[str], factor_lines: Sequence[Iterator[str]], names: Sequence[str],
                       source_name: str, first: int = 1, where: Callable[[str, int], str] = _file_line
                       ) -> Iterator[List[List[str]]]:
    """Per source line, each factor's values, checked: as many lines as the source, one value per
    word. ``names``: each factor's lines in errors (a file, a field), ``source_name`` the source's;
    ``where(name, number)`` names a line (numbers from ``first``)."""
    sources = iter(source_lines)
    for number, row in enumerate(itertools.zip_longest(sources, *factor_lines), start=first):
        text, values = row[0], row[1:]
        if text is None:
            extra = names[next(k for k, v in enumerate(values) if v is not None)]
            raise CorpusError(f"{extra} has more lines than {source_name} ({number - first})")
        missing = [n for n, v in zip(names, values) if v is None]
        if missing:
            rest = sum(1 for _ in sources) + 1
            raise CorpusError(f"{missing[0]} has {number - first} lines, {source_name} has "
                              f"{number - first + rest}: one line of factor values per source line")
        words = len(text.split())
        yield [split_values(v, words, where(n, number), where(source_name, number)) for n, v in zip(names, values)]


def _corpus_values(prefix: str, src_lang: str, names: Sequence[str]) -> Iterator[List[List[str]]]:
    files = [factor_file(prefix, src_lang, n) for n in names]
    source = resolve(prefix, src_lang)
    yield from iter_factor_values(iter_lines(source, warn=False), [iter_lines(f, warn=False) for f in files],
                                  [display_name(f) for f in files], source)


def count_values(prefixes: Sequence[str], src_lang: str, names: Sequence[str]) -> List[FactorVocab]:
    """Each factor's vocabulary from the training corpora ``prefixes`` (their factor files checked)."""
    counts: List[Counter[str]] = [collections.Counter() for _ in names]
    for prefix in prefixes:
        for values in _corpus_values(prefix, src_lang, names):
            for counter, v in zip(counts, values):
                counter.update(v)
    return [FactorVocab.from_counts(n, c) for n, c in zip(names, counts)]


@dataclass
class WordFactors:
    """The factor ids of a corpus's words, flat: line r's words are rows ``starts[r]:starts[r + 1]``."""
    ids: np.ndarray  # (words, factors) int32
    starts: np.ndarray  # (lines + 1,) int64

    def __len__(self) -> int:
        return len(self.starts) - 1

    @classmethod
    def of(cls, rows: Iterator[List[List[str]]], vocabs: Sequence[FactorVocab]) -> WordFactors:
        """From per-line factor values (``iter_factor_values``), mapped by ``vocabs``."""
        ids: List[np.ndarray] = []
        counts: List[int] = []
        for values in rows:
            ids.append(np.asarray([v.ids(vals) for v, vals in zip(vocabs, values)], dtype=np.int32).reshape(
                len(vocabs), -1).T)  # (words, factors)
            counts.append(ids[-1].shape[0])
        flat = np.concatenate(ids) if ids else np.zeros((0, len(vocabs)), dtype=np.int32)
        return cls(flat, np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))]))


def read_word_factors(prefix: str, src_lang: str, vocabs: Sequence[FactorVocab]) -> WordFactors:
    """The factor ids of corpus ``prefix``'s words, from its factor files (checked line by line)."""
    return WordFactors.of(_corpus_values(prefix, src_lang, [v.name for v in vocabs]), vocabs)


def piece_factors(ids: np.ndarray, words: WordFactors, lines: np.ndarray, word_start: np.ndarray,
                  tag_words: int = 0) -> np.ndarray:
    """(batch, len, factors) factor ids of the pieces ``ids`` (batch, len) of ``words``'s lines
    ``lines`` (batch,): each piece its word's, PAD/EOS/BOS outside the words (see the module)."""
    pw = piece_words(ids, word_start, tag_words)  # (b, s): word index, -1 outside the words
    first = words.starts[lines]  # (b,)
    count = words.starts[lines + 1] - first  # (b,)
    pw = np.minimum(pw, count[:, None] - 1)  # never into the next line's words
    inside = pw >= 0  # (b, s)
    outside = np.where(ids == PAD, PAD, np.where(ids == EOS, EOS, BOS))  # (b, s)
    if not len(words.ids):
        return np.repeat(outside[:, :, None], words.ids.shape[1], axis=2)
    gathered = words.ids[np.where(inside, first[:, None] + pw, 0)]  # (b, s, factors)
    return np.where(inside[:, :, None], gathered, outside[:, :, None]).astype(np.int64)


def with_factor_columns(ids: np.ndarray, words: WordFactors, lines: np.ndarray, word_start: np.ndarray,
                        tag_words: int = 0) -> np.ndarray:
    """(batch, len, 1 + factors): the pieces ``ids`` (batch, len) of ``words``'s lines ``lines``, each
    followed by its factor ids (``piece_factors``): the layout of a source with factors."""
    return np.concatenate([ids[:, :, None], piece_factors(ids, words, lines, word_start, tag_words)], axis=2)


def batch_tokens(src):
    """The piece ids (batch, src_len) of a source batch (numpy or torch): ``src`` itself, or its
    first column when it carries factors (batch, src_len, 1 + factors)."""
    return src[..., 0] if src.ndim == 3 else src


def row_tokens(row):
    """The piece ids of one source row: a list of ids as is, the first column of a (len, 1 + factors)
    array."""
    return row[:, 0] if getattr(row, "ndim", 1) == 2 else row


@dataclass
class CorpusFactors:
    """What source factors need of an encoded corpus: its words' factor ids, the corpus line of each
    kept pair (the cache's ``lines.idx``; every line for validation data), the source word-start
    pieces and the source tag's words."""
    words: WordFactors
    lines: np.ndarray  # (pairs,) int64
    word_start: np.ndarray  # (src vocab,) bool
    tag_words: int = 0

    def attach(self, pairs, src: torch.Tensor) -> torch.Tensor:
        """(batch, src_len) ids of pairs ``pairs`` -> (batch, src_len, 1 + factors)."""
        import torch
        lines = self.lines[np.asarray(pairs, dtype=np.int64)]  # (batch,)
        return torch.from_numpy(with_factor_columns(src.numpy(), self.words, lines, self.word_start, self.tag_words))


def read_factor_texts(prefix: str, src_lang: str, names: Sequence[str]) -> Optional[List[List[str]]]:
    """Per factor, the lines of split ``prefix``'s factor file (validation and test data), checked
    against its source lines; None without factors."""
    if not names:
        return None
    return read_factor_lines([factor_file(prefix, src_lang, n) for n in names], resolve(prefix, src_lang))


def read_factor_lines(files: Sequence[str], source: str, source_lines: Optional[Sequence[str]] = None
                      ) -> List[List[str]]:
    """Per factor file, its lines, checked against the source lines (``source_lines``, or the file
    ``source``), errors naming both files."""
    columns = [list(iter_lines(f, warn=False)) for f in files]
    lines = iter_lines(source, warn=False) if source_lines is None else source_lines
    collections.deque(iter_factor_values(lines, [iter(c) for c in columns], [display_name(f) for f in files],
                                         display_name(source)), maxlen=0)
    return columns


def factor_columns(vocabs: Sequence[FactorVocab], given: Optional[Mapping[str, T]], what: str, how: str
                   ) -> Optional[List[T]]:
    """``given`` (factor name -> one text per input line) in the model's factor order; None for a
    model without factors. A model with factors and a factor missing, or an unknown name, is refused,
    naming ``what`` (where the values come from) and ``how`` (how to give them)."""
    names = [v.name for v in vocabs]
    given = dict(given or {})
    unknown = [n for n in given if n not in names]
    if unknown:
        have = f"its factors: {', '.join(names)}" if names else "it reads no source factors"
        raise CorpusError(f"{what}: the model has no source factor {unknown[0]!r} ({have})")
    if not names:
        return None
    missing = [n for n in names if n not in given]
    if missing:
        raise CorpusError(f"{what}: the model reads source factors {', '.join(names)}, one value per source word; "
                          f"{', '.join(missing)} not given ({how})")
    return [given[n] for n in names]


def factor_rows(ids: Sequence[Sequence[int]], words: WordFactors, word_start: np.ndarray, tag_words: int = 0
                ) -> List[np.ndarray]:
    """Per source line (``words``'s line k for ``ids[k]``), its (len, 1 + factors) ids: each piece's
    id, then its factor ids."""
    padded = pad_array(ids, eos=True)  # (n, width + 1): the EOS keeps the width above 0
    full = with_factor_columns(padded, words, np.arange(len(ids)), word_start, tag_words)  # (n, width + 1, 1 + f)
    return [full[k, :len(s)] for k, s in enumerate(ids)]


def source_rows(vocabs: Sequence[FactorVocab], ids: Sequence[Sequence[int]], lines: Sequence[str],
                factors: Optional[Sequence[Sequence[str]]], word_start: np.ndarray, tag_words: int, first: int,
                names: Sequence[str], where: Callable[[str, int], str], input_name: str) -> List[np.ndarray]:
    """``factor_rows`` of input ``lines`` (encoded as ``ids``) from ``factors``: per factor (``vocabs``'
    order), one line of values per input line, checked (``iter_factor_values``; ``names`` name the
    factors, default "factor NAME")."""
    if factors is None or len(factors) != len(vocabs):
        raise CorpusError(f"the model reads source factors {', '.join(v.name for v in vocabs) or '(none)'}, "
                          f"{len(vocabs)} values per source word; {0 if factors is None else len(factors)} given")
    names = list(names) or [f"factor {v.name}" for v in vocabs]
    rows = iter_factor_values(lines, [iter(f) for f in factors], names, input_name, first, where)
    return factor_rows(ids, WordFactors.of(rows, vocabs), word_start, tag_words)
