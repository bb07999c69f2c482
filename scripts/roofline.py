"""Where the time of a training update or of a decoding batch goes, by op class, against the
machine's limit (``scripts/benchmark.py --roofline N``).

torch.profiler records every op's own (self) time on the thread that runs it; ops are grouped into
classes by name, and what no op accounts for (Python, the autograd engine's scheduling, the
interpreter between ops) is the rest of the measured wall clock. The limit is the matmul FLOPs of
the same work (``torch.utils.flop_counter``) at the measured peak GEMM rate: the GEMM row's gap is
its time over that; every other class is counted as gap in full (their bytes are not counted, so
their own bandwidth bound is not subtracted: an upper bound on what they cost beyond the limit).
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List

# (class, names), first match wins, names as torch.profiler reports them: an "aten::NAME" is that op
# and its variants "aten::NAME_..." (in place, _select, _backward, ...); "aten::" alone is any other
# aten op; anything else is a fragment of the name
CLASSES = (
    ("optimizer", ("Optimizer.", "_foreach", "aten::_fused_adam")),
    ("recurrent kernel (GEMMs inside)", ("mkldnn_rnn", "aten::gru", "aten::lstm", "aten::rnn_")),
    ("GEMM", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm", "aten::matmul",
              "aten::linear", "aten::_addmm_activation")),
    ("softmax, log-softmax, exp, log", ("softmax", "logsumexp", "aten::exp", "aten::log", "aten::nll_loss")),
    ("copies, layout, indexing", ("aten::copy_", "aten::cat", "aten::index", "aten::gather", "aten::scatter",
                                  "aten::embedding", "aten::clone", "aten::contiguous", "aten::stack",
                                  "aten::nonzero", "aten::masked_select", "aten::take", "aten::unbind",
                                  "aten::split", "aten::chunk", "aten::narrow", "aten::to", "aten::_to_copy",
                                  "aten::empty", "aten::zeros", "aten::full", "aten::new_", "aten::resize_",
                                  "aten::flip", "aten::repeat", "aten::expand", "aten::view", "aten::reshape",
                                  "aten::transpose", "aten::t", "aten::permute", "aten::slice", "aten::select",
                                  "aten::as_strided", "aten::unsqueeze", "aten::squeeze", "aten::_unsafe_view",
                                  "aten::detach", "aten::alias", "aten::lift", "aten::result_type")),
    ("reductions, top-k, sort", ("aten::sum", "aten::mean", "aten::norm", "aten::max", "aten::min", "aten::topk",
                                 "aten::sort", "aten::argmax", "aten::linalg_vector_norm", "aten::any",
                                 "aten::all", "aten::item", "aten::_local_scalar_dense", "aten::isfinite")),
    ("dropout, random", ("bernoulli", "dropout", "aten::rand", "aten::uniform", "aten::multinomial")),
    ("elementwise", ("aten::",)),
    ("autograd nodes", ("Backward", "autograd::")),
)
REST = "unaccounted: Python, autograd scheduling, the interpreter"


def _matches(name: str, pattern: str) -> bool:
    if pattern == "aten::":
        return name.startswith(pattern)
    if pattern.startswith("aten::"):
        return name == pattern or name.startswith(pattern.rstrip("_") + "_")
    return pattern in name


def op_class(name: str) -> str:
    for cls, patterns in CLASSES:
        if any(_matches(name, p) for p in patterns):
            return cls
    return "other"


def measure(fn: Callable[[], object], repeats: int, flops: float, peak_gflops: float) -> Dict:
    """Profile ``repeats`` calls of ``fn`` (each doing ``flops`` matmul FLOPs): per call, the wall
    clock, each class's self time, the rest, and the limit (``flops`` at ``peak_gflops``), in ms."""
    from torch.profiler import ProfilerActivity, profile
    fn()  # warm
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        wall = (time.perf_counter() - start) / repeats * 1e3
    classes: Dict[str, float] = {}
    for event in prof.key_averages():
        cls = op_class(event.key)
        classes[cls] = classes.get(cls, 0.0) + event.self_cpu_time_total / 1e3 / repeats
    # the profiler's own recording inflates the wall clock a little; its per-op shares are what matter
    classes[REST] = max(0.0, wall - sum(classes.values()))
    return {"ms": round(wall, 2), "limit_ms": round(flops / (peak_gflops * 1e9) * 1e3, 2),
            "peak_gflops": round(peak_gflops, 1),
            "gflop": round(flops / 1e9, 3), "classes": {k: round(v, 2) for k, v in classes.items()}}


def at_peak(r: Dict, peak_gflops: float) -> Dict:
    """``r`` (a ``measure`` result) with its limit at another peak rate."""
    return {**r, "limit_ms": round(r["gflop"] / peak_gflops * 1e3, 2), "peak_gflops": round(peak_gflops, 1)}


def table(name: str, r: Dict) -> List[str]:
    """Markdown rows: class, ms per call, share of the call, share of the gap to the limit."""
    gap = max(r["ms"] - r["limit_ms"], 1e-9)
    rows = [f"| {name}: {r['ms']:.1f} ms, limit {r['limit_ms']:.1f} ms ({r['gflop']:.2f} GFLOP at the peak) "
            f"= {r['limit_ms'] / r['ms']:.0%} of the limit | ms | share of the time | share of the gap |",
            "|---|---|---|---|"]
    matmul = ("GEMM", "recurrent kernel (GEMMs inside)")  # where the FLOPs are: the limit is theirs
    gemm = sum(r["classes"].get(c, 0.0) for c in matmul)
    for cls, ms in sorted(r["classes"].items(), key=lambda kv: -kv[1]):
        is_matmul = cls in matmul and gemm > 0
        beyond = ms - r["limit_ms"] * ms / gemm if is_matmul else ms  # the limit shared by time
        note = f" (together {r['gflop'] * 1e3 / gemm:.0f} GFLOP/s)" if is_matmul else ""
        rows.append(f"| {cls}{note} | {ms:.2f} | {ms / r['ms']:.0%} | {max(beyond, 0.0) / gap:.0%} |")
    return rows
