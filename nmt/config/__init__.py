"""The configuration: typed schemas for every config group, registered in Hydra's ConfigStore, and
their checks. This package imports no torch.

``configs/train.yaml`` lists ``base_config`` first in its defaults, so every YAML file and every
command-line override is checked against these dataclasses: a misspelt key, a wrong type or a
choice outside an ``Enum`` fails at start-up with Hydra's own error (listing the allowed values).
``validate`` then checks ranges and cross-field constraints, naming the key, before any data is
read. Each field's ``help`` is what ``nmt-train --help`` prints. One module per job:

    choices.py   Choice Enums and ``choose``
    schema.py    the dataclasses of every group (``Config`` holds them)
    corpora.py   ``data.train``: one path, or weighted, tagged, named corpora
    keys.py      which keys may differ on resume, between ranks, between averaged checkpoints
    compose.py   Hydra composition, unknown keys, plain values to and from ``Config``
    rules.py     cross-field rules and ``validate``
    help.py      ``nmt-train --help``
    inference.py ``InferenceSettings``: how a trained model is loaded and run for translation
"""
from .choices import (
    FROM_CHECKPOINT,
    INFERENCE_PRECISIONS,
    AttentionKind,
    BridgeKind,
    Cell,
    Choice,
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
    choose,
)
from .compose import check_known_keys, compose, from_dict, iter_fields, register_configs, to_dict, unknown_key
from .corpora import CorpusSpec, is_tag, train_corpora
from .help import help_text
from .inference import InferenceSettings
from .keys import NODE_LOCAL_KEYS, RESUMABLE_KEYS, affects_model, differences, flatten, unflatten
from .rules import luong_dot_rule, require, spm_rules, teacher_forcing_k_rule, tied_embeddings_rule, validate
from .schema import (
    BEAM_SIZE,
    MAX_LEN_A,
    MAX_LEN_B,
    AttentionConfig,
    Config,
    DataConfig,
    DecoderConfig,
    EncoderConfig,
    OptimConfig,
    SpmConfig,
    TeacherForcingConfig,
    TrainConfig,
    group,
    opt,
)

__all__ = [
    "InferenceSettings",
    "BEAM_SIZE",
    "MAX_LEN_A",
    "MAX_LEN_B",
    "AttentionConfig",
    "AttentionKind",
    "BridgeKind",
    "FactorCombine",
    "Cell",
    "Choice",
    "Config",
    "CorpusSpec",
    "DataConfig",
    "DecoderConfig",
    "Device",
    "EncoderConfig",
    "FROM_CHECKPOINT",
    "Feed",
    "Generate",
    "INFERENCE_PRECISIONS",
    "Init",
    "NODE_LOCAL_KEYS",
    "OptimConfig",
    "OptimizerName",
    "PlateauMetric",
    "Precision",
    "RESUMABLE_KEYS",
    "Scheduler",
    "SpmConfig",
    "SpmType",
    "TeacherForcingConfig",
    "TfSchedule",
    "TrainConfig",
    "affects_model",
    "check_known_keys",
    "choose",
    "compose",
    "differences",
    "flatten",
    "from_dict",
    "group",
    "help_text",
    "is_tag",
    "iter_fields",
    "luong_dot_rule",
    "opt",
    "register_configs",
    "require",
    "spm_rules",
    "teacher_forcing_k_rule",
    "tied_embeddings_rule",
    "to_dict",
    "train_corpora",
    "unflatten",
    "unknown_key",
    "validate",
]
