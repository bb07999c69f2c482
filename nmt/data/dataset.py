"""Corpora encoded with sentencepiece, ready for batching."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import List, Optional

from . import toy
from .corpus import CorpusError, filter_pairs, read_parallel
from .spm import Tokenizer

log = logging.getLogger(__name__)


@dataclass
class EncodedCorpus:
    src: List[List[int]]
    tgt: List[List[int]]
    src_text: List[str]
    tgt_text: List[str]

    def __len__(self) -> int:
        return len(self.src)

    @property
    def src_lens(self) -> List[int]:
        return [len(s) for s in self.src]

    @property
    def tgt_lens(self) -> List[int]:
        return [len(t) for t in self.tgt]


def ensure_generated(prefix: Optional[str], generate: Optional[str], src_lang: str, tgt_lang: str) -> None:
    """Write the embedded toy corpus beside ``prefix`` when ``data.generate=toy`` and it is missing."""
    if generate is None or prefix is None:
        return
    if generate != "toy":
        raise ValueError(f"data.generate must be 'toy' or null, got {generate!r}")
    if toy.ensure(os.path.dirname(prefix) or ".", src_lang, tgt_lang):
        log.info("wrote the toy corpus under %s", os.path.dirname(prefix) or ".")


def read_split(prefix: Optional[str], name: str, src_lang: str, tgt_lang: str):
    if not prefix:
        raise CorpusError(f"no {name} data: set data.{name}=PATH_PREFIX (reads PREFIX.{src_lang}, PREFIX.{tgt_lang})")
    return read_parallel(prefix, src_lang, tgt_lang)


def encode(corpus, tok: Tokenizer, max_len: int = 0, name: str = "train") -> EncodedCorpus:
    """Encode both sides; with ``max_len`` > 0 (training data only) drop blank and over-long pairs."""
    src, tgt = tok.encode_src(corpus.src), tok.encode_tgt(corpus.tgt)
    if max_len <= 0:
        return EncodedCorpus(src, tgt, corpus.src, corpus.tgt)
    keep, _ = filter_pairs(src, tgt, corpus.src, corpus.tgt, max_len, name=name)
    return EncodedCorpus([src[i] for i in keep], [tgt[i] for i in keep],
                         [corpus.src[i] for i in keep], [corpus.tgt[i] for i in keep])
