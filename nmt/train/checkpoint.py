"""Self-contained checkpoints, written atomically and loaded without executing pickled code.

A checkpoint holds the model weights, the full resolved config, the sentencepiece model(s), the
optimizer and LR-scheduler state, the position in the data order and every RNG state: enough to
translate with it alone, and to resume training exactly.
"""
from __future__ import annotations

import glob
import os
import pickle
import random
import re
import shutil
import zipfile
from typing import Dict, List, Optional

import torch

FORMAT = "nmt-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file."""


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Dict, path: str) -> None:
    """Write to a temporary file beside ``path``, fsync, rename: ``path`` is always whole."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _fsync_dir(directory)


def atomic_link(src: str, dst: str) -> None:
    """Make ``dst`` another name of ``src``'s current content (hard link, else copy), atomically."""
    tmp = f"{dst}.tmp.{os.getpid()}"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    _fsync_dir(os.path.dirname(os.path.abspath(dst)))


def load_checkpoint(path: str) -> Dict:
    """Load with ``weights_only=True``: tensors and plain values only, never arbitrary objects."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [l.strip() for l in str(e).splitlines() if "Unsupported" in l or "global" in l.lower()]
        first = lines[0] if lines else type(e).__name__
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects other than tensors and plain "
            f"values, which could run arbitrary code ({first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted): {e}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nmt checkpoint (missing format tag {FORMAT!r})")
    for key in ("model", "config", "spm"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: incomplete checkpoint, no {key!r} entry")
    return ckpt


def spm_to_tensor(proto: Optional[bytes]) -> Optional[torch.Tensor]:
    return None if proto is None else torch.frombuffer(bytearray(proto), dtype=torch.uint8).clone()


def tensor_to_spm(t: Optional[torch.Tensor]) -> Optional[bytes]:
    return None if t is None else bytes(t.numpy().tobytes())


def step_checkpoints(directory: str) -> List[str]:
    """``step_N.pt`` files in ``directory``, oldest step first."""
    found = []
    for path in glob.glob(os.path.join(directory, "step_*.pt")):
        m = re.fullmatch(r"step_(\d+)\.pt", os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return [p for _, p in sorted(found)]


def prune(directory: str, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints."""
    paths = step_checkpoints(directory)
    for path in paths[: max(0, len(paths) - keep)]:
        os.remove(path)


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
