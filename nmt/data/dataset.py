"""Corpora encoded with sentencepiece as flat token arrays, ready for batching; the on-disk cache
of an encoded training corpus; where the toy corpus may be written.

A training corpus is streamed from its files, encoded in chunks with sentencepiece's multi-threaded
batch encoding, and written as flat token arrays plus lengths into a cache directory keyed by the
corpus files and the sentencepiece models; every run (and every DDP rank) memory-maps it. No raw
training text stays in memory, and the cost per pair is its token ids plus 16 bytes of offsets.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

import numpy as np

from . import toy
from .alignments import Guide
from .batching import Batch, TokenArrays, make_batch
from .corpus import (
    NO_CLEANING,
    Cleaning,
    CorpusError,
    SeenPairs,
    iter_parallel,
    keep_pairs,
    read_parallel,
    report_filtered,
    resolve,
    tag_words,
    with_prefix,
)
from .factors import CorpusFactors, WordFactors, iter_factor_values
from .spm import Tokenizer

log = logging.getLogger(__name__)

CACHE_VERSION = 4  # 4: lines.idx (the corpus line of each kept pair, for subword sampling)
_CHUNK = 20_000  # pairs encoded at a time


@dataclass
class EncodedCorpus:
    src: TokenArrays
    tgt: TokenArrays
    src_text: Optional[List[str]] = None  # kept for validation corpora only (BLEU needs the text)
    tgt_text: Optional[List[str]] = None
    fingerprint: Optional[str] = None  # content hash of the files it was encoded from (training corpora)
    directory: Optional[str] = None  # its cache entry (training corpora)
    guide: Optional[Guide] = None  # its word alignments, for guided alignment (training corpora)
    factors: Optional[CorpusFactors] = None  # its source factors (data.src_factors)
    src_factor_text: Optional[List[List[str]]] = None  # per factor, its lines (validation corpora)

    def __len__(self) -> int:
        return len(self.src)

    @property
    def src_lens(self) -> np.ndarray:
        return self.src.lens

    @property
    def tgt_lens(self) -> np.ndarray:
        return self.tgt.lens

    def batch(self, idx: Iterable[int]) -> Batch:
        """Pairs ``idx`` as padded tensors: source + EOS, BOS + target, target + EOS (and the
        attention the alignments ask for, where the corpus has them; the source's factor ids after
        each piece's id, where it has factors)."""
        batch = make_batch(self.src, self.tgt, idx)
        if self.guide is not None:
            batch.align = self.guide.targets(idx, batch.src, batch.tgt_out)
        if self.factors is not None:
            batch.src = self.factors.attach(idx, batch.src)  # (batch, src_len, 1 + factors)
        return batch


def ensure_generated(train, valid: Optional[str], test: Optional[str], generate: Optional[str],
                     src_lang: str, tgt_lang: str) -> bool:
    """Write the embedded toy corpus for ``data.generate=toy``, and only where nothing can be lost.

    Only into its own default location (``data/toy``, relative to the working directory), only
    when every given split prefix (``train``: one, or a list) points there (a prefix of the user's
    own means the user's data: nothing is generated), and only when that directory holds no corpus
    file at all. Returns True when it wrote the corpus.
    """
    if generate is None:
        return False
    trains = [train] if train is None or isinstance(train, str) else list(train)
    given = [("train", p) for p in trains] + [("valid", valid), ("test", test)]
    defaults = {split: os.path.join(toy.DEFAULT_DIR, split) for split in toy.SPLITS}
    if any(p is not None and os.path.normpath(p) != defaults[s] for s, p in given):
        return False  # the user's own corpus: never generate beside it
    wanted = [f"{s}.{l}" for s in toy.SPLITS for l in (src_lang, tgt_lang)]
    present = toy.corpus_files(toy.DEFAULT_DIR)
    if present:
        missing = [n for n in wanted if n not in present and n + ".gz" not in present]
        if missing:
            raise CorpusError(f"{toy.DEFAULT_DIR} holds {', '.join(present)} but not {', '.join(missing)}; the toy "
                              f"corpus is only written into an empty directory (nmt-data toy --out DIR writes it "
                              f"elsewhere)")
        return False
    toy.generate(toy.DEFAULT_DIR, src_lang=src_lang, tgt_lang=tgt_lang)
    log.info("wrote the toy corpus under %s", toy.DEFAULT_DIR)
    return True


def check_exists(prefix: Optional[str], name: str, src_lang: str, tgt_lang: str) -> None:
    """Both files of a split exist (without reading them): fail at start-up, not hours later."""
    if prefix is None:
        return
    for lang in (src_lang, tgt_lang):
        try:
            resolve(prefix, lang)
        except CorpusError as e:
            hint = " (data.test=null skips the final test translation)" if name == "test" else ""
            raise CorpusError(f"data.{name}: {e}{hint}") from None


def require(prefix: Optional[str], name: str, src_lang: str, tgt_lang: str) -> str:
    """The prefix of a split that must be given (train, valid); an error naming the key otherwise."""
    if not prefix:
        raise CorpusError(f"no {name} data: set data.{name}=PATH_PREFIX (reads PREFIX.{src_lang}, PREFIX.{tgt_lang})")
    return prefix


def read_split(prefix: Optional[str], name: str, src_lang: str, tgt_lang: str):
    """A split read into memory."""
    return read_parallel(require(prefix, name, src_lang, tgt_lang), src_lang, tgt_lang)


def encode(corpus, tok: Tokenizer, src_prefix: Optional[str] = None,
           factor_texts: Optional[List[List[str]]] = None) -> EncodedCorpus:
    """A (small) corpus encoded in memory (sources tagged with ``src_prefix``), its text kept as
    given: validation data. With source factors (``tok.factors``), ``factor_texts`` are their lines
    (``factors.read_factor_texts``)."""
    out = EncodedCorpus(TokenArrays.from_lists(tok.encode_src(with_prefix(corpus.src, src_prefix))),
                        TokenArrays.from_lists(tok.encode_tgt(corpus.tgt)), corpus.src, corpus.tgt)
    if tok.factors:
        assert factor_texts is not None, "a model with source factors validates on data with them"
        rows = iter_factor_values(corpus.src, [iter(t) for t in factor_texts], [v.name for v in tok.factors],
                                  corpus.src_path)
        out.factors = CorpusFactors(WordFactors.of(rows, tok.factors), np.arange(len(corpus), dtype=np.int64),
                                    tok.src_word_start, tag_words(src_prefix))
        out.src_factor_text = factor_texts
    return out


def corpus_fingerprint(prefix: str, src_lang: str, tgt_lang: str) -> str:
    """A hash of the content of a corpus's two files (as stored, so a .gz is hashed compressed):
    an edit anywhere changes it, whatever the files' sizes and modification times say."""
    h = hashlib.blake2b(digest_size=16)
    for lang in (src_lang, tgt_lang):
        with open(resolve(prefix, lang), "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        h.update(b"\0|")
    return h.hexdigest()


def cache_key(prefix: str, src_lang: str, tgt_lang: str, tok: Tokenizer, max_len: int,
              fingerprint: Optional[str] = None, cleaning: Cleaning = NO_CLEANING,
              src_prefix: Optional[str] = None) -> str:
    """Names the encoded form of a corpus: the content of its files (``corpus_fingerprint``), the
    sentencepiece models, ``max_len`` and the cleaning filters."""
    filters = "" if cleaning == NO_CLEANING else f" {cleaning.key()}"  # unchanged keys for unfiltered corpora
    filters += f" src_prefix={src_prefix}" if src_prefix else ""
    h = hashlib.sha256(f"v{CACHE_VERSION} max_len={max_len}{filters}".encode())
    h.update((fingerprint or corpus_fingerprint(prefix, src_lang, tgt_lang)).encode())
    h.update(tok.src_proto)
    h.update(tok.tgt_proto)
    return h.hexdigest()[:20]


def kept_lines(directory: str) -> np.ndarray:
    """(pairs,) int64: the corpus line of each pair a cache entry kept."""
    return np.fromfile(os.path.join(directory, "lines.idx"), dtype=np.int64)


def load_cached(directory: str) -> EncodedCorpus:
    """An encoded corpus from its cache directory, memory-mapped read-only."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    sides = []
    for side in ("src", "tgt"):
        lens = np.fromfile(os.path.join(directory, f"{side}.lens"), dtype=np.int32)
        path = os.path.join(directory, f"{side}.tokens")
        tokens = (np.memmap(path, dtype=meta["dtype"], mode="r") if os.path.getsize(path)
                  else np.zeros(0, dtype=meta["dtype"]))
        sides.append(TokenArrays(tokens, lens))
    if len(sides[0]) != meta["kept"] or len(sides[1]) != meta["kept"]:
        raise CorpusError(f"{directory}: the encoded-corpus cache is incomplete; delete it")
    return EncodedCorpus(sides[0], sides[1])


def _write_cache(prefix: str, src_lang: str, tgt_lang: str, tok: Tokenizer, max_len: int, out_dir: str,
                 threads: int, cleaning: Cleaning = NO_CLEANING, src_prefix: Optional[str] = None) -> dict:
    """Stream, encode and filter the corpus in chunks into ``out_dir``; returns the stats."""
    dtype = np.uint16 if max(tok.src_vocab_size, tok.tgt_vocab_size) <= 1 << 16 else np.int32
    stats = {"lines": 0, "kept": 0, "empty": 0, "too_long": 0, "ratio": 0, "duplicate": 0}
    seen = SeenPairs() if cleaning.dedup else None
    names = ("src.tokens", "tgt.tokens", "src.lens", "tgt.lens", "lines.idx")
    files = {name: open(os.path.join(out_dir, name), "wb") for name in names}
    try:
        pairs = iter_parallel(prefix, src_lang, tgt_lang)
        while chunk := list(itertools.islice(pairs, _CHUNK)):
            src_text, tgt_text = zip(*chunk)
            src = tok.src.encode(with_prefix(src_text, src_prefix), num_threads=threads)
            tgt = tok.tgt.encode(list(tgt_text), num_threads=threads)
            keep, chunk_stats = keep_pairs(src, tgt, src_text, tgt_text, max_len, cleaning, seen)
            files["lines.idx"].write((stats["lines"] + np.asarray(keep, dtype=np.int64)).tobytes())
            stats["lines"] += len(chunk)
            for key, count in chunk_stats.items():
                stats[key] += count
            for side, seqs in (("src", src), ("tgt", tgt)):
                kept = [seqs[i] for i in keep]
                lens = np.fromiter((len(s) for s in kept), dtype=np.int32, count=len(kept))
                files[f"{side}.lens"].write(lens.tobytes())
                flat = np.fromiter(itertools.chain.from_iterable(kept), dtype=dtype, count=int(lens.sum()))
                files[f"{side}.tokens"].write(flat.tobytes())
    finally:
        for f in files.values():
            f.close()
    stats["dtype"] = np.dtype(dtype).name
    with open(os.path.join(out_dir, "meta.json"), "w") as meta:
        json.dump(stats, meta)
    return stats


def cache_entry(prefix: str, src_lang: str, tgt_lang: str, tok: Tokenizer, max_len: int, cache_dir: str,
                name: str = "train", fingerprint: Optional[str] = None, cleaning: Cleaning = NO_CLEANING,
                src_prefix: Optional[str] = None) -> Tuple[str, str]:
    """(the cache directory of this corpus, tokenizer, max_len and filters; the corpus's content hash)."""
    fingerprint = fingerprint or corpus_fingerprint(prefix, src_lang, tgt_lang)
    key = cache_key(prefix, src_lang, tgt_lang, tok, max_len, fingerprint, cleaning, src_prefix)
    return os.path.join(cache_dir, f"{name}-{key}"), fingerprint


def is_cached(prefix: str, src_lang: str, tgt_lang: str, tok: Tokenizer, max_len: int, cache_dir: str,
              name: str = "train", fingerprint: Optional[str] = None, cleaning: Cleaning = NO_CLEANING,
              src_prefix: Optional[str] = None) -> bool:
    """Whether ``cache_dir`` holds the complete encoded form of this corpus."""
    directory, _ = cache_entry(prefix, src_lang, tgt_lang, tok, max_len, cache_dir, name, fingerprint, cleaning,
                               src_prefix)
    return os.path.isfile(os.path.join(directory, "meta.json"))


def encode_cached(prefix: str, src_lang: str, tgt_lang: str, tok: Tokenizer, max_len: int, cache_dir: str,
                  threads: int = 1, name: str = "train", fingerprint: Optional[str] = None,
                  cleaning: Cleaning = NO_CLEANING, src_prefix: Optional[str] = None) -> EncodedCorpus:
    """The training corpus, encoded, blank and over-long (> ``max_len``) pairs dropped (and what
    ``cleaning`` filters), memory-mapped
    from ``cache_dir``; encoded there first unless an earlier run did.

    The cache entry is written under a temporary name and renamed into place when complete, so an
    interrupted encoding never leaves a half-written entry behind, and two runs may share a cache.
    """
    directory, fingerprint = cache_entry(prefix, src_lang, tgt_lang, tok, max_len, cache_dir, name, fingerprint,
                                         cleaning, src_prefix)
    if not os.path.isfile(os.path.join(directory, "meta.json")):
        os.makedirs(cache_dir, exist_ok=True)
        t0 = time.time()
        tmp = tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir)
        try:
            stats = _write_cache(prefix, src_lang, tgt_lang, tok, max_len, tmp, threads, cleaning, src_prefix)
            try:
                os.rename(tmp, directory)
            except OSError:
                if not os.path.isfile(os.path.join(directory, "meta.json")):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("%s: encoded %d pairs in %.1f s into %s", name, stats["lines"], time.time() - t0, directory)
    else:
        log.info("%s: reusing the encoded corpus %s (its key: the content of %s.{%s,%s}, hash %s, the "
                 "sentencepiece models and max_len %d)", name, directory, prefix, src_lang, tgt_lang, fingerprint,
                 max_len)
    return _open(directory, prefix, max_len, fingerprint, name, cleaning)


def open_cached(prefix: str, src_lang: str, tgt_lang: str, tok: Tokenizer, max_len: int, cache_dir: str,
                name: str = "train", fingerprint: Optional[str] = None, cleaning: Cleaning = NO_CLEANING,
                src_prefix: Optional[str] = None) -> EncodedCorpus:
    """The encoded corpus another process (the first rank) wrote into ``cache_dir``; FileNotFoundError
    if it is not there."""
    directory, fingerprint = cache_entry(prefix, src_lang, tgt_lang, tok, max_len, cache_dir, name, fingerprint,
                                         cleaning, src_prefix)
    return _open(directory, prefix, max_len, fingerprint, name, cleaning)


def _open(directory: str, prefix: str, max_len: int, fingerprint: str, name: str,
          cleaning: Cleaning = NO_CLEANING) -> EncodedCorpus:
    with open(os.path.join(directory, "meta.json")) as f:
        stats = json.load(f)
    report_filtered(f"{name} ({prefix})", stats, max_len, cleaning)
    corpus = load_cached(directory)
    corpus.fingerprint, corpus.directory = fingerprint, directory
    return corpus
