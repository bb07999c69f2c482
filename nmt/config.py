"""Typed schemas for every config group, registered in Hydra's ConfigStore, and their checks.

``configs/train.yaml`` lists ``base_config`` first in its defaults, so every YAML file and every
command-line override is checked against these dataclasses: a misspelt key, a wrong type or a
choice outside an ``Enum`` fails at start-up with Hydra's own error (listing the allowed values).
``validate`` then checks ranges and cross-field constraints, naming the key, before any data is
read. Each field's ``help`` is what ``nmt-train --help`` prints. This module imports no torch.
"""
from __future__ import annotations

import enum
import math
import os
import re
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Iterator, List, Optional, Tuple

from .errors import ConfigError


class Choice(str, enum.Enum):
    """A config choice: compares equal to its string value and prints as it."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


Cell = Choice("Cell", {n: n for n in ("rnn", "gru", "lstm")})
AttentionKind = Choice("AttentionKind", {n: n for n in ("final", "none", "bahdanau", "luong_dot", "luong_general")})
BridgeKind = Choice("BridgeKind", {n: n for n in ("zeros", "last", "bridge")})
Init = Choice("Init", {n: n for n in ("uniform", "xavier", "orthogonal")})
TfSchedule = Choice("TfSchedule", {n: n for n in ("constant", "linear", "exponential", "inverse_sigmoid")})
Feed = Choice("Feed", {n: n for n in ("argmax", "sample")})
OptimizerName = Choice("OptimizerName", {n: n for n in ("adam", "sgd")})
Scheduler = Choice("Scheduler", {n: n for n in ("constant", "plateau", "inverse_sqrt", "linear", "cosine")})
PlateauMetric = Choice("PlateauMetric", {n: n for n in ("bleu", "loss")})
Precision = Choice("Precision", {n: n for n in ("fp32", "bf16", "auto")})
FROM_CHECKPOINT = "checkpoint"  # translating at the precision the model trained with (the default)
INFERENCE_PRECISIONS = (FROM_CHECKPOINT, *(m.value for m in Precision))
Device = Choice("Device", {n: n for n in ("auto", "cpu", "cuda")})
SpmType = Choice("SpmType", {n: n for n in ("unigram", "bpe")})
Generate = Choice("Generate", {"toy": "toy"})


def choose(kind: type, value: Any, key: str) -> Any:
    """``value`` as a member of the choice ``kind``: the check at a boundary that Hydra does not
    guard (a Python API argument, a command-line flag); ConfigError naming ``key`` otherwise."""
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{key}={value!r}: choose one of {', '.join(m.value for m in kind)}") from None


def opt(default: Any, help: str):
    """A dataclass field with a default and the one line ``nmt-train --help`` shows for it."""
    if isinstance(default, (list, dict, tuple)) or is_dataclass(default):
        return field(default_factory=lambda: default, metadata={"help": help})
    return field(default=default, metadata={"help": help})


def group(cls, help: str):
    return field(default_factory=cls, metadata={"help": help})


@dataclass
class SpmConfig:
    model_type: SpmType = opt(SpmType.unigram, "sentencepiece algorithm: unigram | bpe")
    vocab_size: int = opt(8000, "pieces per sentencepiece model")
    joint: bool = opt(True, "one model for source and target (true) or one each")
    character_coverage: float = opt(1.0, "share of characters the model must cover (0, 1]")
    input_sentence_size: int = opt(1_000_000, "sentences sampled from the training corpus to train sentencepiece")
    model: Optional[str] = opt(None, "reuse this sentencepiece model (source, or joint) instead of training one")
    tgt_model: Optional[str] = opt(None, "reuse this target sentencepiece model (with data.spm.model)")
    user_symbols: List[str] = opt([], "pieces sentencepiece keeps whole, e.g. tags: \"['<2en>','<2fr>']\" "
                                      "(data.src_prefix is added by itself)")
    sampling_alpha: float = opt(0.0, "subword regularization: each epoch trains on a fresh sampling of the training "
                                     "corpora's segmentation, P(segmentation) ~ P^alpha among the sampling_nbest best "
                                     "(unigram models; smaller is noisier, e.g. 0.1); 0: off")
    sampling_nbest: int = opt(16, "subword regularization: sample among this many best segmentations (>= 2)")


@dataclass
class DataConfig:
    train: Any = opt(None, "training corpus prefix: reads PREFIX.SRC_LANG and PREFIX.TGT_LANG (.gz ok); or several, "
                           "drawn by weight: \"data.train=[{path: A, weight: 3}, {path: B, src_prefix: '<bt>'}]\"")
    valid: Optional[str] = opt(None, "validation corpus prefix (BLEU, early stopping, best.pt)")
    test: Optional[str] = opt(None, "test corpus prefix, translated with best.pt at the end (null: skip)")
    src_lang: str = opt("src", "source language code (file suffix)")
    tgt_lang: str = opt("tgt", "target language code (file suffix)")
    src_prefix: Optional[str] = opt(None, "a tag put before every source sentence (training, validation, test and "
                                          "translation), kept whole by sentencepiece: e.g. \"data.src_prefix='<2en>'\"")
    max_len: int = opt(100, "training pairs longer than this many pieces are dropped")
    max_len_ratio: float = opt(0.0, "drop training pairs whose longer side has more than this many times the pieces "
                                    "of the shorter (0: off)")
    dedup: bool = opt(False, "drop exact repeats of a training pair (the first is kept)")
    generate: Optional[Generate] = opt(None, "toy: write the embedded corpus to its default place if absent")
    cache_dir: Optional[str] = opt(None, "where the encoded training corpus is cached (null: RUN_DIR/cache)")
    spm: SpmConfig = group(SpmConfig, "sentencepiece")

@dataclass(frozen=True)
class CorpusSpec:
    """One training corpus of ``data.train``: its path prefix, its sampling weight, the tag put before
    its sources (``data.src_prefix`` unless it says otherwise) and the name the log gives it."""
    path: str
    weight: float = 1.0
    src_prefix: Optional[str] = None
    name: str = ""


_CORPUS_KEYS = ("path", "weight", "src_prefix", "name")


def _is_tag(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(value.strip()) and not any(c.isspace() for c in value))


def train_corpora(value: Any, src_prefix: Optional[str] = None) -> List[CorpusSpec]:
    """``data.train`` as corpus specs: a path prefix (one corpus, weight 1) or a list whose items are
    prefixes or ``{path, weight, src_prefix, name}`` maps. ConfigError naming ``data.train[i].KEY``
    for a bad item; [] when no corpus is given."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [CorpusSpec(value, 1.0, src_prefix, _corpus_name(value))]
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"data.train={value!r}: must be a path prefix or a non-empty list of corpora "
                          f"({{path: PREFIX, weight: W}} or PREFIX each)")
    specs = []
    for i, item in enumerate(items):
        key = f"data.train[{i}]"
        item = {"path": item} if isinstance(item, str) else item
        if not isinstance(item, dict):
            raise ConfigError(f"{key}={item!r}: must be a path prefix or {{path: PREFIX, weight: W}}")
        for k in item:
            if k not in _CORPUS_KEYS:
                import difflib
                close = difflib.get_close_matches(str(k), _CORPUS_KEYS, n=1)
                raise ConfigError(f"{key}: unknown key {k!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                                   f"; a corpus has {', '.join(_CORPUS_KEYS)}"))
        path, weight = item.get("path"), item.get("weight", 1.0)
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"{key}.path={path!r}: must be a corpus path prefix (reads PREFIX.SRC_LANG, "
                              f"PREFIX.TGT_LANG)")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight <= 0:
            raise ConfigError(f"{key}.weight={weight!r}: must be a number > 0")
        tag = item.get("src_prefix", src_prefix)
        if not _is_tag(tag):
            raise ConfigError(f"{key}.src_prefix={tag!r}: must be one token without whitespace (or null)")
        name = item.get("name") or _corpus_name(path)
        if not isinstance(name, str):
            raise ConfigError(f"{key}.name={name!r}: must be a string")
        specs.append(CorpusSpec(path, float(weight), tag, name))
    names = [s.name for s in specs]
    return [CorpusSpec(s.path, s.weight, s.src_prefix, s.name if names.count(s.name) == 1 else f"{s.name}#{i + 1}")
            for i, s in enumerate(specs)]


def _corpus_name(path: str) -> str:
    """A corpus's name in the log: its prefix's last part (``data/wmt/news.2019`` -> ``news.2019``)."""
    return os.path.basename(os.path.normpath(path)) or path


@dataclass
class EncoderConfig:
    cell: Cell = opt(Cell.gru, "recurrent cell: rnn | gru | lstm")
    embed_size: int = opt(256, "source embedding size")
    hidden_size: int = opt(256, "hidden units per direction")
    num_layers: int = opt(1, "stacked layers")
    bidirectional: bool = opt(True, "bidirectional layers")
    dropout: float = opt(0.3, "dropout on embeddings and between layers [0, 1)")
    residual: bool = opt(False, "residual connections from layer 2 upward")


@dataclass
class AttentionConfig:
    kind: AttentionKind = opt(AttentionKind.bahdanau,
                              "final (no context) | none (mean context) | bahdanau | luong_dot | luong_general")
    hidden_size: int = opt(0, "Bahdanau MLP size; 0: the decoder's hidden size")


@dataclass
class DecoderConfig:
    cell: Cell = opt(Cell.gru, "recurrent cell: rnn | gru | lstm")
    embed_size: int = opt(256, "target embedding size")
    hidden_size: int = opt(512, "hidden units")
    num_layers: int = opt(1, "stacked layers")
    dropout: float = opt(0.3, "dropout [0, 1)")
    input_feeding: bool = opt(True, "feed the last attentional vector back as input (Luong et al.)")
    attentional_size: int = opt(512, "tanh(W[h; c]) layer size; 0 feeds [h; c] straight to the softmax")
    tie_embeddings: bool = opt(False, "share target embeddings and output layer (sizes must match)")
    bridge: BridgeKind = opt(BridgeKind.last, "initial decoder state: zeros | last (projected) | bridge (+tanh)")
    init: Init = opt(Init.uniform, "parameter initialisation: uniform | xavier | orthogonal")
    init_scale: float = opt(0.1, "uniform init range (-s, s)")
    forget_bias: float = opt(1.0, "LSTM forget-gate bias")


@dataclass
class TeacherForcingConfig:
    schedule: TfSchedule = opt(TfSchedule.constant, "constant | linear | exponential | inverse_sigmoid")
    start: float = opt(1.0, "ratio of gold tokens fed at step 0 [0, 1]")
    end: float = opt(0.0, "ratio the decaying schedules tend to [0, 1]")
    decay_steps: int = opt(10_000, "linear: steps from start to end")
    k: float = opt(0.999, "exponential: per-step factor (0, 1); inverse_sigmoid: k >= 1")
    feed: Feed = opt(Feed.argmax, "what the model feeds instead of the gold token: argmax | sample")


@dataclass
class OptimConfig:
    name: OptimizerName = opt(OptimizerName.adam, "adam | sgd")
    lr: float = opt(5e-4, "learning rate (> 0)")
    betas: Tuple[float, float] = opt((0.9, 0.999), "Adam betas")
    momentum: float = opt(0.0, "SGD momentum")
    weight_decay: float = opt(0.0, "L2 weight decay")
    scheduler: Scheduler = opt(Scheduler.constant, "learning-rate schedule: constant | plateau | inverse_sqrt | "
                               "linear | cosine (to min_lr at the end of train.max_steps or train.max_minutes)")
    warmup_steps: int = opt(0, "linear warm-up steps")
    plateau_metric: PlateauMetric = opt(PlateauMetric.bleu, "plateau: watch valid bleu | loss")
    plateau_factor: float = opt(0.5, "plateau: multiply the rate by this (0, 1)")
    plateau_patience: int = opt(2, "plateau: validations without improvement before decaying")
    min_lr: float = opt(1e-6, "floor of the decayed rate")
    decay_fraction: float = opt(1.0, "linear | cosine: decay over this last part of the budget, constant "
                                "before it (0.2: the last 20 %; 1: all of it)")


@dataclass
class TrainConfig:
    seed: int = opt(1, "seed of every random choice (batches, dropout, init)")
    max_steps: int = opt(0, "stop after this many updates (0: no limit)")
    max_epochs: int = opt(0, "stop after this many epochs (0: no limit)")
    max_minutes: float = opt(0.0, "stop after this wall-clock budget (0: no limit)")
    max_tokens: int = opt(4096, "padded source or target tokens per batch")
    max_sentences: int = opt(0, "sentences per batch (0: no limit)")
    accum_steps: int = opt(1, "batches accumulated into one update")
    clip_grad_norm: float = opt(1.0, "clip the global gradient norm to this (0: off)")
    clip_grad_value: float = opt(0.0, "clip each gradient value to +-this (0: off)")
    label_smoothing: float = opt(0.0, "label smoothing [0, 1)")
    ema_decay: float = opt(0.0, "exponential moving average of the weights, validated and saved (0: off; e.g. 0.999)")
    valid_every: int = opt(1000, "validate (loss, BLEU) and checkpoint every N updates")
    valid_beam: int = opt(1, "beam size of validation decoding (1: greedy)")
    valid_max_len_a: float = opt(1.5, "validation decoding: max length = a * source length + b")
    valid_max_len_b: int = opt(10, "validation decoding: see valid_max_len_a")
    valid_batch_size: int = opt(128, "validation decoding: sentences per batch")
    test_beam: int = opt(5, "beam size for translating data.test with best.pt at the end")
    patience: int = opt(10, "validations without BLEU improvement before stopping (0: off)")
    keep_last: int = opt(3, "step_N.pt checkpoints kept beside last.pt and best.pt")
    max_nonfinite: int = opt(5, "stop after this many non-finite updates in a row")
    blowup_factor: float = opt(10.0, "warn when the loss exceeds this multiple of its recent median (0: off)")
    max_blowups: int = opt(20, "stop after this many blown-up updates in a row")
    log_every: int = opt(50, "write one log line every N updates")
    grad_flow_every: int = opt(0, "record gradient flow through time every N updates (0: off)")
    init_from: Optional[str] = opt(None, "fine-tune: start from this checkpoint's weights and sentencepiece")
    precision: Precision = opt(Precision.fp32, "fp32 | bf16 (autocast) | auto (bf16 where native)")
    threads: int = opt(0, "torch intra-op threads (0: the CPUs this process may use, at most 8)")
    device: Device = opt(Device.auto, "auto | cpu | cuda")
    tensorboard: bool = opt(True, "write TensorBoard events to RUN_DIR/tensorboard")
    plots: bool = opt(True, "draw learning curves to RUN_DIR/plots")


@dataclass
class Config:
    data: DataConfig = group(DataConfig, "corpora and sentencepiece")
    encoder: EncoderConfig = group(EncoderConfig, "encoder")
    attention: AttentionConfig = group(AttentionConfig, "attention")
    decoder: DecoderConfig = group(DecoderConfig, "decoder")
    teacher_forcing: TeacherForcingConfig = group(TeacherForcingConfig, "teacher forcing")
    optim: OptimConfig = group(OptimConfig, "optimizer and learning rate")
    train: TrainConfig = group(TrainConfig, "training loop")
    run_dir: Optional[str] = opt(None, "where checkpoints, logs and plots go (default: outputs/DATE/TIME)")
    resume: bool = opt(False, "continue the run in run_dir exactly where it stopped")


# ---- which settings may differ between two configs: defined here once ----------------------------

# Keys that may differ between a checkpoint's config and the config of a run resuming it: how long
# to train, how often and how to validate, log and save, where the data to validate and test is.
RESUMABLE_KEYS = frozenset({
    "resume", "run_dir",
    "train.max_steps", "train.max_epochs", "train.max_minutes", "train.valid_every",
    "train.patience", "train.keep_last", "train.log_every", "train.max_nonfinite",
    "train.threads", "train.device", "train.tensorboard", "train.plots", "train.valid_beam",
    "train.valid_max_len_a", "train.valid_max_len_b", "train.valid_batch_size", "train.test_beam",
    "train.grad_flow_every", "train.blowup_factor", "train.max_blowups", "data.valid", "data.test",
    "data.generate", "data.cache_dir",
})

# Keys that do not change what a trained model computes (they may differ between checkpoints that
# are averaged or ensembled): everything about training and data, except the model's own settings.
_TRAINING_ONLY = re.compile(r"^(run_dir|resume|train\..*|optim\..*|teacher_forcing\..*"
                            r"|data\.(train|valid|test|generate|max_len|max_len_ratio|dedup|cache_dir)"
                            r"|data\.spm\.(model|tgt_model|input_sentence_size))$")


def affects_model(key: str) -> bool:
    return not _TRAINING_ONLY.match(key)


# Keys that may differ between the processes of one distributed run: where each machine keeps things
# and how it computes (a subset of RESUMABLE_KEYS: a run resumed on other machines may change them).
NODE_LOCAL_KEYS = frozenset({"run_dir", "resume", "data.cache_dir", "train.threads", "train.device"})


def flatten(values: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *path, leaf = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def differences(a: dict, b: dict, compared=lambda key: True) -> List[Tuple[str, Any, Any]]:
    """(key, value in ``a``, value in ``b``) for every ``compared`` key whose value differs, sorted;
    ``a`` and ``b`` are nested plain configs (``to_dict``)."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if compared(k) and fa.get(k) != fb.get(k)]


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="base_config", node=Config)


def iter_fields(cls=Config, prefix: str = "") -> Iterator[Tuple[str, Any, str]]:
    """(dotted key, default, help) of every leaf field, in declaration order."""
    for f in fields(cls):
        key = prefix + f.name
        default = f.default if f.default is not MISSING else f.default_factory()
        if is_dataclass(default):
            yield from iter_fields(type(default), key + ".")
        else:
            yield key, default, f.metadata.get("help", "")


def check_known_keys(values: dict) -> None:
    """Refuse keys the schema does not have (``+train.max_step=10`` adds one past Hydra's checks)."""
    known = {key for key, _, _ in iter_fields()}
    groups = {k.rsplit(".", 1)[0] for k in known if "." in k}

    def walk(d: dict, prefix: str):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and key in groups:
                yield from walk(v, key + ".")
            else:
                yield key

    for key in walk({k: v for k, v in values.items() if k != "hydra"}, ""):
        if key not in known:
            raise unknown_key(key)


def unknown_key(key: str) -> ConfigError:
    """The error for a key the schema does not have, with the closest known key (by the whole
    dotted key, else by its last part) as a suggestion."""
    import difflib
    known = sorted(k for k, _, _ in iter_fields())
    close = difflib.get_close_matches(key, known, n=1)
    if not close:
        leaf = difflib.get_close_matches(key.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in known], n=1)
        close = [k for k in known if leaf and k.rsplit(".", 1)[-1] == leaf[0]][:1]
    return ConfigError(f"unknown config key {key!r}" + (f"; did you mean {close[0]!r}?" if close
                                                        else "; nmt-train --help lists the keys"))


def compose(overrides=(), config_name: str = "train") -> Config:
    """The typed ``Config`` that ``nmt-train OVERRIDES`` runs with (Hydra's compose API over
    ``configs/``), its keys checked; a bad override is a ConfigError in nmt's words."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    register_configs()
    try:
        if GlobalHydra.instance().is_initialized():  # inside nmt-train's Hydra app: its search path
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
        else:
            with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
                cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
        check_known_keys(OmegaConf.to_container(cfg, resolve=False))
        return OmegaConf.to_object(cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise _compose_error(e) from None


def _compose_error(e: Exception) -> ConfigError:
    """Hydra's composition errors, reworded: an unknown key gets nmt's "did you mean", never
    Hydra's advice to add it with ``+`` (which the schema refuses anyway)."""
    parts, cause = [], e
    while cause is not None and len(parts) < 4:
        parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(parts)
    unknown = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    if unknown and ("is not in struct" in text or "To append to your config" in text):
        return unknown_key(unknown.group(1))
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line and line not in lines and not line.startswith(
                ("full_key", "object_type", "reference_type", "Set the environment variable", "Config search path",
                 "provider=")) and "$VALUE" not in line:
            lines.append(line)
    return ConfigError(" ".join(lines) or type(e).__name__)


def from_dict(values: dict) -> Config:
    """A typed ``Config`` from plain values (a checkpoint's), checked like a command line."""
    from omegaconf import OmegaConf
    merged = OmegaConf.merge(OmegaConf.structured(Config), values)
    return OmegaConf.to_object(merged)


def to_dict(cfg: Config) -> dict:
    """Plain JSON-able values (enums as their strings, tuples as lists)."""
    import json
    from dataclasses import asdict
    return json.loads(json.dumps(asdict(cfg)))


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

def validate(cfg: Config) -> None:
    """Every value in range, with the key named; ConfigError on the first that is not."""
    errors: List[Optional[str]] = []

    def check(ok, key, want):
        if not ok:
            section, name = key.split(".", 1) if "." in key else (None, key)
            obj = cfg if section is None else getattr(cfg, section)
            for part in name.split("."):
                obj = getattr(obj, part)
            errors.append(f"{key}={obj!r}: must be {want}")

    for key, value in flatten(to_dict(cfg)).items():
        numbers = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            errors.append(f"{key}={value!r}: must be a finite number")
    d, e, a, dec = cfg.data, cfg.encoder, cfg.attention, cfg.decoder
    tf, o, t = cfg.teacher_forcing, cfg.optim, cfg.train
    check(cfg.run_dir is None or bool(str(cfg.run_dir).strip()), "run_dir",
          "a directory name (leave run_dir out for a new outputs/DATE/TIME folder)")
    check(d.max_len >= 1, "data.max_len", ">= 1")
    check(_is_tag(d.src_prefix), "data.src_prefix", "one token without whitespace (or null)")
    try:
        train_corpora(d.train, d.src_prefix)
    except ConfigError as problem:
        errors.append(str(problem))
    check(all(s and not any(c.isspace() for c in s) for s in d.spm.user_symbols), "data.spm.user_symbols",
          "tokens without whitespace")
    check(d.max_len_ratio == 0 or d.max_len_ratio >= 1, "data.max_len_ratio", "0 (off) or >= 1")
    errors += spm_rules(d.spm)
    check(d.src_lang != d.tgt_lang or d.src_lang == "", "data.tgt_lang", "different from data.src_lang")
    for name, m in (("encoder", e), ("decoder", dec)):
        check(m.embed_size >= 1, f"{name}.embed_size", ">= 1")
        check(m.hidden_size >= 1, f"{name}.hidden_size", ">= 1")
        check(m.num_layers >= 1, f"{name}.num_layers", ">= 1")
        check(0 <= m.dropout < 1, f"{name}.dropout", "in [0, 1)")
    check(a.hidden_size >= 0, "attention.hidden_size", ">= 0")
    check(a.kind != AttentionKind.final or dec.bridge != BridgeKind.zeros, "decoder.bridge",
          "last or bridge with attention=final (the initial state is the decoder's only view of the source)")
    check(dec.attentional_size >= 0, "decoder.attentional_size", ">= 0")
    check(dec.init_scale > 0, "decoder.init_scale", "> 0")
    check(0 <= tf.start <= 1, "teacher_forcing.start", "in [0, 1]")
    check(0 <= tf.end <= 1, "teacher_forcing.end", "in [0, 1]")
    check(tf.decay_steps >= 1, "teacher_forcing.decay_steps", ">= 1")
    errors.append(teacher_forcing_k_rule(tf.schedule, tf.k))
    check(o.lr > 0, "optim.lr", "> 0")
    check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", "two values in [0, 1)")
    check(o.momentum >= 0, "optim.momentum", ">= 0")
    check(o.weight_decay >= 0, "optim.weight_decay", ">= 0")
    check(o.warmup_steps >= 0, "optim.warmup_steps", ">= 0")
    check(0 < o.plateau_factor < 1, "optim.plateau_factor", "in (0, 1)")
    check(o.plateau_patience >= 0, "optim.plateau_patience", ">= 0")
    check(o.min_lr >= 0, "optim.min_lr", ">= 0")
    check(0 < o.decay_fraction <= 1, "optim.decay_fraction", "in (0, 1]")
    check(o.scheduler not in (Scheduler.linear, Scheduler.cosine) or t.max_steps > 0 or t.max_minutes > 0,
          "optim.scheduler", "given a budget to decay over (train.max_steps or train.max_minutes) when linear "
          "or cosine")
    for key in ("max_steps", "max_epochs", "max_sentences", "patience", "keep_last", "threads",
                "grad_flow_every"):
        check(getattr(t, key) >= 0, f"train.{key}", ">= 0")
    for key in ("accum_steps", "valid_every", "valid_beam", "valid_batch_size", "test_beam", "log_every",
                "max_nonfinite", "max_blowups"):
        check(getattr(t, key) >= 1, f"train.{key}", ">= 1")
    check(t.max_minutes >= 0, "train.max_minutes", ">= 0")
    check(t.max_tokens >= 16, "train.max_tokens", ">= 16 (a batch must hold at least one sentence)")
    check(t.clip_grad_norm >= 0, "train.clip_grad_norm", ">= 0 (0 disables clipping)")
    check(t.clip_grad_value >= 0, "train.clip_grad_value", ">= 0 (0 disables clipping)")
    check(0 <= t.label_smoothing < 1, "train.label_smoothing", "in [0, 1)")
    check(0 <= t.ema_decay < 1, "train.ema_decay", "in [0, 1) (0: off)")
    check(t.valid_max_len_a >= 0, "train.valid_max_len_a", ">= 0")
    check(t.valid_max_len_b >= 1, "train.valid_max_len_b", ">= 1")
    check(t.blowup_factor == 0 or t.blowup_factor > 1, "train.blowup_factor", "0 (off) or > 1")
    enc_out = e.hidden_size * (2 if e.bidirectional else 1)
    if a.kind == AttentionKind.luong_dot:
        errors.append(luong_dot_rule(dec.hidden_size, enc_out))
    if dec.tie_embeddings:
        errors.append(tied_embeddings_rule(dec.attentional_size or dec.hidden_size + enc_out, dec.embed_size))
    errors = [problem for problem in errors if problem]
    if errors:
        raise ConfigError("invalid settings: " + "; ".join(errors))


def help_text(groups: dict) -> str:
    """``nmt-train --help``: usage, config groups and their options, every key with its default."""
    lines = [
        "nmt-train: train a recurrent encoder-decoder translation model.",
        "",
        "Usage: nmt-train [GROUP=OPTION ...] [KEY=VALUE ...]   (add -m to sweep: encoder=bigru,bilstm)",
        "       torchrun --nproc_per_node=N -m nmt.cli.train ...   (several processes)",
        "       nmt-train --cfg job [overrides]   (print the resolved config without training)",
        "",
        "Config groups:",
    ]
    for name, options in groups.items():
        lines.append(f"  {name:<16} {' | '.join(options)}")
    lines += ["", "Keys (schema default; experiment files set their own) description:"]
    for key, default, text in iter_fields():
        value = "null" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        lines.append(f"  {key:<32} ({value}) {text}")
    lines += ["", "A run directory gets checkpoints/{best,last,step_N}.pt, train.log, metrics.jsonl, plots/,",
              "tensorboard/ and test/{hyp.txt,scores.json}."]
    return "\n".join(lines)
