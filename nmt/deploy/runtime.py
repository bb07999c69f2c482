"""``OnnxModel``: an exported bundle behind the search contract, over ONNX Runtime and numpy.

``encode(src, src_lens) -> (memory, state)``, ``step(prev, state, memory) -> (log-probabilities,
state, weights)`` and ``reorder(state, memory, index)`` take and give numpy arrays, so
``nmt.search`` and ``nmt.translator.Translator`` decode a bundle as they decode a PyTorch model.
Imports neither torch nor Hydra (tested in a process where importing them fails).
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import numpy as np

from ..data.factors import FactorVocab
from ..data.spm import Tokenizer
from ..search.arrays import NumpyOps
from .bundle import ENCODER, MEMORY, STATE_AXIS, STEP, TOPK, BundleError, Manifest

State = Dict[str, np.ndarray]
MemoryArrays = Dict[str, np.ndarray]


def _session(path: str, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise BundleError("running an exported model needs onnxruntime: pip install 'nmt[onnx]'") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # the bundle's sessions take turns with numpy on the same cores: a pool that spins while waiting
    # for work steals them from the others (measured: beam 5 at 0.7x PyTorch's speed with spinning)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable graphs
        raise BundleError(f"{path}: not a loadable ONNX graph ({str(e).splitlines()[0]})") from None


class OnnxModel:
    """The sessions of a bundle (``directory``), ``threads`` intra-op threads each (0: ONNX
    Runtime's choice). Its step gives log-probabilities (``log_probs``), and search runs on its
    ``ops``: numpy, with top-k selection in ONNX Runtime."""

    log_probs = True

    def __init__(self, directory: str, threads: int = 0):
        self.directory = directory
        self.manifest = Manifest.read(directory)
        self.encoder = _session(os.path.join(directory, ENCODER), threads)
        self.stepper = _session(os.path.join(directory, STEP), threads)
        self.state_names = list(self.manifest.state)
        self.step_inputs = {i.name for i in self.stepper.get_inputs()}  # the exporter drops unused ones
        self._check_graphs()
        self.ops = NumpyOps(_session(os.path.join(directory, TOPK), threads))

    def _check_graphs(self) -> None:
        """The graphs take and give what the manifest says (a manifest edited by hand, or put beside
        another export's graphs, is refused here rather than failing mid-translation)."""
        names = self.state_names
        wanted = {ENCODER: (self.encoder, {"src", "src_lens"}, [*MEMORY, *(f"{n}_out" for n in names)]),
                  STEP: (self.stepper, {"prev", *names, *MEMORY},
                         ["logprobs", *(f"{n}_out" for n in names), *(["weights"] if self.manifest.attention_weights
                                                                      else [])])}
        for name, (session, inputs, outputs) in wanted.items():
            got_in, got_out = {i.name for i in session.get_inputs()}, [o.name for o in session.get_outputs()]
            required = {"prev"} if name == STEP else {"src", "src_lens"}
            if not required <= got_in <= inputs or got_out != outputs:
                raise BundleError(f"{os.path.join(self.directory, name)}: takes {sorted(got_in)} and gives {got_out}, "
                                  f"not what {os.path.join(self.directory, 'manifest.json')} describes")

    def tokenizer(self) -> Tokenizer:
        files = [os.path.join(self.directory, name) for name in self.manifest.spm]
        tok = Tokenizer.load(files[0], files[1] if len(files) > 1 else None)
        tok.factors = tuple(FactorVocab.from_dict(f) for f in self.manifest.src_factors)
        return tok

    def encode(self, src: np.ndarray, src_lens: np.ndarray) -> Tuple[MemoryArrays, State]:
        out = self.encoder.run(None, {"src": src.astype(np.int64), "src_lens": src_lens.astype(np.int64)})
        memory = dict(zip(MEMORY, out[:len(MEMORY)]))
        return memory, dict(zip(self.state_names, out[len(MEMORY):]))

    def step(self, prev: np.ndarray, state: State, memory: MemoryArrays
             ) -> Tuple[np.ndarray, State, Optional[np.ndarray]]:
        """prev: (rows,) -> log-probabilities (rows, vocab), new state, weights (rows, src_len) or None;
        ``rows`` is the memory's batch or k times it (k beams per sentence, side by side)."""
        feeds = {"prev": prev.astype(np.int64), **state, **memory}
        out = self.stepper.run(None, {k: v for k, v in feeds.items() if k in self.step_inputs})
        n = len(self.state_names)
        new = dict(zip(self.state_names, out[1:1 + n]))
        return out[0], new, (out[1 + n] if self.manifest.attention_weights else None)

    @staticmethod
    def reorder(state: Optional[State], memory: Optional[MemoryArrays], index: np.ndarray):
        """Select (and repeat) batch rows of the state and/or memory, as ``Seq2Seq.reorder``."""
        if state is not None:
            state = {name: np.take(t, index, axis=STATE_AXIS[name]) for name, t in state.items()}
        if memory is not None:
            memory = {name: np.take(t, index, axis=0) for name, t in memory.items()}
        return state, memory


class OnnxEnsemble:
    """Several bundles of one vocabulary behind the search contract, as ``models.ensemble.Ensemble``
    is for checkpoints: each member keeps its own state and memory; a step gives the mean of the
    members' log-probabilities (which search normalises like logits) and their mean attention."""

    log_probs = False

    def __init__(self, members):
        first = members[0]
        for other in members[1:]:
            for name_a, name_b in zip(first.manifest.spm, other.manifest.spm):
                if (name_a, first.manifest.files[name_a]) != (name_b, other.manifest.files[name_b]) \
                        or len(first.manifest.spm) != len(other.manifest.spm):
                    raise BundleError(f"{other.directory}: its vocabulary (sentencepiece model) differs from "
                                      f"{first.directory}'s; ensemble members must share it")
            if first.manifest.src_factors != other.manifest.src_factors:
                raise BundleError(f"{other.directory}: its source factors differ from {first.directory}'s; ensemble "
                                  f"members must share them")
        self.members, self.manifest, self.ops = list(members), first.manifest, first.ops

    def tokenizer(self) -> Tokenizer:
        return self.members[0].tokenizer()

    def encode(self, src: np.ndarray, src_lens: np.ndarray):
        pairs = [m.encode(src, src_lens) for m in self.members]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)  # memories, states

    def step(self, prev: np.ndarray, states, memories):
        """prev: (rows,) -> mean log-probabilities (rows, vocab), new states, mean weights or None."""
        outs = [m.step(prev, s, mem) for m, s, mem in zip(self.members, states, memories)]
        logp = sum(o[0] for o in outs) / len(outs)
        weights = None if outs[0][2] is None else np.mean([o[2] for o in outs], axis=0)
        return logp, tuple(o[1] for o in outs), weights

    def reorder(self, states, memories, index: np.ndarray):
        pairs = [m.reorder(None if states is None else states[i], None if memories is None else memories[i], index)
                 for i, m in enumerate(self.members)]
        return (None if states is None else tuple(p[0] for p in pairs)), \
            (None if memories is None else tuple(p[1] for p in pairs))
