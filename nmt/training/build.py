"""What a run is built from: its data and tokenizer, its model, optimizer and LR schedule (fresh,
resumed from ``last.pt``, or initialised from another checkpoint for fine-tuning)."""
from __future__ import annotations

import logging
import os
import time
from typing import Dict, Optional

import numpy as np
import torch

from ..checkpoint import load_checkpoint, tokenizer_of
from ..config import Config
from ..data.corpus import CorpusError
from ..data.dataset import (EncodedCorpus, check_exists, encode, encode_cached, ensure_generated, read_split,
                            require)
from ..data.spm import Tokenizer
from ..errors import ConfigError
from ..models import build_model
from .distributed import Dist
from .schedules import LRSchedule, build_optimizer

log = logging.getLogger("nmt.train")


def check_init_from(cfg: Config) -> Dict:
    """The checkpoint named by ``train.init_from`` (weights and sentencepiece models to start from)."""
    if cfg.data.spm.model:
        raise ConfigError("train.init_from and data.spm.model both name a sentencepiece model: the checkpoint's "
                          "is used for fine-tuning; drop data.spm.model")
    return load_checkpoint(cfg.train.init_from)


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
                                      seed=cfg.train.seed)
        protos = (t.src_proto, None if t.joint else t.tgt_proto)
    return Tokenizer(*dist.broadcast(protos))


def _training_corpus(cfg: Config, tok: Tokenizer, run_dir: str, dist: Dist) -> EncodedCorpus:
    """Encoded once into the cache (by rank 0), memory-mapped by every rank."""
    d = cfg.data
    cache_dir = os.path.abspath(d.cache_dir or os.path.join(run_dir, "cache"))
    train = None
    if dist.main:
        try:
            train = encode_cached(d.train, d.src_lang, d.tgt_lang, tok, d.max_len, cache_dir, build=True,
                                  threads=torch.get_num_threads())
        except OSError as e:
            raise ConfigError(f"data.cache_dir={cache_dir}: cannot write the encoded corpus there "
                              f"({e.strerror or e})") from None
    dist.barrier()
    return train if train is not None else encode_cached(d.train, d.src_lang, d.tgt_lang, tok, d.max_len,
                                                         cache_dir, build=False)


def prepare_data(cfg: Config, ckpt: Optional[Dict], run_dir: str, dist: Dist):
    """Check every split exists, get the tokenizer, encode; drop bad training pairs only. Writes
    nothing but the run directory, the cache (and the toy corpus where allowed)."""
    d = cfg.data
    if dist.main:
        ensure_generated(d.train, d.valid, d.test, d.generate, d.src_lang, d.tgt_lang)
    dist.barrier()
    for name in ("train", "valid", "test"):
        check_exists(getattr(d, name), name, d.src_lang, d.tgt_lang)
    require(d.train, "train", d.src_lang, d.tgt_lang)
    valid = read_split(d.valid, "valid", d.src_lang, d.tgt_lang)
    tok = _tokenizer(cfg, ckpt, dist)
    if dist.main:
        tok.save(run_dir)
    train = _training_corpus(cfg, tok, run_dir, dist)
    valid = encode(valid, tok)
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


def _load_matching(model: torch.nn.Module, state: Dict, source: str) -> None:
    """Load ``state`` into ``model``, refusing (with the key named) any missing, extra or reshaped key."""
    own = model.state_dict()
    for key in own:
        if key not in state:
            raise ConfigError(f"{source}: the checkpoint has no parameter {key!r}; the model settings must match "
                              f"the checkpoint's")
        if state[key].shape != own[key].shape:
            raise ConfigError(f"{source}: parameter {key!r} is {tuple(state[key].shape)} in the checkpoint but "
                              f"{tuple(own[key].shape)} in this model; the model settings must match the checkpoint's")
    extra = sorted(set(state) - set(own))
    if extra:
        raise ConfigError(f"{source}: the checkpoint's parameter {extra[0]!r} has no place in this model; the model "
                          f"settings must match the checkpoint's")
    model.load_state_dict(state)


def build_training(cfg: Config, tok: Tokenizer, device, ckpt: Optional[Dict], init: Optional[Dict]):
    """Model, optimizer, LR schedule and train-state dict: restored from ``ckpt`` when resuming,
    weights from ``init`` (fresh optimizer and schedule) when fine-tuning."""
    model = build_model(cfg.encoder, cfg.attention, cfg.decoder, tok.src_vocab_size, tok.tgt_vocab_size).to(device)
    o = cfg.optim
    optimizer = build_optimizer(model.parameters(), o.name, o.lr, o.betas, o.momentum, o.weight_decay)
    scheduler = LRSchedule(optimizer, o.scheduler, o.warmup_steps, o.plateau_metric, o.plateau_factor,
                           o.plateau_patience, o.min_lr)
    state = None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["train_state"]
    elif init is not None:
        _load_matching(model, init["model"], f"train.init_from={cfg.train.init_from}")
        log.info("fine-tuning: weights from %s, fresh optimizer and schedule", cfg.train.init_from)
    scheduler.step_update(state["step"] if state else 0)
    return model, optimizer, scheduler, state
