"""What a run is built from: its data and tokenizer, its model, optimizer and LR schedule (fresh,
resumed from ``last.pt``, or initialised from another checkpoint for fine-tuning)."""
from __future__ import annotations

import logging
import os
import time
from typing import Dict, Optional

import numpy as np
import torch

from ..checkpoint import load_checkpoint, load_weights, tokenizer_of
from ..config import Config
from ..data.corpus import Cleaning, CorpusError, resolve
from ..data.dataset import (
    EncodedCorpus,
    check_exists,
    corpus_fingerprint,
    encode,
    encode_cached,
    ensure_generated,
    open_cached,
    read_split,
    require,
)
from ..data.spm import Tokenizer
from ..errors import ConfigError
from ..models import build_model
from .distributed import Dist
from .schedules import LRSchedule, build_optimizer

log = logging.getLogger("nmt.train")


def load_init_checkpoint(cfg: Config) -> Dict:
    """The checkpoint named by ``train.init_from`` (weights and sentencepiece models to start from)."""
    if cfg.data.spm.model:
        raise ConfigError("train.init_from and data.spm.model both name a sentencepiece model: the checkpoint's "
                          "is used for fine-tuning; drop data.spm.model")
    return load_checkpoint(cfg.train.init_from)


def user_symbols(cfg: Config) -> list:
    """The pieces sentencepiece must keep whole: ``data.spm.user_symbols`` and ``data.src_prefix``."""
    extra = [cfg.data.src_prefix] if cfg.data.src_prefix else []
    return list(dict.fromkeys(list(cfg.data.spm.user_symbols) + extra))


def _tokenizer(cfg: Config, ckpt: Optional[Dict], dist: Dist) -> Tokenizer:
    """From the checkpoint, from data.spm.model files, or trained on the training data (rank 0)."""
    d = cfg.data
    if ckpt is not None:
        return tokenizer_of(ckpt)
    if d.spm.model:
        tok = Tokenizer.load(d.spm.model, d.spm.tgt_model)
        log.info("sentencepiece: reusing %s%s (%d/%d pieces)", d.spm.model,
                 f" and {d.spm.tgt_model}" if d.spm.tgt_model else "", tok.src_vocab_size, tok.tgt_vocab_size)
        return tok
    protos = None
    if dist.main:  # one model for every rank
        t = Tokenizer.train_on_corpus(d.train, d.src_lang, d.tgt_lang, d.spm.vocab_size, d.spm.model_type,
                                      d.spm.joint, d.spm.character_coverage, d.spm.input_sentence_size,
                                      seed=cfg.train.seed, user_symbols=user_symbols(cfg))
        protos = (t.src_proto, None if t.joint else t.tgt_proto)
    return Tokenizer(*dist.broadcast(protos))


def _training_corpus(cfg: Config, tok: Tokenizer, run_dir: str, dist: Dist, fingerprint: str) -> EncodedCorpus:
    """Encoded once into the cache (by rank 0), memory-mapped by every rank."""
    d = cfg.data
    cache_dir = os.path.abspath(d.cache_dir or os.path.join(run_dir, "cache"))
    cleaning = Cleaning(d.max_len_ratio, d.dedup)
    train = None
    if dist.main:
        try:
            train = encode_cached(d.train, d.src_lang, d.tgt_lang, tok, d.max_len, cache_dir,
                                  threads=torch.get_num_threads(), fingerprint=fingerprint, cleaning=cleaning,
                                  src_prefix=d.src_prefix)
        except OSError as e:
            raise ConfigError(f"data.cache_dir={cache_dir}: cannot write the encoded corpus there "
                              f"({e.strerror or e})") from None
    dist.barrier()
    return train if train is not None else open_cached(d.train, d.src_lang, d.tgt_lang, tok, d.max_len,
                                                       cache_dir, fingerprint=fingerprint, cleaning=cleaning,
                                                       src_prefix=d.src_prefix)


def prepare_data(cfg: Config, ckpt: Optional[Dict], run_dir: str, dist: Dist, resumed_corpus: Optional[str] = None):
    """Check every split exists and reads (valid and test whole: a bad byte there must stop the run
    now, not after training), get the tokenizer, encode; drop bad training pairs only. Writes
    nothing but the run directory, the cache (and the toy corpus where allowed).

    ``resumed_corpus``: the training corpus's content hash stored in the checkpoint being resumed;
    a corpus changed since is refused (the saved data position would point into other data)."""
    d = cfg.data
    if dist.main:
        ensure_generated(d.train, d.valid, d.test, d.generate, d.src_lang, d.tgt_lang)
    dist.barrier()
    for name in ("train", "valid", "test"):
        check_exists(getattr(d, name), name, d.src_lang, d.tgt_lang)
    require(d.train, "train", d.src_lang, d.tgt_lang)
    # read once (the whole corpus), on the first rank
    fingerprint = dist.broadcast(corpus_fingerprint(d.train, d.src_lang, d.tgt_lang) if dist.main else None)
    if resumed_corpus and resumed_corpus != fingerprint:
        raise CorpusError(f"data.train={d.train}: the training files ({resolve(d.train, d.src_lang)}, "
                          f"{resolve(d.train, d.tgt_lang)}) changed since the checkpoint was written (content hash "
                          f"{resumed_corpus} then, {fingerprint} now); resuming would continue at the saved data "
                          f"position over other data. Restore the files, or start a new run from the checkpoint with "
                          f"train.init_from=.../checkpoints/last.pt")
    valid = read_split(d.valid, "valid", d.src_lang, d.tgt_lang)
    if d.test:
        read_split(d.test, "test", d.src_lang, d.tgt_lang)  # read-checked now; translated at the end
    tok = _tokenizer(cfg, ckpt, dist)
    if dist.main:
        tok.save(run_dir)
    train = _training_corpus(cfg, tok, run_dir, dist, fingerprint)
    valid = encode(valid, tok, d.src_prefix)
    shortest = int(np.maximum(train.src_lens, train.tgt_lens).min()) + 1
    if cfg.train.max_tokens < shortest:
        raise CorpusError(f"train.max_tokens={cfg.train.max_tokens} is smaller than the shortest training pair "
                          f"({shortest} pieces with EOS): raise it")
    log.info("data: %d training pairs, %d validation pairs; vocab %d/%d", len(train), len(valid),
             tok.src_vocab_size, tok.tgt_vocab_size)
    return tok, train, valid


def training_shortlist(train: EncodedCorpus, tok: Tokenizer) -> Dict[str, torch.Tensor]:
    """The lexical shortlist saved with every checkpoint (``nmt-translate --shortlist K``): per source
    token its 100 strongest target partners in the training pairs, and the 500 most frequent targets."""
    from ..search.shortlist import MAX_PAIRS, build_shortlist
    t0 = time.time()
    shortlist = build_shortlist(train.src.tokens, train.src.offsets, train.tgt.tokens, train.tgt.offsets,
                                tok.src_vocab_size, tok.tgt_vocab_size, per_token=100, frequent=500)
    log.info("lexical shortlist: built from %d training pairs in %.1f s", min(len(train), MAX_PAIRS),
             time.time() - t0)
    return shortlist


def build_training(cfg: Config, tok: Tokenizer, device, ckpt: Optional[Dict], init: Optional[Dict]):
    """Model, optimizer, LR schedule and train-state dict: restored from ``ckpt`` when resuming,
    weights from ``init`` (fresh optimizer and schedule) when fine-tuning."""
    model = build_model(cfg.encoder, cfg.attention, cfg.decoder, tok.src_vocab_size, tok.tgt_vocab_size).to(device)
    o = cfg.optim
    optimizer = build_optimizer(model.parameters(), o.name, o.lr, o.betas, o.momentum, o.weight_decay)
    scheduler = LRSchedule(optimizer, o.scheduler, o.warmup_steps, o.plateau_metric, o.plateau_factor,
                           o.plateau_patience, o.min_lr, budget_steps=cfg.train.max_steps,
                           budget_minutes=cfg.train.max_minutes)
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
