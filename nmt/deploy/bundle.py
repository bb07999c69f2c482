"""An exported model's directory: its files and ``manifest.json``, written by ``export.py`` and
read back (and checked) by ``runtime.py``. Imports neither torch nor Hydra.

    encoder.onnx    (src, src_lens) -> memory (values, keys, mask) and the decoder's first state
    step.onnx       (prev, state..., memory...) -> log-probabilities, state..., [attention weights]
    topk.onnx       (x, k) -> the k largest of each row and their indices (search's selection)
    spm.model       the joint sentencepiece model, or spm.src.model + spm.tgt.model
    manifest.json   what a runtime needs besides the graphs (``Manifest``)
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from ..errors import NmtError

FORMAT_VERSION = 1
MANIFEST, ENCODER, STEP, TOPK = "manifest.json", "encoder.onnx", "step.onnx", "topk.onnx"
MEMORY = ("values", "keys", "mask")  # the encoder's memory outputs, the step's memory inputs, in order
# the decoder state's tensors a bundle may carry, with their batch axis: h and c are (layers, rows,
# hidden), feed (rows, size)
STATE_AXIS = {"h": 1, "c": 1, "feed": 0}


class BundleError(NmtError):
    """A directory that is not a readable bundle of this format (the file and the problem named)."""


@dataclass
class Manifest:
    checkpoint: str  # the checkpoint exported (its path when exported)
    checkpoint_sha256: str
    model: Dict  # the encoder, attention and decoder settings (plain values, as in the checkpoint)
    src_vocab_size: int
    tgt_vocab_size: int
    state: List[str]  # the decoder state's tensors, in the step's input and output order (h, c, feed)
    attention_weights: bool  # whether the step returns attention weights (alignments, coverage penalty)
    spm: List[str]  # sentencepiece model file(s): [joint] or [source, target]
    src_lang: str = ""  # data.src_lang and data.tgt_lang (what the server reports)
    tgt_lang: str = ""
    parameters: int = 0
    src_prefix: Optional[str] = None  # the tag put before every source (data.src_prefix)
    max_src_len: int = 0  # sources are cut to this many pieces (data.max_len)
    opset: int = 17
    int8: bool = False  # weights quantized by ONNX Runtime's dynamic quantization
    specials: Dict[str, int] = field(default_factory=dict)  # pad, unk, bos, eos ids
    src_factors: List[Dict] = field(default_factory=list)  # source factors' vocabularies: [{"name", "values"}]
    files: Dict[str, str] = field(default_factory=dict)  # every other file of the bundle -> its SHA-256
    max_logprob_diff: float = 0.0  # measured at export: the most a log-probability differs from the checkpoint's
    format_version: int = FORMAT_VERSION
    nmt_version: str = ""

    def write(self, directory: str) -> None:
        with open(os.path.join(directory, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=2, sort_keys=True)
            f.write("\n")

    @classmethod
    def read(cls, directory: str) -> Manifest:
        path = os.path.join(directory, MANIFEST)
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except OSError as e:
            raise BundleError(f"{path}: cannot read ({e.strerror})") from None
        except ValueError as e:
            raise BundleError(f"{path}: not JSON ({e})") from None
        if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
            version = raw.get("format_version") if isinstance(raw, dict) else None
            raise BundleError(f"{path}: bundle format {version!r}; this version of nmt reads format {FORMAT_VERSION} "
                              f"(export the checkpoint again)")
        try:
            manifest = cls(**raw)
        except TypeError as e:
            raise BundleError(f"{path}: {e}") from None
        names = [*manifest.spm, *manifest.files]
        outside = [n for n in names if not isinstance(n, str) or os.path.basename(n) != n or n in ("", ".", "..")]
        if outside:
            raise BundleError(f"{path}: names {outside[0]!r}, which is not a file of the bundle's directory")
        if not set(manifest.state) <= set(STATE_AXIS) or "h" not in manifest.state:
            raise BundleError(f"{path}: state {manifest.state!r} is not a decoder state (h, and c, feed where used)")
        for name in (ENCODER, STEP, TOPK, *manifest.spm):
            manifest.check_file(directory, name)
        return manifest

    def check_file(self, directory: str, name: str) -> None:
        """``name`` is in the bundle, listed in the manifest, and holds what was exported (its SHA-256):
        a damaged or changed file is refused, never loaded."""
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise BundleError(f"{directory}: the bundle has no {name}")
        if name not in self.files:
            raise BundleError(f"{os.path.join(directory, MANIFEST)}: lists no checksum for {name}")
        if sha256(path) != self.files[name]:
            raise BundleError(f"{path}: differs from what was exported (SHA-256 mismatch): the file is damaged or "
                              f"was changed; export the checkpoint again")


def is_bundle(path: str) -> bool:
    """Whether ``path`` is an exported model's directory (it holds a manifest)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))


def model_files(path: str) -> List[str]:
    """The files a model argument of nmt-translate stands for (outputs may not overwrite them): a
    bundle's files, or what ``outputs.checkpoint_files`` says of a checkpoint or run directory."""
    if is_bundle(path):
        return [os.path.join(path, n) for n in sorted(os.listdir(path))]
    from ..outputs import checkpoint_files
    return checkpoint_files(path)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
