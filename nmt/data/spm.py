"""Sentencepiece models: trained at the start of a run, stored in the run dir and in checkpoints.

Ids are fixed across the toolkit: pad 0, unk 1, bos 2, eos 3.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, cast

import numpy as np
import sentencepiece as spm

from ..config import SpmType

if TYPE_CHECKING:
    from .factors import FactorVocab
from ..errors import ConfigError

log = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = 0, 1, 2, 3
WORD_START = "\u2581"  # sentencepiece's marker of a piece that begins a word


def train_spm(sentences: Sequence[str], vocab_size: int, model_type: SpmType = SpmType.unigram,
              character_coverage: float = 1.0, input_sentence_size: int = 1_000_000, seed: int = 1,
              user_symbols: Sequence[str] = ()) -> bytes:
    """Train a sentencepiece model on ``sentences`` and return its serialized proto."""
    model_type = SpmType(model_type)
    sentences = [s for s in sentences if s.strip()]
    if len(sentences) > input_sentence_size:
        sentences = random.Random(seed).sample(sentences, input_sentence_size)
    buffer = io.BytesIO()
    symbols: Dict[str, Any] = {"user_defined_symbols": list(user_symbols)} if user_symbols else {}
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=vocab_size,
        model_type=model_type.value, character_coverage=character_coverage,
        **symbols,
        pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS, hard_vocab_limit=False,
        input_sentence_size=0, shuffle_input_sentence=False, num_threads=os.cpu_count() or 1,
        minloglevel=2)
    return buffer.getvalue()


def word_starts(sp) -> np.ndarray:
    """(vocab,) bool: the pieces of sentencepiece processor ``sp`` that begin a word (they carry the
    word-start marker)."""
    return np.array([sp.id_to_piece(i).startswith(WORD_START) and not sp.is_control(i)
                     for i in range(sp.get_piece_size())], dtype=bool)


class Tokenizer:
    """Source and target sentencepiece models (the same object when joint), and the vocabularies of
    the source factors, in ``data.src_factors`` order."""

    def __init__(self, src_proto: bytes, tgt_proto: Optional[bytes] = None, factors: Sequence[FactorVocab] = ()):
        self.factors: Tuple[FactorVocab, ...] = tuple(factors)
        self.src_proto = src_proto
        self.tgt_proto = tgt_proto if tgt_proto is not None else src_proto
        self.src = spm.SentencePieceProcessor(model_proto=self.src_proto)
        self.tgt = self.src if tgt_proto is None else spm.SentencePieceProcessor(model_proto=self.tgt_proto)
        for sp in (self.src, self.tgt):
            if (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) != (PAD, UNK, BOS, EOS):
                raise ConfigError(f"sentencepiece model has special ids pad/unk/bos/eos = {sp.pad_id()}/{sp.unk_id()}/"
                                  f"{sp.bos_id()}/{sp.eos_id()}; nmt needs {PAD}/{UNK}/{BOS}/{EOS} (train it with "
                                  f"--pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3)")

    @property
    def joint(self) -> bool:
        return self.src is self.tgt

    @functools.cached_property
    def src_word_start(self) -> np.ndarray:
        """(src vocab,) bool: the source pieces that begin a word (``word_starts``)."""
        return word_starts(self.src)

    @functools.cached_property
    def tgt_word_start(self) -> np.ndarray:
        return word_starts(self.tgt)

    @property
    def factor_sizes(self) -> Tuple[int, ...]:
        """The vocabulary size of each source factor."""
        return tuple(len(f) for f in self.factors)

    @property
    def src_vocab_size(self) -> int:
        return self.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.tgt.get_piece_size()

    def encode_src(self, lines: Iterable[str]) -> List[List[int]]:
        return self.src.encode(list(lines))

    def encode_tgt(self, lines: Iterable[str]) -> List[List[int]]:
        return self.tgt.encode(list(lines))

    def tgt_word_continuations(self) -> List[int]:
        """Target ids of the pieces that continue a word (no word-start marker, a letter or digit in
        them): what may not follow a lexical constraint, so that "bicycle" is not met by "bicycles"."""
        return [i for i in range(self.tgt.get_piece_size())
                if not (self.tgt.is_control(i) or self.tgt.is_unknown(i))
                and not (piece := self.tgt.id_to_piece(i)).startswith(WORD_START) and any(c.isalnum() for c in piece)]

    def encode_prefixes(self, prefixes: Sequence[str]) -> List[List[int]]:
        """Target ids per prefix text (a translation must start with them); a blank prefix gives []
        (no constraint)."""
        encoded = iter(self.encode_tgt([p for p in prefixes if p.strip()]))
        return [next(encoded) if p.strip() else [] for p in prefixes]

    def decode_tgt(self, ids: Iterable[Sequence[int]]) -> List[str]:
        return [self.tgt.decode([int(i) for i in seq]) for seq in ids]

    def src_pieces(self, line: str) -> List[str]:
        return self.src.encode(line, out_type=str)

    def src_id_pieces(self, ids: Sequence[int]) -> List[str]:
        return [self.src.id_to_piece(int(i)) for i in ids]

    def tgt_pieces(self, ids: Sequence[int]) -> List[str]:
        return [self.tgt.id_to_piece(int(i)) for i in ids]

    @classmethod
    def load(cls, src_path: str, tgt_path: Optional[str] = None) -> Tokenizer:
        """Existing sentencepiece model file(s): one joint model, or a source and a target model."""
        protos: List[Optional[bytes]] = []
        for key, path in (("data.spm.model", src_path), ("data.spm.tgt_model", tgt_path)):
            if path is None:
                protos.append(None)
                continue
            try:
                with open(path, "rb") as f:
                    protos.append(f.read())
                spm.SentencePieceProcessor(model_proto=protos[-1])
            except OSError as e:
                raise ConfigError(f"{key}={path}: cannot read ({e.strerror})") from None
            except RuntimeError:
                raise ConfigError(f"{key}={path}: not a sentencepiece model") from None
        try:
            return cls(cast(bytes, protos[0]), protos[1])  # src_path is always given
        except ConfigError as e:
            raise ConfigError(f"data.spm.model={src_path}: {e}") from None

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        names = {"spm.model": self.src_proto} if self.joint else {
            "spm.src.model": self.src_proto, "spm.tgt.model": self.tgt_proto}
        for name, proto in names.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(proto)

    @classmethod
    def train(cls, src_lines: Sequence[str], tgt_lines: Sequence[str], vocab_size: int,
              model_type: SpmType, joint: bool, character_coverage: float = 1.0,
              input_sentence_size: int = 1_000_000, seed: int = 1, user_symbols: Sequence[str] = ()) -> Tokenizer:
        """``user_symbols`` (tags) are kept whole on the source side (and in a joint model)."""
        kw: Dict[str, Any] = dict(vocab_size=vocab_size, model_type=model_type, character_coverage=character_coverage,
                  input_sentence_size=input_sentence_size, seed=seed)
        if joint:
            log.info("training a joint %s sentencepiece model (%d pieces)", model_type, vocab_size)
            return cls(train_spm(list(src_lines) + list(tgt_lines), user_symbols=user_symbols, **kw))
        log.info("training source and target %s sentencepiece models (%d pieces each)", model_type, vocab_size)
        return cls(train_spm(src_lines, user_symbols=user_symbols, **kw), train_spm(tgt_lines, **kw))

    @classmethod
    def train_on_corpus(cls, prefix, src_lang: str, tgt_lang: str, vocab_size: int, model_type: str,
                        joint: bool, character_coverage: float = 1.0, input_sentence_size: int = 1_000_000,
                        seed: int = 1, user_symbols: Sequence[str] = ()) -> Tokenizer:
        """Train on a sample of a corpus file pair (or of several: ``prefix`` a list), in a child process.

        The child streams the corpus, keeps a uniform sample of ``input_sentence_size`` sentences
        (half from each side for a joint model) and trains; its memory, most of it sentencepiece's
        suffix array, goes back to the system when it exits instead of staying in the training
        process for the whole run.
        """
        t0 = time.time()
        job = dict(prefix=prefix, src_lang=src_lang, tgt_lang=tgt_lang, vocab_size=vocab_size, model_type=model_type,
                   joint=joint, character_coverage=character_coverage, input_sentence_size=input_sentence_size,
                   seed=seed, user_symbols=list(user_symbols))
        try:
            src_proto, tgt_proto, sentences, peak_mb = _run_child(job)
        except OSError as e:  # no child processes here (a sandbox, a process limit)
            log.warning("sentencepiece: cannot start a child process (%s); training in this one", e)
            src_proto, tgt_proto, sentences, peak_mb = _train_from_corpus(**job)
        log.info("sentencepiece: trained on %d sentences in %.1f s (its process peaked at %.0f MB)",
                 sentences, time.time() - t0, peak_mb)
        return cls(src_proto, tgt_proto)


def child_env() -> dict:
    """The environment of a child ``python -m nmt...`` process: this one's, with this package importable."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


def _run_child(job: dict) -> Tuple[bytes, Optional[bytes], int, float]:
    """Run ``_train_from_corpus`` in a fresh interpreter (``python -m nmt.data.spm``), which imports
    nothing of the caller's: a user's script without an ``if __name__ == "__main__":`` guard is never
    run again. The job and the results travel through a private temporary directory."""
    from .corpus import CorpusError
    with tempfile.TemporaryDirectory(prefix="nmt-spm-") as tmp:
        with open(os.path.join(tmp, "job.json"), "w", encoding="utf-8") as f:
            json.dump(job, f)
        proc = subprocess.run([sys.executable, "-m", "nmt.data.spm", tmp], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
        result_path = os.path.join(tmp, "result.json")
        result = {}
        if os.path.exists(result_path):
            with open(result_path, encoding="utf-8") as f:
                result = json.load(f)
        if "error" in result:  # an error the user can act on: re-raised here with its message
            kind = {"CorpusError": CorpusError, "ConfigError": ConfigError}.get(result["kind"])
            if kind is not None:
                raise kind(result["error"])
        if proc.returncode == -signal.SIGINT or proc.returncode == 130:
            raise KeyboardInterrupt
        if proc.returncode != 0 or "sentences" not in result:
            tail = proc.stderr.decode("utf-8", "replace").strip()[-2000:]
            raise RuntimeError(f"sentencepiece training failed in its child process (exit {proc.returncode}):\n{tail}")
        src, tgt = (Path(tmp, name) for name in ("src.model", "tgt.model"))
        return src.read_bytes(), tgt.read_bytes() if tgt.exists() else None, result["sentences"], result["peak_mb"]


def _child_main(tmp: str) -> int:
    """``python -m nmt.data.spm DIR``: train as DIR/job.json says; write the models and
    DIR/result.json (or the error a user can act on)."""
    from .corpus import CorpusError
    with open(os.path.join(tmp, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    try:
        src_proto, tgt_proto, sentences, peak_mb = _train_from_corpus(**job)
    except KeyboardInterrupt:
        return 130
    except (CorpusError, ConfigError) as e:
        result: Dict[str, Any] = {"error": str(e), "kind": type(e).__name__}
    else:
        for name, proto in (("src.model", src_proto), ("tgt.model", tgt_proto)):
            if proto is not None:
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(proto)
        result = {"sentences": sentences, "peak_mb": peak_mb}
    with open(os.path.join(tmp, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0 if "sentences" in result else 1


def _train_from_corpus(prefix, src_lang: str, tgt_lang: str, vocab_size: int, model_type: str, joint: bool,
                       character_coverage: float, input_sentence_size: int,
                       seed: int, user_symbols: Sequence[str] = ()) -> Tuple[bytes, Optional[bytes], int, float]:
    """Runs in the child process of ``Tokenizer.train_on_corpus``."""
    from .corpus import CorpusError, sample_pairs
    pairs = max(1, input_sentence_size // 2) if joint else input_sentence_size
    src, tgt = sample_pairs(prefix, src_lang, tgt_lang, pairs, seed)
    for lang, lines in ((src_lang, src), (tgt_lang, tgt)):
        if not any(line.strip() for line in lines):
            where = ", ".join(f"{p}.{lang}" for p in ([prefix] if isinstance(prefix, str) else prefix))
            raise CorpusError(f"{where}: no usable training pairs: every line"
                              f"{'' if len(lines) < pairs else f' of a sample of {len(lines)}'} is blank")
    tok = Tokenizer.train(src, tgt, vocab_size, SpmType(model_type), joint, character_coverage,
                          input_sentence_size, seed, user_symbols)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return tok.src_proto, None if tok.joint else tok.tgt_proto, len(src) + len(tgt), peak_mb


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
