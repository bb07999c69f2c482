"""Corpora encoded with sentencepiece, ready for batching; where the toy corpus may be written."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import List, Optional

from . import toy
from .corpus import CorpusError, filter_pairs, read_parallel, resolve
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


def ensure_generated(train: Optional[str], valid: Optional[str], test: Optional[str], generate: Optional[str],
                     src_lang: str, tgt_lang: str) -> bool:
    """Write the embedded toy corpus for ``data.generate=toy``, and only where nothing can be lost.

    Only into its own default location (``data/toy``, relative to the working directory), only
    when every given split prefix points there (a prefix of the user's own means the user's data:
    nothing is generated), and only when that directory holds no corpus file at all. Returns True
    when it wrote the corpus.
    """
    if generate is None:
        return False
    given = {"train": train, "valid": valid, "test": test}
    defaults = {split: os.path.join(toy.DEFAULT_DIR, split) for split in toy.SPLITS}
    if any(p is not None and os.path.normpath(p) != defaults[s] for s, p in given.items()):
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
