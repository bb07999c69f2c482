"""Which settings may differ between two configs, defined here once, and the flat key view
(``flatten``, ``differences``) they are applied to."""
from __future__ import annotations

import re
from typing import Any, List, Tuple

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
                            r"|data\.(train|valid|test|generate|max_len|max_len_ratio|dedup|cache_dir|alignments)"
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
