"""How a model runs for translation: a PyTorch model (its device, autocast at its precision, no
autograd) or an exported bundle over ONNX Runtime (``nmt.deploy.runtime.OnnxModel``: numpy arrays,
no torch). ``Translator`` asks its backend for source and target batches, the sampling generator
and the context every pass runs in; search and everything else is the same code for both."""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

from .config import Precision


def backend_for(model, precision: Precision = Precision.fp32):
    """The backend of ``model``: an ``OnnxModel`` (it has a bundle manifest) or a torch module."""
    return OnnxBackend(model) if hasattr(model, "manifest") else TorchBackend(model, precision)


class TorchBackend:
    def __init__(self, model, precision: Precision):
        self.model, self.precision = model, precision
        self.device = next(model.parameters()).device

    @property
    def tgt_vocab_size(self) -> int:
        """The output layer's size of a model or of an ``Ensemble``'s first member."""
        first = self.model if hasattr(self.model, "decoder") else self.model.models[0]
        return first.decoder.embed.num_embeddings

    def running(self) -> contextlib.ExitStack:
        """Evaluation mode, no autograd, autocast at the precision."""
        import torch

        from .precision import autocast
        self.model.eval()
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(autocast(self.device, self.precision))
        return stack

    def sources(self, ids: Sequence[Sequence[int]]):
        """(batch, src_len) ids + EOS on the device, PAD-padded, and (batch,) lengths on the CPU."""
        from .data.batching import source_tensor
        src, lens = source_tensor(ids)
        return src.to(self.device), lens

    def targets(self, ids: Sequence[Sequence[int]], bos: bool = False, eos: bool = False):
        from .data.batching import pad
        return pad(ids, bos=bos, eos=eos).to(self.device)

    def generator(self, seed: int) -> Any:
        import torch
        return torch.Generator(device=self.device).manual_seed(seed)

    @staticmethod
    def host(x):
        """``x`` in the CPU's memory (where alignments and plots read it)."""
        return x.cpu()


class OnnxBackend:
    def __init__(self, model):
        self.model = model

    @property
    def tgt_vocab_size(self) -> int:
        return self.model.manifest.tgt_vocab_size

    def running(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def sources(self, ids: Sequence[Sequence[int]]):
        from .data.batching import source_arrays
        return source_arrays(ids)

    def targets(self, ids: Sequence[Sequence[int]], bos: bool = False, eos: bool = False):
        from .data.batching import pad_array
        return pad_array(ids, bos=bos, eos=eos)

    def generator(self, seed: int) -> Any:
        import numpy as np
        return np.random.default_rng(seed)

    @staticmethod
    def host(x):
        return x
