"""Parallel corpora named by a path prefix and two language codes, plain or gzipped.

Every problem is reported with the file (and line) it concerns; nothing is dropped silently.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import logging
import os
import random
import re
import sys
import zlib
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

from ..errors import NmtError

log = logging.getLogger(__name__)


class CorpusError(NmtError, ValueError):
    """Bad input data: the message names the file, and the line where there is one."""


def resolve(prefix: str, lang: str) -> str:
    """``PREFIX.LANG`` if it exists, else ``PREFIX.LANG.gz``; an error naming both otherwise."""
    plain = f"{prefix}.{lang}"
    for path in (plain, plain + ".gz"):
        if os.path.isfile(path):
            return path
    raise CorpusError(f"missing corpus file: {plain} (also tried {plain}.gz)")


STDIN = "-"


def _open_binary(path: str):
    """``path`` opened for reading bytes: gunzipped for ``.gz``; standard input for ``"-"``. Pipes,
    ``/dev/stdin`` and ``<(cmd)`` read like files."""
    if path == STDIN:
        return contextlib.nullcontext(sys.stdin.buffer)
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_WARNINGS = 5


MAX_LINE_BYTES = 1 << 20  # a longer line is refused: no sentence is a megabyte long


def iter_lines(path: str, warn: bool = True) -> Iterator[str]:
    """Lines of a UTF-8 file (newline stripped); invalid UTF-8 is an error naming file and line.

    A UTF-8 byte-order mark is dropped; NUL and other control characters are kept but warned about,
    with the line number (the first few, then a count). A truncated .gz is an error naming the file
    and the last complete line.
    """
    number, warned, name = 0, 0, display_name(path)
    try:
        with _open_binary(path) as f:
            while True:
                raw = f.readline(MAX_LINE_BYTES + 1)  # bounded: an endless line (/dev/zero) never fills memory
                if not raw:
                    break
                number += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    raise CorpusError(f"{name}:{number}: a line longer than {MAX_LINE_BYTES >> 20} MiB (no line break "
                                      f"within it): not text with one sentence per line")
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise CorpusError(f"{name}:{number}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
                if number == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                text = text.rstrip("\r\n")
                bad = warn and _CONTROL.search(text)
                if bad:
                    warned += 1
                    if warned <= _MAX_WARNINGS:
                        log.warning("%s:%d: control character %r at column %d", name, number, bad.group(),
                                    bad.start() + 1)
                yield text
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise CorpusError(f"file not found: {path}") from None
        if path.endswith(".gz") and isinstance(e, (EOFError, gzip.BadGzipFile, zlib.error)):
            raise CorpusError(f"{path}: truncated or corrupt gzip file after line {number} ({e})") from None
        if isinstance(e, OSError) and e.strerror:
            raise CorpusError(f"{name}: cannot read ({e.strerror})") from None
        raise CorpusError(f"{name}: cannot read ({e})") from None
    if warned > _MAX_WARNINGS:
        log.warning("%s: %d lines hold control characters", name, warned)


def read_lines(path: str) -> List[str]:
    lines = list(iter_lines(path))
    if not lines:
        raise CorpusError(f"{path}: file is empty")
    return lines


@dataclass
class ParallelCorpus:
    src: List[str]
    tgt: List[str]
    src_path: str
    tgt_path: str

    def __len__(self) -> int:
        return len(self.src)


def read_parallel(prefix: str, src_lang: str, tgt_lang: str) -> ParallelCorpus:
    """Both sides of a corpus; different line counts are an error naming both files and counts."""
    src_path, tgt_path = resolve(prefix, src_lang), resolve(prefix, tgt_lang)
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise CorpusError(
            f"line counts differ: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}")
    return ParallelCorpus(src, tgt, src_path, tgt_path)


def iter_parallel(prefix: str, src_lang: str, tgt_lang: str, warn: bool = True) -> Iterator[Tuple[str, str]]:
    """The pairs of a corpus, streamed (nothing is held in memory); the same errors as ``read_parallel``."""
    src_path, tgt_path = resolve(prefix, src_lang), resolve(prefix, tgt_lang)
    src, tgt = iter_lines(src_path, warn), iter_lines(tgt_path, warn)
    count = 0
    for count, (s, t) in enumerate(itertools.zip_longest(src, tgt), start=1):
        if s is None or t is None:  # one file ended first: count the rest of the other
            rest = sum(1 for _ in (tgt if s is None else src)) + 1
            n_src, n_tgt = (count - 1, count - 1 + rest) if s is None else (count - 1 + rest, count - 1)
            raise CorpusError(f"line counts differ: {src_path} has {n_src} lines, {tgt_path} has {n_tgt}")
        yield s, t
    if count == 0:
        raise CorpusError(f"{src_path}: file is empty")


def sample_pairs(prefix, src_lang: str, tgt_lang: str, size: int, seed: int = 1) -> Tuple[List[str], List[str]]:
    """Up to ``size`` pairs drawn uniformly from a streamed corpus (reservoir sampling), in corpus
    order; every pair when the corpus has no more than ``size``. ``prefix`` may be a list of
    corpora: the sample is then drawn from all of them together."""
    rng = random.Random(seed)
    chosen: List[Tuple[int, str, str]] = []
    prefixes = [prefix] if isinstance(prefix, str) else list(prefix)
    pairs = itertools.chain.from_iterable(iter_parallel(p, src_lang, tgt_lang, warn=False) for p in prefixes)
    for i, (s, t) in enumerate(pairs):
        if i < size:
            chosen.append((i, s, t))
        else:
            j = rng.randrange(i + 1)
            if j < size:
                chosen[j] = (i, s, t)
    chosen.sort(key=lambda item: item[0])
    return [s for _, s, _ in chosen], [t for _, _, t in chosen]


@dataclass(frozen=True)
class Cleaning:
    """Training-data filters beyond blank and over-long pairs, each off by default (validation and
    test data are never filtered): ``max_len_ratio`` drops pairs whose longer side has more than
    that many times the pieces of the shorter; ``dedup`` drops exact repeats of a (source, target) pair."""
    max_len_ratio: float = 0.0
    dedup: bool = False

    def key(self) -> str:
        return f"ratio={self.max_len_ratio} dedup={self.dedup}"


NO_CLEANING = Cleaning()


def with_prefix(lines: Sequence[str], prefix: Optional[str]) -> List[str]:
    """``prefix`` (a tag) before every non-blank line; blank lines stay blank."""
    if not prefix:
        return list(lines)
    return [f"{prefix} {line}" if line.strip() else line for line in lines]


def tag_words(prefix: Optional[str]) -> int:
    """How many words ``with_prefix`` puts before a line (word alignments and factors skip them)."""
    return len(prefix.split()) if prefix else 0


class SeenPairs:
    """Exact-duplicate detection over a streamed corpus: 8 bytes per kept pair (a sorted array of
    64-bit hashes), not a Python set, so millions of pairs stay cheap."""

    def __init__(self):
        import numpy as np
        self.np, self.seen = np, np.empty(0, dtype=np.uint64)

    def fresh(self, pairs: Sequence[Tuple[str, str]]) -> List[bool]:
        np = self.np
        hashes = np.fromiter((int.from_bytes(hashlib.blake2b(f"{s}\t{t}".encode(), digest_size=8).digest(), "little")
                              for s, t in pairs), dtype=np.uint64, count=len(pairs))
        at = np.searchsorted(self.seen, hashes).clip(max=max(len(self.seen) - 1, 0))
        new = ~(self.seen[at] == hashes) if len(self.seen) else np.ones(len(pairs), dtype=bool)
        first = np.zeros(len(pairs), dtype=bool)
        first[np.unique(hashes, return_index=True)[1]] = True  # the first of repeats within the chunk
        keep = new & first
        self.seen = np.union1d(self.seen, hashes[keep])
        return keep.tolist()


def keep_pairs(src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], src_text: Sequence[str],
               tgt_text: Sequence[str], max_len: int, cleaning: Cleaning = NO_CLEANING,
               seen: Optional[SeenPairs] = None) -> Tuple[List[int], dict]:
    """Indices of training pairs to keep, both sides non-blank and at most ``max_len`` pieces (and as
    ``cleaning`` says), and the counts ``{"kept", "empty", "too_long", "ratio", "duplicate"}``. Pairs
    are dropped together, so the sides stay aligned. ``seen`` carries duplicates across chunks."""
    keep, empty, too_long, ratio = [], 0, 0, 0
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids)):
        if not src_text[i].strip() or not tgt_text[i].strip():
            empty += 1
        elif len(s) > max_len or len(t) > max_len:
            too_long += 1
        elif cleaning.max_len_ratio and max(len(s), len(t)) > cleaning.max_len_ratio * max(1, min(len(s), len(t))):
            ratio += 1
        else:
            keep.append(i)
    duplicate = 0
    if cleaning.dedup:
        fresh = (seen or SeenPairs()).fresh([(src_text[i], tgt_text[i]) for i in keep])
        duplicate = len(keep) - sum(fresh)
        keep = [i for i, f in zip(keep, fresh) if f]
    return keep, {"kept": len(keep), "empty": empty, "too_long": too_long, "ratio": ratio, "duplicate": duplicate}


def report_filtered(name: str, stats: dict, max_len: int, cleaning: Cleaning = NO_CLEANING) -> None:
    """Log what ``keep_pairs`` dropped from a corpus; no pair left is an error."""
    ratio, duplicate = stats.get("ratio", 0), stats.get("duplicate", 0)
    if stats["empty"] or stats["too_long"] or ratio or duplicate:
        extra = (f", {ratio} over the length ratio {cleaning.max_len_ratio}" if cleaning.max_len_ratio else "") + \
                (f", {duplicate} duplicates" if cleaning.dedup else "")
        log.info("%s: dropped %d empty and %d over-long (> %d pieces) pairs%s; %d kept",
                 name, stats["empty"], stats["too_long"], max_len, extra, stats["kept"])
    if not stats["kept"]:
        raise CorpusError(f"{name}: no pair left after dropping empty, over-long and filtered pairs")
