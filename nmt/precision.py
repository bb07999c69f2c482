"""Numeric precision: ``fp32``, ``bf16`` autocast, or ``auto`` (bf16 only where it is native)."""
from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError


def _cpu_has_fast_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is bf16 where the hardware computes it natively (CUDA with bf16, CPUs with
    AVX512-BF16 or AMX), else fp32: emulated bf16 matmuls are several times slower than fp32."""
    if precision not in ("fp32", "bf16", "auto"):
        raise ConfigError(f"precision must be fp32, bf16 or auto, got {precision!r}")
    if precision != "auto":
        return str(precision)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if _cpu_has_fast_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    """A context manager: bf16 autocast, or nothing for fp32."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def inference_precision(choice: str, config, device: torch.device) -> str:
    """The precision to translate with: ``checkpoint`` is the one the model trained with (its
    ``train.precision``, ``auto`` resolved on this machine), so a run's own test score is what
    ``nmt-translate`` and ``nmt.load`` reproduce by default; any other choice as ``resolve_precision``."""
    if choice == "checkpoint":
        choice = str(config.train.precision)
    return resolve_precision(choice, device)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """int8 dynamic quantization of the linear and recurrent layers (CPU inference)."""
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM},
                                                  dtype=torch.qint8)
