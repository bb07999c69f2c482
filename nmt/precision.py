"""Numeric precision: ``fp32``, ``bf16`` or ``fp16`` autocast, or ``auto`` (bf16 only where it is
native); fp16 training scales its loss (``loss_scaler``)."""
from __future__ import annotations

import contextlib

import torch

from .config import FROM_CHECKPOINT, Precision, choose


def _cpu_has_fast_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: Precision, device: torch.device) -> Precision:
    """``auto`` is bf16 where the hardware computes it natively (CUDA with bf16, CPUs with
    AVX512-BF16 or AMX), else fp32: emulated bf16 matmuls are several times slower than fp32."""
    precision = Precision(precision)
    if precision is not Precision.auto:
        return precision
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else _cpu_has_fast_bf16()
    return Precision.bf16 if native else Precision.fp32


AUTOCAST_DTYPES = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}  # what each autocasts to


def autocast(device: torch.device, precision: Precision):
    """A context manager: bf16 or fp16 autocast, or nothing for fp32."""
    dtype = AUTOCAST_DTYPES.get(resolve_precision(precision, device))
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def loss_scaler(precision: Precision, device: torch.device) -> torch.amp.GradScaler:
    """Dynamic loss scaling for fp16 training (fp16's range is too narrow for small gradients): the
    loss is multiplied by a scale before backward, the gradients divided by it before clipping, an
    update whose gradients overflowed is skipped and the scale halved, and the scale doubles after
    2,000 clean updates. For any other precision it is disabled: every call passes through."""
    return torch.amp.GradScaler(device.type, enabled=resolve_precision(precision, device) is Precision.fp16)


def inference_precision(choice: str, config, device: torch.device, key: str = "precision") -> Precision:
    """The precision to translate with: ``checkpoint`` is the one the model trained with (its
    ``train.precision``, ``auto`` resolved on this machine), so a run's own test score is what
    ``nmt-translate`` and ``nmt.load`` reproduce by default; any other choice as ``resolve_precision``."""
    if choice == FROM_CHECKPOINT:
        return resolve_precision(config.train.precision, device)
    return resolve_precision(choose(Precision, choice, key), device)


def _quantize_dynamic(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """The linear and recurrent layers' weights stored as ``dtype`` (CPU inference)."""
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM}, dtype=dtype)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """int8 dynamic quantization of the linear and recurrent layers (CPU inference)."""
    return _quantize_dynamic(model, torch.qint8)


def fp16_weights(model: torch.nn.Module) -> torch.nn.Module:
    """The linear and recurrent layers' weights stored in fp16 and multiplied in fp32 (fbgemm's
    packed fp16 GEMM; CPU inference): half the bytes read per step, logits within ~1e-3 of fp32."""
    return _quantize_dynamic(model, torch.float16)


def compress_weights(model: torch.nn.Module, int8: bool, fp16: bool, device: torch.device) -> torch.nn.Module:
    """``--int8`` / ``--fp16-weights``: the model with its weights quantized (CPU only), or as it is."""
    from .errors import ConfigError
    if int8 and fp16:
        raise ConfigError("--int8 and --fp16-weights: choose one")
    if not (int8 or fp16):
        return model
    if device.type != "cpu":
        raise ConfigError(f"{'--int8' if int8 else '--fp16-weights'} runs on the CPU only")
    return quantize_int8(model) if int8 else fp16_weights(model)
