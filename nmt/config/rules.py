"""Range and cross-field checks (``validate``), all before any data is read; each cross-field rule
stated once and used by ``validate`` and by the constructor that depends on it."""
from __future__ import annotations

import math
from typing import List, Optional

from ..errors import ConfigError
from .choices import AttentionKind, BridgeKind, Scheduler, SpmType, TfSchedule
from .compose import to_dict
from .corpora import is_tag, train_corpora
from .keys import flatten
from .schema import Config, SpmConfig

# ---- cross-field rules: each stated once, checked by ``validate`` before any data is read and by
# the constructor that depends on it (a model built from Python gets the same message) -------------

def luong_dot_rule(decoder_hidden: int, encoder_output: int) -> Optional[str]:
    if decoder_hidden != encoder_output:
        return (f"decoder.hidden_size={decoder_hidden}: must be equal to the encoder output size "
                f"({encoder_output}) with attention=luong_dot (or use luong_general)")
    return None


def tied_embeddings_rule(output_size: int, embed_size: int) -> Optional[str]:
    if output_size != embed_size:
        return (f"decoder.embed_size={embed_size}: must be equal to the attentional size ({output_size}) "
                f"with decoder.tie_embeddings=true")
    return None


def teacher_forcing_k_rule(schedule: TfSchedule, k: float) -> Optional[str]:
    if schedule == TfSchedule.exponential and not 0 < k < 1:
        return f"teacher_forcing.k={k}: must be in (0, 1) for the exponential schedule"
    if schedule == TfSchedule.inverse_sigmoid and k < 1:
        return f"teacher_forcing.k={k}: must be >= 1 for the inverse_sigmoid schedule"
    return None


def spm_rules(spm: SpmConfig) -> List[Optional[str]]:
    """The problems of ``data.spm`` (None where a rule holds)."""
    rules = [(spm.vocab_size >= 8, "vocab_size", ">= 8"),
             (0 < spm.character_coverage <= 1, "character_coverage", "in (0, 1]"),
             (spm.input_sentence_size >= 1, "input_sentence_size", ">= 1"),
             (spm.tgt_model is None or spm.model is not None, "tgt_model", "given with data.spm.model"),
             (spm.sampling_alpha >= 0, "sampling_alpha", ">= 0 (0: off)"),
             (not spm.sampling_alpha or spm.model or spm.model_type == SpmType.unigram, "sampling_alpha",
              f"0 with model_type={spm.model_type} (subword sampling needs a unigram model)"),
             (spm.sampling_nbest >= 2, "sampling_nbest", ">= 2")]
    return [None if ok else f"data.spm.{key}={getattr(spm, key)!r}: must be {want}" for ok, key, want in rules]


def require(problem: Optional[str]) -> None:
    """Raise a rule's problem, if any, as a ConfigError."""
    if problem:
        raise ConfigError(problem)


# ---- range and cross-field checks, all before any data is read ----------------------------------

class _Problems:
    """The problems found so far, each naming its key and value."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.found: List[str] = []

    def check(self, ok: bool, key: str, want: str) -> None:
        if not ok:
            obj = self.cfg
            for part in key.split("."):
                obj = getattr(obj, part)
            self.found.append(f"{key}={obj!r}: must be {want}")

    def add(self, *problems: Optional[str]) -> None:
        self.found.extend(p for p in problems if p)


def _check_data(p: _Problems, cfg: Config) -> None:
    d = cfg.data
    p.check(cfg.run_dir is None or bool(str(cfg.run_dir).strip()), "run_dir",
            "a directory name (leave run_dir out for a new outputs/DATE/TIME folder)")
    p.check(d.max_len >= 1, "data.max_len", ">= 1")
    p.check(is_tag(d.src_prefix), "data.src_prefix", "one token without whitespace (or null)")
    try:
        aligned = any(spec.alignments for spec in train_corpora(d.train, d.src_prefix, d.alignments))
    except ConfigError as problem:
        p.add(str(problem))
    else:
        _check_guided_alignment(p, cfg, aligned)
    p.check(all(s and not any(c.isspace() for c in s) for s in d.spm.user_symbols), "data.spm.user_symbols",
            "tokens without whitespace")
    p.check(d.max_len_ratio == 0 or d.max_len_ratio >= 1, "data.max_len_ratio", "0 (off) or >= 1")
    p.check(all(isinstance(n, str) and n.strip() and not any(c.isspace() or c in "/\\" for c in n)
                for n in d.src_factors) and len(set(d.src_factors)) == len(d.src_factors), "data.src_factors",
            "distinct factor names without whitespace or slashes (each read from PREFIX.SRC_LANG.NAME)")
    p.add(*spm_rules(d.spm))
    p.check(d.src_lang != d.tgt_lang or d.src_lang == "", "data.tgt_lang", "different from data.src_lang")


def _check_guided_alignment(p: _Problems, cfg: Config, aligned: bool) -> None:
    """Alignments and a guided alignment weight come together, over an attention that has weights."""
    t = cfg.train
    p.check(t.guided_alignment_weight >= 0, "train.guided_alignment_weight", ">= 0 (0: off)")
    p.check(t.guided_alignment_decay_steps >= 0, "train.guided_alignment_decay_steps", ">= 0 (0: constant)")
    if t.guided_alignment_weight > 0 and not aligned:
        p.add(f"train.guided_alignment_weight={t.guided_alignment_weight:g}: needs word alignments of the training "
              f"data (data.alignments=FILE, or an 'alignments' key per corpus in data.train)")
    if aligned and t.guided_alignment_weight <= 0:
        p.add("data.alignments: the alignments guide attention only with train.guided_alignment_weight > 0 "
              "(e.g. 0.1); set it, or drop the alignments")
    if t.guided_alignment_weight > 0 and cfg.attention.kind in (AttentionKind.final, AttentionKind.none):
        kind = AttentionKind(cfg.attention.kind).value
        p.add(f"train.guided_alignment_weight with attention={kind}: that attention has no weights over the "
              f"source to guide; use bahdanau, luong_dot or luong_general")


def _check_model(p: _Problems, cfg: Config) -> None:
    e, a, dec, tf = cfg.encoder, cfg.attention, cfg.decoder, cfg.teacher_forcing
    for name, m in (("encoder", e), ("decoder", dec)):
        p.check(m.embed_size >= 1, f"{name}.embed_size", ">= 1")
        p.check(m.hidden_size >= 1, f"{name}.hidden_size", ">= 1")
        p.check(m.num_layers >= 1, f"{name}.num_layers", ">= 1")
        p.check(0 <= m.dropout < 1, f"{name}.dropout", "in [0, 1)")
    p.check(e.factor_embed_size >= 1, "encoder.factor_embed_size", ">= 1")
    p.check(a.hidden_size >= 0, "attention.hidden_size", ">= 0")
    p.check(a.kind != AttentionKind.final or dec.bridge != BridgeKind.zeros, "decoder.bridge",
            "last or bridge with attention=final (the initial state is the decoder's only view of the source)")
    p.check(dec.attentional_size >= 0, "decoder.attentional_size", ">= 0")
    p.check(dec.init_scale > 0, "decoder.init_scale", "> 0")
    p.check(0 <= tf.start <= 1, "teacher_forcing.start", "in [0, 1]")
    p.check(0 <= tf.end <= 1, "teacher_forcing.end", "in [0, 1]")
    p.check(tf.decay_steps >= 1, "teacher_forcing.decay_steps", ">= 1")
    p.add(teacher_forcing_k_rule(tf.schedule, tf.k))
    enc_out = e.hidden_size * (2 if e.bidirectional else 1)
    if a.kind == AttentionKind.luong_dot:
        p.add(luong_dot_rule(dec.hidden_size, enc_out))
    if dec.tie_embeddings:
        p.add(tied_embeddings_rule(dec.attentional_size or dec.hidden_size + enc_out, dec.embed_size))


def _check_optim(p: _Problems, cfg: Config) -> None:
    o, t = cfg.optim, cfg.train
    p.check(o.lr > 0, "optim.lr", "> 0")
    p.check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", "two values in [0, 1)")
    p.check(o.momentum >= 0, "optim.momentum", ">= 0")
    p.check(o.weight_decay >= 0, "optim.weight_decay", ">= 0")
    p.check(o.warmup_steps >= 0, "optim.warmup_steps", ">= 0")
    p.check(0 < o.plateau_factor < 1, "optim.plateau_factor", "in (0, 1)")
    p.check(o.plateau_patience >= 0, "optim.plateau_patience", ">= 0")
    p.check(o.min_lr >= 0, "optim.min_lr", ">= 0")
    p.check(0 < o.decay_fraction <= 1, "optim.decay_fraction", "in (0, 1]")
    p.check(o.scheduler not in (Scheduler.linear, Scheduler.cosine) or t.max_steps > 0 or t.max_minutes > 0,
            "optim.scheduler", "given a budget to decay over (train.max_steps or train.max_minutes) when linear "
            "or cosine")


def _check_train(p: _Problems, cfg: Config) -> None:
    t = cfg.train
    for key in ("max_steps", "max_epochs", "max_sentences", "patience", "keep_last", "threads",
                "grad_flow_every", "softmax_samples"):
        p.check(getattr(t, key) >= 0, f"train.{key}", ">= 0")
    for key in ("accum_steps", "valid_every", "valid_beam", "valid_batch_size", "test_beam", "log_every",
                "max_nonfinite", "max_blowups"):
        p.check(getattr(t, key) >= 1, f"train.{key}", ">= 1")
    p.check(t.max_minutes >= 0, "train.max_minutes", ">= 0")
    p.check(t.max_tokens >= 16, "train.max_tokens", ">= 16 (a batch must hold at least one sentence)")
    p.check(t.clip_grad_norm >= 0, "train.clip_grad_norm", ">= 0 (0 disables clipping)")
    p.check(t.clip_grad_value >= 0, "train.clip_grad_value", ">= 0 (0 disables clipping)")
    p.check(0 <= t.label_smoothing < 1, "train.label_smoothing", "in [0, 1)")
    p.check(0 <= t.ema_decay < 1, "train.ema_decay", "in [0, 1) (0: off)")
    p.check(t.valid_max_len_a >= 0, "train.valid_max_len_a", ">= 0")
    p.check(t.valid_max_len_b >= 1, "train.valid_max_len_b", ">= 1")
    p.check(t.blowup_factor == 0 or t.blowup_factor > 1, "train.blowup_factor", "0 (off) or > 1")


def validate(cfg: Config) -> None:
    """Every value in range, with the key named; one ConfigError listing every problem found."""
    p = _Problems(cfg)
    for key, value in flatten(to_dict(cfg)).items():
        numbers = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            p.add(f"{key}={value!r}: must be a finite number")
    for section in (_check_data, _check_model, _check_optim, _check_train):
        section(p, cfg)
    if p.found:
        raise ConfigError("invalid settings: " + "; ".join(p.found))
