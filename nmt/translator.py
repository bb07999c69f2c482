"""Text in, text out: load a checkpoint, batch sentences by length, search, restore input order."""
from __future__ import annotations

import contextlib
from typing import List, Optional, Sequence, Tuple

import torch

from .data.batching import source_tensor
from .data.spm import Tokenizer
from .models import build_model
from .search import Hypothesis, beam_search, check_options, greedy_search, sample_search
from .train.checkpoint import load_checkpoint, tensor_to_spm


def load_model(path: str, device: str = "cpu"):
    """(model in eval mode, tokenizer, config dict) from a checkpoint file."""
    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    tok = Tokenizer(tensor_to_spm(ckpt["spm"]["src"]), tensor_to_spm(ckpt["spm"].get("tgt")))
    model = build_model(cfg["encoder"], cfg["attention"], cfg["decoder"], tok.src_vocab_size, tok.tgt_vocab_size)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), tok, cfg


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
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if _cpu_has_fast_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    precision = resolve_precision(precision, device)
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision != "fp32":
        raise ValueError(f"precision must be fp32, bf16 or auto, got {precision!r}")
    return contextlib.nullcontext()


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> List[List[int]]:
    """Indices grouped longest first into batches of at most ``batch_size`` sentences and
    ``max_tokens`` padded source tokens (a longer sentence gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current = [], []
    for i in order:
        width = lengths[current[0]] + 1 if current else lengths[i] + 1
        if current and (len(current) >= batch_size or width * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Translator:
    """Batched translation with greedy, beam or sampling search."""

    def __init__(self, model, tokenizer: Tokenizer, strategy: str = "beam", beam_size: int = 5,
                 alpha: float = 1.0, penalty: str = "gnmt", max_len_a: float = 1.5, max_len_b: int = 10,
                 min_len: int = 0, nbest: int = 1, temperature: float = 1.0, top_k: int = 0,
                 batch_size: int = 64, max_tokens: int = 8000, precision: str = "fp32", seed: int = 1):
        if strategy not in ("beam", "greedy", "sample"):
            raise ValueError(f"unknown search strategy {strategy!r}; choose beam, greedy or sample")
        if batch_size < 1 or max_tokens < 1:
            raise ValueError("batch size and max tokens must be >= 1")
        check_options(beam_size=beam_size if strategy == "beam" else max(1, nbest), nbest=nbest,
                      min_len=min_len, max_len_a=max_len_a, max_len_b=max_len_b,
                      temperature=temperature, top_k=top_k)
        if strategy != "beam" and nbest != 1:
            raise ValueError("nbest lists need beam search")
        self.model, self.tok = model, tokenizer
        self.device = next(model.parameters()).device
        self.strategy, self.beam_size, self.alpha, self.penalty = strategy, beam_size, alpha, penalty
        self.max_len_a, self.max_len_b, self.min_len, self.nbest = max_len_a, max_len_b, min_len, nbest
        self.temperature, self.top_k = temperature, top_k
        self.batch_size, self.max_tokens, self.precision = batch_size, max_tokens, precision
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def _search(self, src: torch.Tensor, src_lens: torch.Tensor) -> List[List[Hypothesis]]:
        kw = dict(max_len_a=self.max_len_a, max_len_b=self.max_len_b, min_len=self.min_len)
        if self.strategy == "greedy":
            return greedy_search(self.model, src, src_lens, **kw)
        if self.strategy == "sample":
            return sample_search(self.model, src, src_lens, temperature=self.temperature, top_k=self.top_k,
                                 generator=self.generator, **kw)
        return beam_search(self.model, src, src_lens, beam_size=self.beam_size, alpha=self.alpha,
                           penalty=self.penalty, nbest=self.nbest, **kw)

    def translate_ids(self, src_ids: Sequence[Sequence[int]]) -> List[List[Hypothesis]]:
        """Per input, its n-best list; an empty input gets [Hypothesis([], 0.0)] without decoding."""
        results: List[Optional[List[Hypothesis]]] = [None] * len(src_ids)
        todo = [i for i, s in enumerate(src_ids) if len(s) > 0]
        self.model.eval()
        with torch.inference_mode(), autocast(self.device, self.precision):
            for group in length_sorted_batches([len(src_ids[i]) for i in todo], self.batch_size, self.max_tokens):
                idx = [todo[g] for g in group]
                src, src_lens = source_tensor([src_ids[i] for i in idx])
                for i, hyps in zip(idx, self._search(src.to(self.device), src_lens)):
                    results[i] = hyps
        return [r if r is not None else [Hypothesis([], 0.0)] for r in results]

    def translate(self, lines: Sequence[str]) -> List[List[Tuple[str, float]]]:
        """Raw text in, n-best lists of (detokenized text, score) out, in input order."""
        encoded = iter(self.tok.encode_src([line for line in lines if line.strip()]))
        ids = [next(encoded) if line.strip() else [] for line in lines]
        out = []
        for hyps in self.translate_ids(ids):
            texts = self.tok.decode_tgt([h.tokens for h in hyps])
            out.append([(text, h.score) for text, h in zip(texts, hyps)])
        return out
