"""Checks made before a training run writes anything (Hydra's ``.hydra/``, ``train.log``, the
lock): every value in range, a model that fits in memory, a run directory that may be used as
asked. ``nmt-train`` runs them before Hydra starts; ``fit`` runs them again for the Python API and
for every process of a distributed run."""
from __future__ import annotations

import os
from typing import Optional, Sequence

from ..config import Config, compose, flatten, from_dict, to_dict, unflatten, validate
from ..errors import ConfigError
from ..resources import available_memory, gib
from ..runpaths import RunPaths
from .rundir import RunDirError, RunLock, check_is_run_or_empty, check_writable, nothing_to_resume


def estimate_memory(cfg: Config) -> tuple:
    """(bytes, parameters): a lower bound of what one training update holds: fp32 weights, their
    gradients and two optimizer moments (16 bytes per parameter), and the activations of a batch of
    ``train.max_tokens`` tokens (the output layer's logits and the recurrent layers' states). The
    model is built on torch's meta device: nothing is allocated."""
    import torch

    from ..models import build_model
    vocab = cfg.data.spm.vocab_size
    with torch.device("meta"):
        model = build_model(cfg.encoder, cfg.attention, cfg.decoder, vocab, vocab)
    params = sum(p.numel() for p in model.parameters())
    e, d = cfg.encoder, cfg.decoder
    per_token = (3 * vocab + 8 * e.hidden_size * (2 if e.bidirectional else 1) * e.num_layers
                 + 8 * d.hidden_size * d.num_layers + 2 * d.attentional_size)
    return 16 * params + 4 * per_token * cfg.train.max_tokens, params


def check_memory(cfg: Config, available: Optional[int] = None) -> None:
    """Refuse a model (and batch) that cannot fit in this machine's memory, naming the keys."""
    need, params = estimate_memory(cfg)
    available = available_memory() if available is None else available
    if need > available:
        sizes = {"encoder.hidden_size": cfg.encoder.hidden_size, "encoder.embed_size": cfg.encoder.embed_size,
                 "encoder.num_layers": cfg.encoder.num_layers, "decoder.hidden_size": cfg.decoder.hidden_size,
                 "decoder.embed_size": cfg.decoder.embed_size, "decoder.num_layers": cfg.decoder.num_layers,
                 "decoder.attentional_size": cfg.decoder.attentional_size,
                 "data.spm.vocab_size": cfg.data.spm.vocab_size, "train.max_tokens": cfg.train.max_tokens}
        listed = ", ".join(f"{k}={v}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]))
        raise ConfigError(f"the model does not fit in memory: {params:,} parameters need at least {gib(need)} to "
                          f"train (weights, gradients, optimizer state and one batch's activations) but "
                          f"{gib(available)} is available; lower the sizes, largest first: {listed}")


def check_run_dir(run_dir: str, resume: bool, ignored=()) -> None:
    """``run_dir`` may be used: writable, not locked by a live training, new, empty or an nmt run,
    and holding a run exactly when ``resume`` says it should."""
    check_writable(run_dir)
    RunLock(run_dir).check_free()  # a live training first: "in use" says more than "holds a run"
    check_is_run_or_empty(run_dir, ignored)
    last = RunPaths(run_dir).last
    if resume and not os.path.exists(last):
        raise nothing_to_resume(last)
    if not resume and os.path.exists(last):
        raise RunDirError(f"{run_dir} already holds a training run (checkpoints/last.pt); pass resume=true to "
                          f"continue it or choose another run_dir")


def preflight(cfg: Config, run_dir: str, run_dir_checks: bool = True, ignored=()) -> None:
    """All of the above; ``run_dir_checks=False`` on the other processes of a distributed run (the
    first one checks, then takes the lock); ``ignored``: see ``check_is_run_or_empty``."""
    validate(cfg)
    check_memory(cfg)
    if run_dir_checks:
        check_run_dir(run_dir, cfg.resume, ignored)
    else:
        check_writable(run_dir)


def resumed_config(cfg: Config, overrides: Sequence[str], config_name: str = "train") -> Config:
    """``resume=true``: the run's own config (from ``checkpoints/last.pt``) with only what
    ``overrides`` change applied, so ``nmt-train run_dir=RUN resume=true train.max_steps=800`` needs
    none of the original overrides repeated. What the overrides change is what they change against
    the defaults (``compose`` without them); keys that may not change on resume are refused later,
    with their names, as before. Any other ``cfg`` comes back as it is."""
    if not cfg.resume or not cfg.run_dir:
        return cfg
    path = RunPaths(cfg.run_dir).last
    if not os.path.exists(path):
        return cfg
    from ..checkpoint import CheckpointError, load_checkpoint
    try:
        saved = flatten(load_checkpoint(path)["config"])
    except CheckpointError:
        return cfg  # reported when the run resumes, with the previous good checkpoints named
    base = flatten(to_dict(compose([o for o in overrides if o.split("=", 1)[0].lstrip("+~") in ("run_dir", "resume")],
                                 config_name)))
    given = flatten(to_dict(cfg))
    merged = dict(saved)
    merged.update({k: v for k, v in given.items() if v != base.get(k) or k not in saved})
    merged.update(run_dir=cfg.run_dir, resume=True)
    return from_dict(unflatten(merged))
