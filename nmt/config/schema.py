"""The typed schema of every config group: the dataclasses Hydra checks files and overrides against;
each field's ``help`` is what ``nmt-train --help`` prints."""
from __future__ import annotations

from dataclasses import dataclass, field, is_dataclass
from typing import Any, List, Optional, Tuple

from .choices import (
    AttentionKind,
    BridgeKind,
    Cell,
    Device,
    FactorCombine,
    Feed,
    Generate,
    Init,
    OptimizerName,
    PlateauMetric,
    Precision,
    Scheduler,
    SpmType,
    TfSchedule,
)

# decoding defaults, declared below search.SearchOptions (which reads them) so that the config's
# validation and test decoding can share them without importing search
BEAM_SIZE, MAX_LEN_A, MAX_LEN_B = 5, 1.5, 10


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
    # Any: a structured config cannot type "a path or a list of corpus mappings" (OmegaConf has no
    # unions of containers); config.corpora.train_corpora parses and checks it, naming the entry
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
    alignments: Optional[str] = opt(None, "word alignments of the training corpus (Pharaoh: 'i-j' per link, one "
                                          "line per pair) for train.guided_alignment_weight; with several "
                                          "corpora, each corpus's own 'alignments' key")
    src_factors: List[str] = opt([], "source factors: names of word-level streams read from PREFIX.SRC_LANG.NAME "
                                     "beside every split (one value per source word), embedded into the encoder's "
                                     "input, e.g. \"data.src_factors=[case]\"; nmt-translate --src-factors NAME=FILE")
    generate: Optional[Generate] = opt(None, "toy: write the embedded corpus to its default place if absent")
    cache_dir: Optional[str] = opt(None, "where the encoded training corpus is cached (null: RUN_DIR/cache)")
    spm: SpmConfig = group(SpmConfig, "sentencepiece")


@dataclass
class EncoderConfig:
    cell: Cell = opt(Cell.gru, "recurrent cell: rnn | gru | lstm")
    embed_size: int = opt(256, "source embedding size")
    hidden_size: int = opt(256, "hidden units per direction")
    num_layers: int = opt(1, "stacked layers")
    bidirectional: bool = opt(True, "bidirectional layers")
    dropout: float = opt(0.3, "dropout on embeddings and between layers [0, 1)")
    residual: bool = opt(False, "residual connections from layer 2 upward")
    factor_embed_size: int = opt(16, "embedding size of each source factor (data.src_factors) with "
                                     "factor_combine=concat; sum uses embed_size")
    factor_combine: FactorCombine = opt(FactorCombine.concat, "source factor embeddings: concat (after the piece "
                                        "embedding) | sum (added to it)")


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
    softmax_samples: int = opt(0, "train the output layer on a sampled softmax: each batch's target pieces and this "
                                  "many others drawn uniformly (0: the full vocabulary; validation is always full)")
    guided_alignment_weight: float = opt(0.0, "weight of the cross-entropy between attention and data.alignments "
                                              "added to the loss (0: off; e.g. 0.1)")
    guided_alignment_decay_steps: int = opt(0, "the guided alignment weight falls linearly to 0 at this update "
                                               "(0: constant)")
    ema_decay: float = opt(0.0, "exponential moving average of the weights, validated and saved (0: off; e.g. 0.999)")
    valid_every: int = opt(1000, "validate (loss, BLEU) and checkpoint every N updates")
    valid_beam: int = opt(1, "beam size of validation decoding (1: greedy)")
    valid_max_len_a: float = opt(MAX_LEN_A, "validation decoding: max length = a * source length + b")
    valid_max_len_b: int = opt(MAX_LEN_B, "validation decoding: see valid_max_len_a")
    valid_batch_size: int = opt(128, "validation decoding: sentences per batch")
    test_beam: int = opt(BEAM_SIZE, "beam size for translating data.test with best.pt at the end")
    patience: int = opt(10, "validations without BLEU improvement before stopping (0: off)")
    keep_last: int = opt(3, "step_N.pt checkpoints kept beside last.pt and best.pt")
    max_nonfinite: int = opt(5, "stop after this many non-finite updates in a row")
    blowup_factor: float = opt(10.0, "warn when the loss exceeds this multiple of its recent median (0: off)")
    max_blowups: int = opt(20, "stop after this many blown-up updates in a row")
    log_every: int = opt(50, "write one log line every N updates")
    grad_flow_every: int = opt(0, "record gradient flow through time every N updates (0: off)")
    init_from: Optional[str] = opt(None, "fine-tune: start from this checkpoint's weights and sentencepiece")
    precision: Precision = opt(Precision.fp32, "fp32 | bf16 (autocast) | fp16 (autocast with dynamic loss "
                               "scaling, for GPUs without bf16) | auto (bf16 where native)")
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
