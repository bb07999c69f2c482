"""Subword regularization (Kudo, 2018): every epoch trains on a fresh sampling of the training
corpora's segmentation. Each sentence's segmentation is drawn from its ``nbest`` best under the
unigram sentencepiece model, with probability proportional to P(segmentation) ** alpha.

sentencepiece finds the n best segmentations; the draw is this module's, from numpy's generator
seeded by (``train.seed``, epoch, corpus, chunk, side): sentencepiece's own sampler takes a seed but
gives other samples in another process, and a resumed run must see exactly the segmentation (and so
the batches) an uninterrupted one would, on every rank.

The encoded-corpus cache holds one deterministic segmentation and the corpus line of each kept
pair. An epoch's sampled segmentation of those same pairs (so the pair count, the epoch's draw and
the filters stay what they are) is written by a child process (``python -m nmt.data.subword DIR``)
as flat token arrays in the run directory, in the cache's format, and memory-mapped: nothing grows
in memory with the corpus. The next epoch's is written in the background while this one trains. A
sampled sequence longer than ``data.max_len`` keeps its deterministic segmentation. Validation, test
and translation always use the deterministic segmentation.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import sentencepiece as spm

from ..errors import ConfigError
from .corpus import CorpusError, iter_parallel, with_prefix
from .dataset import load_cached
from .spm import Tokenizer, child_env

log = logging.getLogger(__name__)

_CHUNK = 20_000  # corpus lines read and sampled at a time


@dataclass(frozen=True)
class Sampling:
    """``alpha`` sharpens (large) or flattens (small) the distribution over a sentence's ``nbest``
    best segmentations: P(segmentation) ** alpha, normalized."""
    alpha: float
    nbest: int = 16


def rng_for(seed: int, epoch: int, corpus: int, chunk: int, side: int) -> np.random.Generator:
    """The generator of one side of one chunk of one corpus in one epoch."""
    return np.random.default_rng([seed & (2 ** 64 - 1), epoch, corpus, chunk, side, 0x737562])  # any seed, negative too


def check_samplable(sp: spm.SentencePieceProcessor, what: str) -> None:
    """Subword sampling needs n-best segmentations: a unigram model."""
    try:
        sp.nbest_encode_as_ids("a", nbest_size=2)
    except RuntimeError:
        raise ConfigError(f"data.spm.sampling_alpha: subword sampling needs a unigram sentencepiece model; {what} is "
                          f"not one") from None


def piece_table(sp: spm.SentencePieceProcessor) -> Tuple[np.ndarray, np.ndarray]:
    """(vocab,) log-probability of each piece; (vocab,) int8: +1 for a piece the segmentation must
    keep whole (user-defined symbols, such as tags: score 0 and neither control nor unknown), -1000
    for the unknown piece."""
    n = sp.get_piece_size()
    log_probs = np.array([sp.get_score(i) for i in range(n)])
    kind = np.array([-1000 if sp.is_unknown(i) else int(log_probs[i] == 0 and not sp.is_control(i))
                     for i in range(n)], dtype=np.int64)
    return log_probs, kind


def sample_segmentations(sp: spm.SentencePieceProcessor, table: Tuple[np.ndarray, np.ndarray],
                         texts: Sequence[str], sampling: Sampling, rng: np.random.Generator) -> List[List[int]]:
    """One segmentation per text, drawn from its ``nbest`` best with probability ~ P ** alpha
    (Gumbel-max over each text's candidates, all texts at once). A candidate that splits a
    user-defined symbol, or reads a character as unknown where the best one does not, is never drawn."""
    log_probs, kind = table
    cands = sp.nbest_encode_as_ids(list(texts), nbest_size=sampling.nbest)  # [text][candidate] -> ids
    flat = [c for options in cands for c in options]
    counts = np.fromiter((len(options) for options in cands), dtype=np.int64, count=len(cands))  # (n,)
    lens = np.fromiter((len(c) for c in flat), dtype=np.int64, count=len(flat))  # (candidates,)
    ids = np.fromiter(itertools.chain.from_iterable(flat), dtype=np.int64, count=int(lens.sum()))
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)  # (candidates,)
    nonempty = lens > 0

    def per_candidate(values: np.ndarray) -> np.ndarray:  # (tokens,) -> (candidates,) sums
        sums = np.add.reduceat(values, np.minimum(starts, max(len(values) - 1, 0))) if len(values) else None
        return np.where(nonempty, sums, 0) if sums is not None else np.zeros(len(flat), dtype=values.dtype)

    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)  # (n,) each text's best candidate
    text_of = np.repeat(np.arange(len(cands)), counts)  # (candidates,)
    whole = per_candidate(kind[ids])  # (candidates,) kept symbols - 1000 x unknowns
    allowed = whole >= whole[first][text_of]
    score = per_candidate(log_probs[ids]) * sampling.alpha + rng.gumbel(size=len(flat))  # (candidates,)
    score = np.where(allowed, score, -np.inf)
    order = np.lexsort((-score, text_of))  # by text, the best perturbed score first
    return [flat[i] for i in order[first]]


def sample_corpus(tok: Tokenizer, prefix: str, src_lang: str, tgt_lang: str, base_dir: str,
                  src_prefix: Optional[str], max_len: int, sampling: Sampling, seed: int, epoch: int, corpus: int,
                  out_dir: str) -> dict:
    """Write a sampled segmentation of the pairs cached in ``base_dir`` (same pairs, same order) into
    ``out_dir`` in the cache's format; returns its counts (``pieces``, ``base_pieces``, ``kept_whole``)."""
    base = load_cached(base_dir)
    lines = np.fromfile(os.path.join(base_dir, "lines.idx"), dtype=np.int64)  # (n,) corpus line of each pair
    if len(lines) != len(base):
        raise CorpusError(f"{base_dir}: the encoded-corpus cache has no line numbers; delete it")
    dtype = base.src.tokens.dtype
    stats = {"kept": len(base), "dtype": np.dtype(dtype).name, "pieces": 0,
             "base_pieces": int(base.src.lens.sum() + base.tgt.lens.sum()), "kept_whole": 0}
    tables = {"src": piece_table(tok.src), "tgt": piece_table(tok.tgt)}
    names = ("src.tokens", "tgt.tokens", "src.lens", "tgt.lens")
    files = {name: open(os.path.join(out_dir, name), "wb") for name in names}
    done = 0  # pairs written
    try:
        pairs = iter_parallel(prefix, src_lang, tgt_lang, warn=False)
        for chunk_no in itertools.count():
            chunk = list(itertools.islice(pairs, _CHUNK))
            if not chunk:
                break
            first = chunk_no * _CHUNK
            upto = int(np.searchsorted(lines, first + len(chunk)))
            rows = (lines[done:upto] - first).tolist()  # the kept lines of this chunk
            texts = {"src": with_prefix([chunk[r][0] for r in rows], src_prefix), "tgt": [chunk[r][1] for r in rows]}
            for side_no, (side, sp, arrays) in enumerate((("src", tok.src, base.src), ("tgt", tok.tgt, base.tgt))):
                seqs = sample_segmentations(sp, tables[side], texts[side], sampling,
                                            rng_for(seed, epoch, corpus, chunk_no, side_no))
                for j, seq in enumerate(seqs):
                    if len(seq) > max_len:
                        seqs[j] = list(arrays[done + j])
                        stats["kept_whole"] += 1
                lens = np.fromiter((len(s) for s in seqs), dtype=np.int32, count=len(seqs))
                files[f"{side}.lens"].write(lens.tobytes())
                flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=dtype, count=int(lens.sum()))
                files[f"{side}.tokens"].write(flat.tobytes())
                stats["pieces"] += int(lens.sum())
            done = upto
    finally:
        for f in files.values():
            f.close()
    if done != len(lines):
        raise CorpusError(f"{prefix}.{{{src_lang},{tgt_lang}}}: the corpus has fewer lines than its encoded cache "
                          f"({base_dir}) says; it changed during the run")
    with open(os.path.join(out_dir, "meta.json"), "w") as meta:
        json.dump(stats, meta)
    return stats


def run_job(out_dir: str) -> None:
    """Sample every corpus as ``out_dir/job.json`` says into ``out_dir/part{k}``; the counts (or an
    error a user can act on) into ``out_dir/result.json``."""
    with open(os.path.join(out_dir, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    tok = Tokenizer.load(*job["models"])
    sampling = Sampling(*job["sampling"])
    try:
        stats = []
        for k, c in enumerate(job["corpora"]):
            part = os.path.join(out_dir, f"part{k}")
            os.makedirs(part, exist_ok=True)
            stats.append(sample_corpus(tok, c["prefix"], job["src_lang"], job["tgt_lang"], c["base_dir"],
                                       c["src_prefix"], job["max_len"], sampling, job["seed"], job["epoch"], k, part))
        result: Dict[str, Any] = {"stats": stats}
    except CorpusError as e:
        result = {"error": str(e)}
    with open(os.path.join(out_dir, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f)


class SubwordSampler:
    """The sampled segmentations of a run's training data, one per epoch: ``epoch(e)`` returns epoch
    ``e``'s (waiting for it where it is not written yet) and starts writing epoch ``e + 1``'s in the
    background. ``directory`` is the sampler's own (in the run directory); ``close`` removes it."""

    def __init__(self, data, tok: Tokenizer, sampling: Sampling, seed: int, max_len: int, src_lang: str,
                 tgt_lang: str, directory: str):
        if any(p.directory is None for p in data.parts):
            raise ValueError("subword sampling needs the corpora's cache entries")
        check_samplable(tok.src, "its source model" if not tok.joint else "its model")
        check_samplable(tok.tgt, "its target model")
        self.data, self.sampling, self.seed, self.max_len = data, sampling, seed, max_len
        self.src_lang, self.tgt_lang, self.directory = src_lang, tgt_lang, directory
        shutil.rmtree(directory, ignore_errors=True)  # an interrupted run's leftovers
        os.makedirs(directory)
        tok.save(directory)
        self.models = ([os.path.join(directory, "spm.model"), None] if tok.joint else
                       [os.path.join(directory, "spm.src.model"), os.path.join(directory, "spm.tgt.model")])
        self.jobs: Dict[int, Tuple[Optional[subprocess.Popen], str, float]] = {}

    def _start(self, epoch: int) -> None:
        out = os.path.join(self.directory, f"epoch-{epoch}")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        job = {"models": self.models, "sampling": [self.sampling.alpha, self.sampling.nbest], "seed": self.seed,
               "epoch": epoch, "max_len": self.max_len, "src_lang": self.src_lang, "tgt_lang": self.tgt_lang,
               "corpora": [{"prefix": s.path, "base_dir": p.directory, "src_prefix": s.src_prefix}
                           for s, p in zip(self.data.specs, self.data.parts)]}
        with open(os.path.join(out, "job.json"), "w", encoding="utf-8") as f:
            json.dump(job, f)
        try:  # its own session: a Ctrl-C at the terminal stops training, not this helper
            with open(os.path.join(out, "stderr.log"), "wb") as err:
                proc = subprocess.Popen([sys.executable, "-m", "nmt.data.subword", out], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, env=child_env(),
                                        start_new_session=True)
        except OSError as e:  # no child processes here (a sandbox, a process limit): sampled when needed
            log.warning("subword sampling: cannot start a child process (%s); sampling in this one", e)
            proc = None
        self.jobs[epoch] = (proc, out, time.time())

    def _finish(self, epoch: int):
        proc, out, t0 = self.jobs.pop(epoch)
        waited = time.time()
        if proc is None:
            run_job(out)
        elif proc.wait() != 0:
            with open(os.path.join(out, "stderr.log"), "rb") as f:
                tail = f.read().decode("utf-8", "replace").strip()[-2000:]
            raise RuntimeError(f"subword sampling for epoch {epoch + 1} failed in its child process "
                               f"(exit {proc.returncode}):\n{tail}")
        with open(os.path.join(out, "result.json"), encoding="utf-8") as f:
            result = json.load(f)
        if "error" in result:
            raise CorpusError(result["error"])
        parts = [load_cached(os.path.join(out, f"part{k}")) for k in range(len(self.data.parts))]
        pieces = sum(s["pieces"] for s in result["stats"])
        base = sum(s["base_pieces"] for s in result["stats"])
        log.info("epoch %d: sampled segmentation (alpha %g, %d best): %.3fx the deterministic pieces, %d over-long "
                 "sequences kept whole; written in %.1f s, %.1f s of it waited for", epoch + 1, self.sampling.alpha,
                 self.sampling.nbest, pieces / max(base, 1), sum(s["kept_whole"] for s in result["stats"]),
                 time.time() - t0, time.time() - waited)
        return self.data.resegmented(parts)

    def epoch(self, epoch: int):
        """The training data of epoch ``epoch`` (0-based) in its sampled segmentation."""
        for other in [e for e in self.jobs if e != epoch]:
            self._cancel(other)
        if epoch not in self.jobs:
            self._start(epoch)
        data = self._finish(epoch)
        for name in os.listdir(self.directory):  # earlier epochs' files (their maps stay valid until dropped)
            if name.startswith("epoch-") and name != f"epoch-{epoch}":
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
        self._start(epoch + 1)
        return data

    def _cancel(self, epoch: int) -> None:
        proc, out, _ = self.jobs.pop(epoch)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(out, ignore_errors=True)

    def close(self) -> None:
        """Stop the background work and remove the sampler's files."""
        for epoch in list(self.jobs):
            self._cancel(epoch)
        shutil.rmtree(self.directory, ignore_errors=True)
        try:  # the run directory's subword/ when no other rank's folder is left in it
            os.rmdir(os.path.dirname(self.directory))
        except OSError:
            pass


if __name__ == "__main__":
    if hasattr(os, "nice"):
        os.nice(10)  # background work: training's threads come first
    run_job(sys.argv[1])
