"""The array operations search needs, for torch tensors and for numpy arrays.

Search (``beam.py``, ``greedy.py``, ``common.py``) is written once against these and the syntax the
two libraries share (indexing, in-place indexed assignment, arithmetic, ``.shape``, ``.reshape``,
``.sum``/``.any``/``.all``/``.argmax``/``.clip``/``.tolist``), so the same code decodes over a
PyTorch model and over the torch-free ONNX Runtime backend (``nmt.deploy``). ``ops_for(x)`` picks
the set from the type of the source batch; numpy's is used without importing torch.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Sequence, Tuple


def ops_for(x: Any, model: Any = None) -> Any:
    """The operations for arrays like ``x`` (a torch tensor or a numpy array): ``model.ops`` where
    the model brings its own (the ONNX Runtime backend: top-k in ONNX Runtime)."""
    if getattr(model, "ops", None) is not None:
        return model.ops
    if type(x).__module__.split(".")[0] == "numpy":
        return numpy_ops()
    return TorchOps(x.device)


@functools.lru_cache(maxsize=1)
def numpy_ops() -> NumpyOps:
    return NumpyOps()


class _Ops:
    """What torch and numpy spell alike, over ``self.lib`` (the module)."""

    lib: Any

    def cat(self, xs, axis: int):
        return self.lib.concatenate(list(xs), axis=axis)

    def stack(self, xs, axis: int):
        return self.lib.stack(list(xs), axis)

    def where(self, cond, a, b):
        return self.lib.where(cond, a, b)

    def maximum(self, a, b):
        return self.lib.maximum(a, b)

    def isfinite(self, x):
        return self.lib.isfinite(x)

    def log(self, x):
        return self.lib.log(x)

    def floor(self, x):
        return self.lib.floor(x)

    def amax(self, x, axis: int):
        return self.lib.amax(x, axis)


class TorchOps(_Ops):
    """torch, allocating on ``device``."""

    def __init__(self, device):
        import torch
        self.lib = torch
        self.device = device
        self.long, self.float, self.double, self.bool = torch.long, torch.float32, torch.float64, torch.bool

    def no_grad(self):
        return self.lib.inference_mode()

    def full(self, shape: Sequence[int], value, dtype):
        return self.lib.full(tuple(shape), value, dtype=dtype, device=self.device)

    def zeros(self, shape: Sequence[int], dtype):
        return self.lib.zeros(tuple(shape), dtype=dtype, device=self.device)

    def arange(self, n: int):
        return self.lib.arange(n, device=self.device)

    def asarray(self, values, dtype):
        return self.lib.tensor(values, dtype=dtype, device=self.device)

    def astype(self, x, dtype):
        return x.to(dtype)

    def copy(self, x):
        return x.clone()

    def repeat(self, x, k: int):
        return x.repeat_interleave(k)

    def take_along(self, x, index, axis: int):
        """``x`` gathered along ``axis`` at ``index`` (same rank; other axes broadcast)."""
        return self.lib.take_along_dim(x, index, dim=axis)

    def topk(self, x, k: int) -> Tuple[Any, Any]:
        """The ``k`` largest along the last axis, largest first: (values, indices)."""
        return x.topk(k, dim=-1)

    def logsumexp(self, x):
        """Along the last axis, kept as an axis of size 1."""
        return self.lib.logsumexp(x, dim=-1, keepdim=True)

    def nonzero(self, mask):
        """Positions of True in a 1-D mask."""
        return mask.nonzero().squeeze(1)

    def windows(self, x, n: int):
        """(rows, t) -> (rows, t - n + 1, n), every run of ``n`` along the last axis."""
        return x.unfold(1, n, 1)

    def cummax(self, x, axis: int):
        """The running maximum along ``axis``."""
        return self.lib.cummax(x, axis).values


class NumpyOps(_Ops):
    """numpy (the ONNX Runtime backend); the same results as ``TorchOps`` up to floating-point rounding.
    ``topk``: an ONNX Runtime session of one TopK node (inputs x, k; outputs values, indices): the
    same selection as torch's (equal values may come in another order) and several times faster than
    numpy's partition."""

    def __init__(self, topk=None):
        import numpy as np
        self.lib = np
        self.topk_session = topk
        self.long, self.float, self.double, self.bool = np.int64, np.float32, np.float64, np.bool_

    def no_grad(self):
        return contextlib.nullcontext()

    def full(self, shape: Sequence[int], value, dtype):
        return self.lib.full(tuple(shape), value, dtype=dtype)

    def zeros(self, shape: Sequence[int], dtype):
        return self.lib.zeros(tuple(shape), dtype=dtype)

    def arange(self, n: int):
        return self.lib.arange(n, dtype=self.lib.int64)

    def asarray(self, values, dtype):
        return self.lib.asarray(values, dtype=dtype)

    def astype(self, x, dtype):
        return x.astype(dtype)

    def copy(self, x):
        return x.copy()

    def repeat(self, x, k: int):
        return self.lib.repeat(x, k)

    def take_along(self, x, index, axis: int):
        shape = [i if d == axis % x.ndim else max(n, i) for d, (n, i) in enumerate(zip(x.shape, index.shape))]
        return self.lib.take_along_axis(x, self.lib.broadcast_to(index, shape), axis=axis)

    def topk(self, x, k: int):
        np = self.lib
        if self.topk_session is not None and x.dtype == np.float32:
            rows = x.reshape(-1, x.shape[-1])  # (rows, n)
            values, index = self.topk_session.run(None, {"x": rows, "k": np.array([k], dtype=np.int64)})
            return values.reshape(*x.shape[:-1], k), index.reshape(*x.shape[:-1], k)
        if k < x.shape[-1]:  # the k largest in any order, then sorted: O(n + k log k) per row
            part = np.argpartition(-x, k - 1, axis=-1)[..., :k]
        else:
            part = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
        values = np.take_along_axis(x, part, axis=-1)
        order = np.argsort(-values, axis=-1, kind="stable")
        return np.take_along_axis(values, order, axis=-1), np.take_along_axis(part, order, axis=-1)

    def logsumexp(self, x):
        np = self.lib
        top = x.max(axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0).astype(x.dtype)
        with np.errstate(divide="ignore"):  # a row that is all -inf has log-sum -inf, as torch's
            return top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True))

    def nonzero(self, mask):
        return self.lib.flatnonzero(mask)

    def windows(self, x, n: int):
        return self.lib.lib.stride_tricks.sliding_window_view(x, n, axis=1)

    def cummax(self, x, axis: int):
        return self.lib.maximum.accumulate(x, axis)
