"""Typed schemas for every config group, registered in Hydra's ConfigStore.

``configs/train.yaml`` lists ``base_config`` first in its defaults, so every YAML file and every
command-line override is checked against these dataclasses: a misspelt key or a wrong type fails
at start-up with Hydra's own error instead of being ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class SpmConfig:
    model_type: str = "unigram"  # unigram | bpe
    vocab_size: int = 8000
    joint: bool = True  # one model for source and target, or one each
    character_coverage: float = 1.0
    max_sentences: int = 2_000_000  # sentences sampled to train the model


@dataclass
class DataConfig:
    train: Optional[str] = None  # path prefix: PREFIX.{src_lang,tgt_lang}[.gz]
    valid: Optional[str] = None
    test: Optional[str] = None
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    max_len: int = 100  # training pairs longer than this (in pieces) are dropped
    generate: Optional[str] = None  # "toy": write the embedded demo corpus if it is missing
    spm: SpmConfig = field(default_factory=SpmConfig)


@dataclass
class EncoderConfig:
    cell: str = "gru"  # rnn | gru | lstm
    embed_size: int = 256
    hidden_size: int = 256  # per direction
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    residual: bool = False


@dataclass
class AttentionConfig:
    kind: str = "bahdanau"  # none | bahdanau | luong_dot | luong_general
    hidden_size: int = 0  # Bahdanau MLP size; 0 means the decoder's hidden size


@dataclass
class DecoderConfig:
    cell: str = "gru"
    embed_size: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    dropout: float = 0.3
    input_feeding: bool = True
    attentional_size: int = 512  # tanh(W[h; c]) layer; 0 feeds the RNN output straight to the softmax
    tie_embeddings: bool = False
    bridge: str = "last"  # zeros | last | bridge
    init: str = "uniform"  # uniform | xavier | orthogonal
    init_scale: float = 0.1
    forget_bias: float = 1.0


@dataclass
class TeacherForcingConfig:
    schedule: str = "constant"  # constant | linear | exponential | inverse_sigmoid
    start: float = 1.0
    end: float = 0.0
    decay_steps: int = 10_000  # linear: steps from start to end
    k: float = 0.999  # exponential: per-step factor; inverse_sigmoid: the k of Bengio et al.
    feed: str = "argmax"  # argmax | sample: what the model feeds when it does not take the gold token


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | sgd
    lr: float = 5e-4
    betas: tuple = (0.9, 0.999)
    momentum: float = 0.0
    weight_decay: float = 0.0
    scheduler: str = "constant"  # constant | plateau | inverse_sqrt
    warmup_steps: int = 0
    plateau_metric: str = "bleu"  # bleu | loss
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    min_lr: float = 1e-6


@dataclass
class TrainConfig:
    seed: int = 1
    max_steps: int = 0  # 0: no limit
    max_epochs: int = 0  # 0: no limit
    max_minutes: float = 0.0  # wall-clock budget; 0: no limit
    max_tokens: int = 4096  # source or target tokens per batch, padding included
    max_sentences: int = 0  # 0: no limit
    accum_steps: int = 1
    clip_grad_norm: float = 1.0  # 0 disables
    clip_grad_value: float = 0.0  # 0 disables
    label_smoothing: float = 0.0
    valid_every: int = 1000
    valid_beam: int = 1  # 1: greedy
    valid_max_len_a: float = 1.5
    valid_max_len_b: int = 10
    valid_batch_size: int = 128
    patience: int = 10  # validations without BLEU improvement; 0 disables early stopping
    keep_last: int = 3  # step checkpoints kept beside last.pt and best.pt
    max_nonfinite: int = 5  # stop after this many non-finite updates in a row
    log_every: int = 50
    precision: str = "fp32"  # fp32 | bf16 (autocast, fp32 master weights and loss) | auto (bf16 where native)
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    device: str = "auto"  # auto | cpu | cuda
    tensorboard: bool = True
    plots: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    teacher_forcing: TeacherForcingConfig = field(default_factory=TeacherForcingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: Optional[str] = None  # default: Hydra's output folder
    resume: bool = False


# Keys that may differ between a checkpoint's config and the config of a run resuming it.
RESUMABLE_KEYS = {
    "resume", "run_dir",
    "train.max_steps", "train.max_epochs", "train.max_minutes", "train.valid_every",
    "train.patience", "train.keep_last", "train.log_every", "train.max_nonfinite",
    "train.threads", "train.device", "train.tensorboard", "train.plots", "train.valid_beam",
    "train.valid_batch_size", "data.valid", "data.test", "data.generate",
}


def register_configs() -> None:
    ConfigStore.instance().store(name="base_config", node=Config)
