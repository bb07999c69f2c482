"""What a run is built from: its data and tokenizer, its model, optimizer and LR schedule (fresh,
resumed from ``last.pt``, or initialised from another checkpoint for fine-tuning)."""
from __future__ import annotations

import logging
import os
import random
import time
from typing import Any, Dict, List, Optional, cast

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from ..checkpoint import load_checkpoint, load_weights, set_rng_state, tokenizer_of
from ..config import Config, CorpusSpec, to_dict, train_corpora
from ..data.alignments import guide_for, read_links
from ..data.corpus import Cleaning, CorpusError, resolve, tag_words
from ..data.dataset import (
    EncodedCorpus,
    check_exists,
    corpus_fingerprint,
    encode,
    encode_cached,
    ensure_generated,
    is_cached,
    kept_lines,
    open_cached,
    read_split,
    require,
)
from ..data.factors import CorpusFactors, FactorVocab, count_values, factor_file, read_factor_texts, read_word_factors
from ..data.mixture import TrainingData, combined_fingerprint, quotas
from ..data.spm import Tokenizer
from ..data.subword import Sampling, SubwordSampler
from ..errors import ConfigError
from ..models import build_model
from ..models.seq2seq import count_parameters
from ..precision import loss_scaler
from ..runpaths import RunPaths
from ..search import validation_options
from ..translator import Translator
from .distributed import Dist
from .ema import EMA
from .metrics import MetricsLog
from .run import Run, TrainState
from .schedules import LRSchedule, build_optimizer

log = logging.getLogger("nmt.train")


def load_init_checkpoint(cfg: Config) -> Dict:
    """The checkpoint named by ``train.init_from`` (weights and sentencepiece models to start from)."""
    if cfg.data.spm.model:
        raise ConfigError("train.init_from and data.spm.model both name a sentencepiece model: the checkpoint's "
                          "is used for fine-tuning; drop data.spm.model")
    assert cfg.train.init_from is not None  # called only when it is set
    init = load_checkpoint(cfg.train.init_from)
    # the checkpoint's sentencepiece models are used: settings that describe other ones are refused,
    # so that config.yaml records what ran
    mine, theirs = to_dict(cfg)["data"]["spm"], init["config"].get("data", {}).get("spm", {})
    changed = [(k, mine[k], theirs[k]) for k in TOKENIZER_KEYS if k in theirs and mine.get(k) != theirs[k]]
    if changed:
        details = ", ".join(f"data.spm.{k}={a!r} (the checkpoint's: {b!r})" for k, a, b in changed)
        raise ConfigError(f"train.init_from={cfg.train.init_from}: fine-tuning uses the checkpoint's sentencepiece "
                          f"model, but {details}; drop these overrides or set them to the checkpoint's values")
    return init


# the settings that describe a trained sentencepiece model (not how it is used)
TOKENIZER_KEYS = ("model_type", "vocab_size", "joint", "character_coverage", "user_symbols")


def user_symbols(cfg: Config) -> list:
    """The pieces sentencepiece must keep whole: ``data.spm.user_symbols``, ``data.src_prefix`` and
    every training corpus's own ``src_prefix``."""
    d = cfg.data
    tags = [d.src_prefix] + [s.src_prefix for s in train_corpora(d.train, d.src_prefix, d.alignments)]
    return list(dict.fromkeys(list(cfg.data.spm.user_symbols) + [t for t in tags if t]))


def _tokenizer(cfg: Config, specs: List[CorpusSpec], ckpt: Optional[Dict], dist: Dist) -> Tokenizer:
    """From the checkpoint, from data.spm.model files, or trained on the training corpora: made by
    rank 0 and sent to every rank (another machine needs neither the files nor the corpora's sample)."""
    d = cfg.data
    if ckpt is not None:
        tok = tokenizer_of(ckpt)
        if [f.name for f in tok.factors] != list(d.src_factors):
            raise ConfigError(f"data.src_factors={list(d.src_factors)}: the checkpoint's model reads "
                              f"{[f.name for f in tok.factors]}; a model's source factors cannot change")
        return tok
    protos = None
    if dist.main:
        if d.spm.model:
            tok = Tokenizer.load(d.spm.model, d.spm.tgt_model)
            log.info("sentencepiece: reusing %s%s (%d/%d pieces)", d.spm.model,
                     f" and {d.spm.tgt_model}" if d.spm.tgt_model else "", tok.src_vocab_size, tok.tgt_vocab_size)
        else:
            tok = Tokenizer.train_on_corpus([s.path for s in specs], d.src_lang, d.tgt_lang,
                                            d.spm.vocab_size, d.spm.model_type, d.spm.joint,
                                            d.spm.character_coverage, d.spm.input_sentence_size,
                                            seed=cfg.train.seed, user_symbols=user_symbols(cfg))
        factors = [v.to_dict() for v in count_values([s.path for s in specs], d.src_lang, d.src_factors)]
        if factors:
            log.info("source factors: %s", "; ".join(f"{f['name']}: {len(f['values'])} values" for f in factors))
        protos = (tok.src_proto, None if tok.joint else tok.tgt_proto, factors)
    src, tgt, factors = dist.broadcast(protos)
    return Tokenizer(src, tgt, [FactorVocab.from_dict(f) for f in factors])


def _training_corpus(cfg: Config, specs: List[CorpusSpec], tok: Tokenizer, run_dir: str, dist: Dist,
                     fingerprints: List[str]) -> TrainingData:
    """Each corpus encoded once into the cache by rank 0 and memory-mapped by every rank. The first
    process of another machine encodes into its own cache what it does not find there (machines
    that share no file system), after checking its copy of the files is rank 0's."""
    d = cfg.data
    cache_dir = os.path.abspath(d.cache_dir or os.path.join(run_dir, "cache"))
    cleaning = Cleaning(d.max_len_ratio, d.dedup)
    common: Dict[str, Any] = dict(src_lang=d.src_lang, tgt_lang=d.tgt_lang, tok=tok, max_len=d.max_len,
                                  cache_dir=cache_dir, cleaning=cleaning)

    def encode_here(spec: CorpusSpec, fingerprint: str) -> EncodedCorpus:
        try:
            return encode_cached(spec.path, threads=torch.get_num_threads(), fingerprint=fingerprint,
                                 src_prefix=spec.src_prefix, **common)
        except OSError as e:
            raise ConfigError(f"data.cache_dir={cache_dir}: cannot write the encoded corpus there "
                              f"({e.strerror or e})") from None

    parts = [encode_here(s, f) for s, f in zip(specs, fingerprints)] if dist.main else None
    dist.barrier()
    if not dist.main and dist.local_rank == 0:
        for spec, fingerprint in zip(specs, fingerprints):
            if not is_cached(spec.path, fingerprint=fingerprint, src_prefix=spec.src_prefix, **common):
                mine = corpus_fingerprint(spec.path, d.src_lang, d.tgt_lang)
                if mine != fingerprint:
                    raise CorpusError(f"rank {dist.rank}: this machine's copy of {spec.path} differs from rank 0's "
                                      f"(content hash {mine} here, {fingerprint} there): every machine needs the "
                                      f"same training files")
                log.warning("rank %d: %s is not in this machine's cache (%s): encoding it here", dist.rank,
                            spec.path, cache_dir)  # a warning: the other ranks log nothing below it
                encode_here(spec, fingerprint)
    dist.barrier()
    if parts is None:
        parts = [open_cached(s.path, fingerprint=f, src_prefix=s.src_prefix, **common)
                 for s, f in zip(specs, fingerprints)]
    for part, spec in zip(parts, specs):
        # alignments and factors: read and checked against the corpus by every rank (seconds per million pairs)
        if spec.alignments:
            links = read_links(spec.alignments, spec.path, d.src_lang, d.tgt_lang)
            part.guide = guide_for(links, kept_lines(cast(str, part.directory)), tok, spec.src_prefix)
            log.info("guided alignment: %s links over %s pairs of %s from %s", f"{len(links.src):,}",
                     f"{len(links):,}", spec.name, spec.alignments)
        if tok.factors:
            part.factors = CorpusFactors(read_word_factors(spec.path, d.src_lang, tok.factors),
                                         kept_lines(cast(str, part.directory)), tok.src_word_start,
                                         tag_words(spec.src_prefix))
    return TrainingData(parts, specs)


def check_factor_files(d, train: List[str]) -> None:
    """Every split has a file per source factor (``data.src_factors``): fail at start-up."""
    for prefix in [*train, d.valid, d.test]:
        for name in d.src_factors if prefix else ():
            try:
                factor_file(prefix, d.src_lang, name)
            except CorpusError as e:
                raise CorpusError(f"data.src_factors: {e} (factor {name!r} of {prefix})") from None


def prepare_data(cfg: Config, ckpt: Optional[Dict], run_dir: str, dist: Dist, resumed_corpus: Optional[str] = None):
    """Check every split exists and reads (valid and test whole: a bad byte there must stop the run
    now, not after training), get the tokenizer, encode; drop bad training pairs only. Writes
    nothing but the run directory, the cache (and the toy corpus where allowed).

    ``resumed_corpus``: the training corpus's content hash stored in the checkpoint being resumed;
    a corpus changed since is refused (the saved data position would point into other data)."""
    d = cfg.data
    specs = train_corpora(d.train, d.src_prefix, d.alignments)
    if dist.main:
        ensure_generated([s.path for s in specs] or None, d.valid, d.test, d.generate, d.src_lang, d.tgt_lang)
    dist.barrier()
    require(specs[0].path if specs else None, "train", d.src_lang, d.tgt_lang)
    for spec in specs:
        check_exists(spec.path, "train", d.src_lang, d.tgt_lang)
        if spec.alignments and not os.path.isfile(spec.alignments):  # read in full once the corpus is encoded
            raise CorpusError(f"alignments of {spec.path} not found: {spec.alignments}")
    for name in ("valid", "test"):
        check_exists(getattr(d, name), name, d.src_lang, d.tgt_lang)
    check_factor_files(d, [s.path for s in specs])
    # read once (each corpus whole), on the first rank
    fingerprints = dist.broadcast([corpus_fingerprint(s.path, d.src_lang, d.tgt_lang) for s in specs]
                                  if dist.main else None)
    if resumed_corpus and resumed_corpus != combined_fingerprint(fingerprints):
        files = ", ".join(f"{resolve(s.path, d.src_lang)}, {resolve(s.path, d.tgt_lang)}" for s in specs)
        raise CorpusError(f"data.train: the training files ({files}) changed since the checkpoint was written "
                          f"(content hash {resumed_corpus} then, {combined_fingerprint(fingerprints)} now); resuming "
                          f"would continue at the saved data position over other data. Restore the files, or start "
                          f"a new run from the checkpoint with train.init_from=.../checkpoints/last.pt")
    valid = read_split(d.valid, "valid", d.src_lang, d.tgt_lang)
    if d.test:
        read_split(d.test, "test", d.src_lang, d.tgt_lang)  # read-checked now; translated at the end
    tok = _tokenizer(cfg, specs, ckpt, dist)
    if dist.main:
        tok.save(run_dir)
    train = _training_corpus(cfg, specs, tok, run_dir, dist, fingerprints)
    factor_texts = read_factor_texts(require(d.valid, "valid", d.src_lang, d.tgt_lang), d.src_lang, d.src_factors)
    valid = encode(valid, tok, d.src_prefix, factor_texts)
    shortest = int(np.maximum(train.src_lens, train.tgt_lens).min()) + 1
    if cfg.train.max_tokens < shortest:
        raise CorpusError(f"train.max_tokens={cfg.train.max_tokens} is smaller than the shortest training pair "
                          f"({shortest} pieces with EOS): raise it")
    log.info("data: %d training pairs, %d validation pairs; vocab %d/%d", len(train), len(valid),
             tok.src_vocab_size, tok.tgt_vocab_size)
    if len(specs) > 1:
        for spec, size, n in zip(specs, train.sizes, quotas(train.sizes, [s.weight for s in specs])):
            share = f"{n / size:.2f} passes" if n > size else f"{n / size:.2f} of it"
            log.info("  corpus %s (%s): %s pairs, weight %g: %s drawn per epoch (%s)%s", spec.name, spec.path,
                     f"{size:,}", spec.weight, f"{n:,}", share,
                     f", sources tagged {spec.src_prefix}" if spec.src_prefix else "")
    return tok, train, valid


def training_shortlist(train, tok: Tokenizer) -> Dict[str, torch.Tensor]:
    """The lexical shortlist saved with every checkpoint (``nmt-translate --shortlist K``): per source
    token its 100 strongest target partners in the training pairs (``TrainingData``: a sample of each
    corpus in proportion to its weight), and the 500 most frequent targets."""
    from ..search.shortlist import MAX_PAIRS, build_shortlist
    t0 = time.time()
    corpus = train.sample(MAX_PAIRS) if isinstance(train, TrainingData) else train
    shortlist = build_shortlist(corpus.src.tokens, corpus.src.offsets, corpus.tgt.tokens, corpus.tgt.offsets,
                                tok.src_vocab_size, tok.tgt_vocab_size, per_token=100, frequent=500)
    log.info("lexical shortlist: built from %d training pairs in %.1f s", min(len(corpus), MAX_PAIRS),
             time.time() - t0)
    return shortlist


def build_training(cfg: Config, tok: Tokenizer, device, ckpt: Optional[Dict], init: Optional[Dict]):
    """Model, optimizer, LR schedule and train-state dict: restored from ``ckpt`` when resuming,
    weights from ``init`` (fresh optimizer and schedule) when fine-tuning."""
    model = build_model(cfg.encoder, cfg.attention, cfg.decoder, tok.src_vocab_size, tok.tgt_vocab_size,
                        src_factor_sizes=tok.factor_sizes).to(device)
    o = cfg.optim
    optimizer = build_optimizer(model.parameters(), o.name, o.lr, o.betas, o.momentum, o.weight_decay)
    scheduler = LRSchedule(optimizer, o.scheduler, o.warmup_steps, o.plateau_metric, o.plateau_factor,
                           o.plateau_patience, o.min_lr, budget_steps=cfg.train.max_steps,
                           budget_minutes=cfg.train.max_minutes, decay_fraction=o.decay_fraction)
    state = None
    if ckpt is not None:
        model.load_state_dict(ckpt.get("train_model", ckpt["model"]))  # raw weights, if averaged ones are saved
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["train_state"]
    elif init is not None:
        load_weights(model, init["model"], f"train.init_from={cfg.train.init_from}")
        log.info("fine-tuning: weights from %s, fresh optimizer and schedule", cfg.train.init_from)
    scheduler.step_update(state["step"] if state else 0)
    return model, optimizer, scheduler, state


def build_run(cfg: Config, run_dir: str, device, dist: Dist, ckpt: Optional[dict] = None,
              init: Optional[dict] = None, run_id: str = "") -> Run:
    """The live objects of a run (data, tokenizer, model, optimizer, schedule, state): fresh,
    resumed from ``ckpt`` or started from ``init``'s weights; ``run_id``: the run directory's marker.
    Seeds are set first, so a run and a benchmark built here draw the same initial weights and
    batches."""
    torch.manual_seed(cfg.train.seed)
    random.seed(cfg.train.seed)
    tok, train, valid = prepare_data(cfg, ckpt or init, run_dir, dist,
                                     resumed_corpus=ckpt["train_state"].get("corpus") if ckpt else None)
    model, optimizer, scheduler, state_dict = build_training(cfg, tok, device, ckpt, init)
    state = TrainState(**{**(state_dict or {}), "corpus": train.fingerprint or "", "run_id": run_id})
    if ckpt is not None:
        set_rng_state(ckpt["rng"])
        log.info("resumed from %s at step %d (epoch %d)", RunPaths(run_dir).last,
                 state.step, state.epoch + 1)
    log.info("model: %s parameters", f"{count_parameters(model):,}")
    from .loss import Objective
    objective = Objective(model, cfg.train.label_smoothing, cfg.train.softmax_samples)
    t = cfg.train
    ema = None
    if t.ema_decay:
        ema = EMA(model, t.ema_decay)
        if ckpt is not None:
            ema.load(ckpt["model"])  # the saved averaged weights
        log.info("moving average of the weights: decay %g (validated and saved as the model)", t.ema_decay)
    scaler = loss_scaler(t.precision, device)
    if scaler.is_enabled() and ckpt is not None and "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])  # the loss scale and its growth count: resume is exact
    return Run(cfg=cfg, run_dir=run_dir, device=device, dist=dist, tok=tok, train=train, valid=valid, model=model,
               net=DDP(objective) if dist.enabled else objective, optimizer=optimizer, scheduler=scheduler,
               state=state, start_step=state.step,
               metrics=(MetricsLog(run_dir, t.tensorboard, resume_step=state.step if ckpt else None)
                        if dist.main else None),
               translator=Translator(model, tok, validation_options(t), batch_size=t.valid_batch_size,
                                     precision=t.precision, src_prefix=cfg.data.src_prefix),
               shortlist=training_shortlist(train, tok) if dist.main else None, ema=ema,
               subword=subword_sampler(cfg, train, tok, run_dir, dist), scaler=scaler)


def subword_sampler(cfg: Config, train: TrainingData, tok, run_dir: str, dist: Dist) -> Optional[SubwordSampler]:
    """Each epoch's sampled segmentation (``data.spm.sampling_alpha``), written by every rank into
    its own folder of the run directory (the same seeds give every rank the same)."""
    d = cfg.data
    if not d.spm.sampling_alpha:
        return None
    sampling = Sampling(d.spm.sampling_alpha, d.spm.sampling_nbest)
    log.info("subword regularization: a fresh sentencepiece sampling of the training corpora each epoch (alpha %g, "
             "nbest %d)", sampling.alpha, sampling.nbest)
    return SubwordSampler(train, tok, sampling, cfg.train.seed, d.max_len, d.src_lang, d.tgt_lang,
                          os.path.join(run_dir, "subword", f"rank{dist.rank}"))
