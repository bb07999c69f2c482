"""Checkpoints: the one module that knows their layout. Written atomically, loaded without
executing pickled code.

A checkpoint is a dict of tensors and plain values:

    format       "nmt-checkpoint-v1"
    model        the state dict (fp32)
    config       the full resolved config, plain values (``nmt.config.to_dict``)
    spm          {"src": uint8 tensor, "tgt": uint8 tensor or None (joint)}: sentencepiece protos;
                 "factors": [{"name", "values"}] with source factors: each factor's vocabulary
    shortlist    {"table": (src_vocab, k) int tensor, "frequent": (n,) int tensor}: the lexical shortlist
                 built from the training data (``nmt.search.shortlist``); absent in older checkpoints
    torch_version
  training checkpoints (resumable) add
    optimizer, scheduler, train_state, rng
    train_model  with train.ema_decay: the raw training weights (``model`` holds the averaged ones,
                 which validation, best.pt and every tool use)
    scaler       with train.precision=fp16: the loss scaler's state (its scale and growth count)
  averaged checkpoints (not resumable) add
    averaged_from  the paths averaged

so that a checkpoint alone translates, and a training checkpoint resumes exactly.
"""
from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
import zipfile
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import torch

from .config import Config, affects_model, differences, from_dict
from .data.factors import FactorVocab
from .data.spm import Tokenizer
from .errors import NmtError
from .models import build_model
from .outputs import atomic_output, fsync_dir
from .runpaths import RunPaths

FORMAT = "nmt-checkpoint-v1"
TRAINING_KEYS = ("optimizer", "scheduler", "train_state", "rng")


class CheckpointError(NmtError):
    """A checkpoint that cannot be used or written; the message names the file."""


# ---- atomic writing ------------------------------------------------------------------------------

def _write_error(path: str, e: OSError) -> CheckpointError:
    what = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return CheckpointError(f"could not write {path}: {what}; the previous checkpoints in "
                           f"{os.path.dirname(os.path.abspath(path))} are intact")


def atomic_save(obj: Dict, path: str) -> None:
    """``torch.save`` through ``atomic_output``: ``path`` is always whole. A failed write (full disk,
    ...) leaves ``path`` as it was and raises CheckpointError."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_output(path, "wb") as f:
            torch.save(obj, f)
    except OSError as e:
        raise _write_error(path, e) from None


def atomic_link(src: str, dst: str) -> None:
    """Make ``dst`` another name of ``src``'s current content (hard link, else copy), atomically."""
    tmp = f"{dst}.tmp.{os.getpid()}"
    try:
        if os.path.exists(tmp):
            os.remove(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise _write_error(dst, e) from None
    fsync_dir(os.path.dirname(os.path.abspath(dst)))


# ---- reading -------------------------------------------------------------------------------------

def resolve_path(path: str) -> str:
    """A checkpoint file, or a run directory (its ``checkpoints/best.pt``, as Sockeye and JoeyNMT do)."""
    if os.path.isdir(path):
        best = RunPaths(path).best
        if not os.path.isfile(best):
            raise CheckpointError(f"{path} is a directory without checkpoints/best.pt; give a checkpoint file")
        return best
    return path


def load_checkpoint(path: str) -> Dict:
    """The checkpoint's dict, loaded with ``weights_only=True``: tensors and plain values only."""
    path = resolve_path(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted, or not a checkpoint "
                              f"at all: no torch.save archive)")
    check_integrity(path)
    try:
        # memory-mapped: what a caller never touches (a resume reading only the config, the optimizer
        # state of a checkpoint loaded to translate) is never read from disk
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        lines = [l.strip() for l in str(e).splitlines() if "Unsupported" in l or "global" in l.lower()]
        if not lines:
            raise CheckpointError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0]})") from None
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects other than tensors and plain "
            f"values, which could run arbitrary code ({lines[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted): {e}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nmt checkpoint (missing format tag {FORMAT!r})")
    for key in ("model", "config", "spm"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: incomplete checkpoint, no {key!r} entry")
    return ckpt


_VERIFIED: set = set()  # (device, inode, size, mtime) of files whose checksums matched in this process


def check_integrity(path: str) -> None:
    """Every record of the archive (each tensor's storage, the pickled structure) matches the CRC-32
    checksum written beside it when it was saved: a file damaged after it was written (a bad disk,
    a copy cut short and padded, bytes zeroed) is refused instead of translating to garbage.
    Reading every byte once costs ~1 s per GB, so a file version is verified once per process
    (a resume and a server read their checkpoint more than once)."""
    st = os.stat(path)
    version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if version in _VERIFIED:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted): {e}") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted: the content of {bad!r} does not match the checksum written "
                              f"when it was saved (the file was damaged since); use another checkpoint")
    _VERIFIED.add(version)


def first_nonfinite(value, where: str = "") -> Optional[str]:
    """The name (``a.b[2]``) of the first floating tensor holding NaN or infinity in ``value``, a
    tensor or nested dicts and lists of them (a state dict, an optimizer's state); None if none."""
    if isinstance(value, torch.Tensor):
        return where if value.is_floating_point() and not bool(torch.isfinite(value).all()) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for k, v in items:
        found = first_nonfinite(v, f"{where}[{k}]" if isinstance(k, int) else f"{where}.{k}" if where else str(k))
        if found is not None:
            return found
    return None


def is_resumable(ckpt: Dict) -> bool:
    return all(k in ckpt for k in TRAINING_KEYS)


def spm_to_tensor(proto: Optional[bytes]) -> Optional[torch.Tensor]:
    return None if proto is None else torch.frombuffer(bytearray(proto), dtype=torch.uint8).clone()


def tensor_to_spm(t: Optional[torch.Tensor]) -> Optional[bytes]:
    return None if t is None else bytes(t.numpy().tobytes())


def spm_entry(tok: Tokenizer) -> Dict:
    entry = {"src": spm_to_tensor(tok.src_proto), "tgt": None if tok.joint else spm_to_tensor(tok.tgt_proto)}
    return {**entry, "factors": [f.to_dict() for f in tok.factors]} if tok.factors else entry


def tokenizer_of(ckpt: Dict) -> Tokenizer:
    src = tensor_to_spm(ckpt["spm"]["src"])
    if src is None:
        raise CheckpointError("the checkpoint holds no source sentencepiece model")
    return Tokenizer(src, tensor_to_spm(ckpt["spm"].get("tgt")),
                     [FactorVocab.from_dict(f) for f in ckpt["spm"].get("factors", [])])


def config_of(ckpt: Dict, path: str = "checkpoint") -> Config:
    try:
        return from_dict(ckpt["config"])
    except Exception as e:  # omegaconf's validation errors have no common base class
        raise CheckpointError(f"{path}: its config does not fit this version of nmt: {e}") from None


class Loaded(NamedTuple):
    model: torch.nn.Module  # in eval mode
    tokenizer: Tokenizer
    config: Config
    paths: Tuple[str, ...]  # the checkpoint files read (several for an ensemble)
    shortlist: Optional[Dict[str, torch.Tensor]] = None  # the lexical shortlist, where the checkpoint has one


def load_model(path: str, device="cpu") -> Loaded:
    """The model (eval mode, on ``device``), its tokenizer and typed config, from a checkpoint
    file or a run directory."""
    path = resolve_path(path)
    ckpt = load_checkpoint(path)
    cfg = config_of(ckpt, path)
    tok = tokenizer_of(ckpt)
    model = build_model(cfg.encoder, cfg.attention, cfg.decoder, tok.src_vocab_size, tok.tgt_vocab_size,
                        src_factor_sizes=tok.factor_sizes)
    load_weights(model, ckpt["model"], path)
    return Loaded(model.to(device).eval(), tok, cfg, (path,), ckpt.get("shortlist"))


def load_weights(model: torch.nn.Module, state: Dict, source: str) -> None:
    """Load ``state`` into ``model``, refusing (with the key named) any missing, extra or reshaped
    parameter, and any parameter holding NaN or infinity: such a model translates to garbage."""
    own = model.state_dict()
    for key in own:
        if key not in state:
            raise CheckpointError(f"{source}: the checkpoint has no parameter {key!r}, which the model its settings "
                                  f"describe needs: the weights and the model settings disagree")
        if not isinstance(state[key], torch.Tensor) or state[key].shape != own[key].shape:
            shape = tuple(state[key].shape) if isinstance(state[key], torch.Tensor) else type(state[key]).__name__
            raise CheckpointError(f"{source}: parameter {key!r} is {shape} in the checkpoint but "
                                  f"{tuple(own[key].shape)} in this model (built from the settings)")
    extra = sorted(set(state) - set(own))
    if extra:
        raise CheckpointError(f"{source}: the checkpoint's parameter {extra[0]!r} has no place in the model its "
                              f"settings describe")
    bad = first_nonfinite(state)
    if bad is not None:
        raise CheckpointError(f"{source}: parameter {bad!r} holds NaN or infinite values; the checkpoint is "
                              f"unusable (an earlier checkpoint of the run may be intact)")
    model.load_state_dict(state)


def load_models(paths: Sequence[str], device="cpu") -> Loaded:
    """What every inference entry point loads (``nmt-translate``, ``nmt-serve``, ``nmt.load``): one
    checkpoint as ``load_model`` does, or several as an ``Ensemble`` with the shared tokenizer, the
    first one's config, every path and no shortlist. Ensemble members must share their
    sentencepiece models (the same source and target vocabulary)."""
    from .models.ensemble import Ensemble
    if len(paths) == 1:
        return load_model(paths[0], device)
    loaded = [load_model(p, device) for p in paths]
    first = loaded[0]
    for other in loaded[1:]:
        for side, a, b in (("target", first.tokenizer.tgt_proto, other.tokenizer.tgt_proto),
                           ("source", first.tokenizer.src_proto, other.tokenizer.src_proto)):
            if a != b:
                raise CheckpointError(f"{other.paths[0]}: its {side} vocabulary (sentencepiece model) differs from "
                                      f"{first.paths[0]}'s; ensemble members must share it")
        if first.tokenizer.factors != other.tokenizer.factors:
            raise CheckpointError(f"{other.paths[0]}: its source factors ({_factor_names(other.tokenizer)}) or their "
                                  f"values differ from {first.paths[0]}'s ({_factor_names(first.tokenizer)}); "
                                  f"ensemble members must share them")
    return Loaded(Ensemble([x.model for x in loaded]).eval(), first.tokenizer, first.config,
                  tuple(p for x in loaded for p in x.paths))


def _factor_names(tok: Tokenizer) -> str:
    return ", ".join(f.name for f in tok.factors) or "none"


def checkpoint_dict(state: Dict, config: Dict, spm: Dict, **extra) -> Dict:
    """The checkpoint layout (module docstring) around a state dict, a plain config and the
    sentencepiece entry."""
    unknown = set(extra) - set(TRAINING_KEYS) - {"averaged_from", "shortlist", "train_model", "scaler"}
    if unknown:
        raise ValueError(f"unknown checkpoint entries {sorted(unknown)}")
    return {"format": FORMAT, "model": state, "config": config, "spm": spm, "torch_version": str(torch.__version__),
            **extra}


# ---- averaging -----------------------------------------------------------------------------------

def average_checkpoints(paths: Sequence[str]) -> Dict:
    """The element-wise mean (in fp32) of the checkpoints' parameters, as an ordinary (not
    resumable) checkpoint. Model configs and sentencepiece models must match."""
    if not paths:
        raise CheckpointError("nothing to average: no checkpoints given")
    first = load_checkpoint(paths[0])
    total = {k: v.double() if v.is_floating_point() else v.clone() for k, v in first["model"].items()}
    for path in paths[1:]:
        ckpt = load_checkpoint(path)
        for side in ("src", "tgt"):
            a, b = first["spm"].get(side), ckpt["spm"].get(side)
            if (a is None) != (b is None) or (a is not None and not torch.equal(a, b)):
                raise CheckpointError(f"{path}: its {side} sentencepiece model differs from {paths[0]}'s")
        if first["spm"].get("factors", []) != ckpt["spm"].get("factors", []):
            raise CheckpointError(f"{path}: its source factor vocabularies differ from {paths[0]}'s")
        diff = differences(first["config"], ckpt["config"], affects_model)
        if diff:
            key, mine, theirs = diff[0]
            raise CheckpointError(f"{path}: config differs from {paths[0]}'s at {key!r}: {mine!r} vs {theirs!r}")
        if set(ckpt["model"]) != set(total):
            raise CheckpointError(f"{path}: its parameters differ from {paths[0]}'s "
                                  f"({sorted(set(ckpt['model']) ^ set(total))[0]!r})")
        for k, v in ckpt["model"].items():
            if v.shape != total[k].shape:
                raise CheckpointError(f"{path}: parameter {k!r} has shape {tuple(v.shape)}, "
                                      f"{paths[0]} has {tuple(total[k].shape)}")
            if v.is_floating_point():
                total[k] += v.double()
    model = {k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v
             for k, v in total.items()}
    # the shortlist is built from the training data: the same for every checkpoint of a run
    return checkpoint_dict(model, first["config"], first["spm"], averaged_from=[os.path.abspath(p) for p in paths],
                           **({"shortlist": first["shortlist"]} if "shortlist" in first else {}))


# ---- RNG state --------------------------------------------------------------

def rng_state() -> Dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
