#!/usr/bin/env python
"""Benchmark an experiment on Multi30k: training speed, decoding speed, BLEU; prints one JSON object.

  python scripts/benchmark.py --experiment bench_reference                # training tokens/s only
  python scripts/benchmark.py --experiment multi30k_de_en --budget-minutes 20   # train 20 min, then score
  python scripts/benchmark.py --checkpoint runs/x/checkpoints/best.pt    # decode + score a checkpoint
  python scripts/benchmark.py --busy-core --experiment toy                # cost of a busy second core
  python scripts/benchmark.py --table                 # the speed and quality tables from results/benchmarks.jsonl

Training speed: ``--warmup`` updates, then ``--train-updates`` timed updates, in this process.
Budget mode: ``nmt-train`` runs as a child process and gets SIGINT after M minutes of wall clock
(start-up, sentencepiece, validation all included); it saves last.pt and exits. The checkpoint with
the better validation BLEU (last.pt or best.pt) is then scored on test_2016_flickr.
Decoding: beam 5 and greedy, batch 64 sentences; decode time excludes start-up and model loading,
process time is the whole ``nmt-translate`` run. The result is appended to ``--results``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import roofline  # noqa: E402 (scripts/roofline.py, beside this script)

from nmt.checkpoint import load_checkpoint, load_model  # noqa: E402
from nmt.config import Precision, register_configs  # noqa: E402
from nmt.data.corpus import iter_lines, resolve  # noqa: E402
from nmt.eval.bleu import score  # noqa: E402
from nmt.models.seq2seq import count_parameters  # noqa: E402
from nmt.precision import AUTOCAST_DTYPES, resolve_precision  # noqa: E402
from nmt.search import SearchOptions  # noqa: E402
from nmt.training.build import build_run  # noqa: E402
from nmt.training.distributed import Dist  # noqa: E402
from nmt.training.loop import epoch_updates  # noqa: E402
from nmt.training.update import run_update  # noqa: E402
from nmt.translator import Translator  # noqa: E402


def peak_gemm_gflops(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """The machine's limit: the best rate of large ``dtype`` matmuls with the current thread count."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - start))
    return best / 1e9


class Peaks:
    """The peak GEMM rate at each precision a run computes in, each measured once when first asked:
    the limit of a run is its matmul FLOPs at the rate of the precision it runs at (``auto`` resolved
    on this machine: bf16 only where the CPU computes it natively, ``nmt.precision``)."""

    DTYPES = {Precision.fp32: torch.float32, **AUTOCAST_DTYPES}

    def __init__(self):
        self.rates: dict = {}

    def __call__(self, precision) -> float:
        """GFLOP/s of ``precision`` (a ``Precision`` or its name; ``auto`` as this machine resolves it)."""
        p = self.resolved(precision)
        if p not in self.rates:
            self.rates[p] = self._measure(p)
        return self.rates[p]

    @staticmethod
    def resolved(precision) -> Precision:
        return resolve_precision(Precision(str(precision)), torch.device("cpu"))

    def again(self, precision) -> float:
        """Measure ``precision``'s peak once more and keep the best of all its measurements: this host's
        GEMM rate moves by tens of percent within minutes, and a limit taken at a slow moment would
        put the work it bounds above it."""
        p = self.resolved(precision)
        self.rates[p] = max(self(p), self._measure(p))
        return self.rates[p]

    def _measure(self, p: Precision) -> float:
        fast = p is Precision.fp32 or p is self.resolved(Precision.auto)  # emulated: a smaller product
        return peak_gemm_gflops(2048 if fast else 512, 5 if fast else 2, dtype=self.DTYPES[p])

    def record(self) -> dict:
        """The fields every record carries: the fp32 peak (``peak_gemm_gflops``), the bf16 one and
        whether bf16 is native here."""
        return {"peak_gemm_gflops": round(self(Precision.fp32), 1),
                "peak_gemm_gflops_bf16": round(self(Precision.bf16), 1),
                "bf16_native": self.resolved(Precision.auto) is Precision.bf16}


def beam5_options(extra: dict) -> SearchOptions:
    """The beam-5 search every decoding figure uses, with ``extra``'s alpha and coverage penalty."""
    return SearchOptions(strategy="beam", beam_size=5, alpha=extra.get("alpha", 1.0),
                         coverage_penalty=extra.get("coverage_penalty", 0.0))


def count_flops(fn) -> int:
    """Matmul FLOPs of ``fn()`` as torch.utils.flop_counter counts them (forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def print_profile(step, updates: int) -> None:
    """Where an update's time goes: torch.profiler over ``updates`` updates, the top operators by
    self CPU time (to stderr)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(updates):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30), file=sys.stderr)


def compose(experiment: str, data_dir: str, overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf
    register_configs()
    data = [f"data.train={data_dir}/train", f"data.valid={data_dir}/val", f"data.test={data_dir}/test_2016_flickr"]
    with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
        cfg = hydra_compose("train", overrides=[f"experiment={experiment}", *data, *overrides])
    return OmegaConf.to_object(cfg), [f"experiment={experiment}", *data, *overrides]


def cpu_flags():
    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "") \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    keep = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
    return {"model": model, "flags": keep}


def peak_rss_mb(children=False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


def train_speed(cfg, warmup: int, updates: int, run_dir: str, peaks: Peaks, profile: int = 0,
                roofline_updates: int = 0) -> dict:
    """Target tokens/s and sentences/s of ``updates`` timed updates after ``warmup`` ones, run by
    training's own code (``build_run``, ``epoch_updates``, ``run_update``: the same batches, teacher
    forcing and schedule as ``nmt-train``), and the limit: matmul FLOPs per sentence counted on the
    real model and batches, against the peak GEMM rate of the precision the run computes in."""
    precision = Peaks.resolved(cfg.train.precision)
    peak = peaks(precision)
    os.makedirs(run_dir, exist_ok=True)
    run = build_run(cfg, run_dir, torch.device("cpu"), Dist())

    def groups():  # epoch after epoch
        while True:
            yield from epoch_updates(run)

    tokens = sents = flops = flop_sents = 0
    start = None
    for i, group in zip(range(warmup + updates), groups()):
        size = sum(len(idx) for idx in group)
        update = lambda: run_update(run, group)  # noqa: E731, B023
        if i < min(10, warmup):  # count on warm-up batches, not inside the timed ones
            flops += count_flops(update)
            flop_sents += size
            if profile and i == min(10, warmup) - 1:
                print_profile(update, profile)
            if roofline_updates and i == min(10, warmup) - 1:  # this batch, again and again
                roof = roofline.measure(update, roofline_updates, count_flops(update), peak)
            continue
        if i == warmup:
            start = time.perf_counter()
        u = update()
        if i >= warmup:
            tokens += u.tokens
            sents += size
    seconds = time.perf_counter() - start
    run.close()
    peak = peaks.again(precision)  # the host's rate moves: the best of before and after
    if roofline_updates:
        roof = roofline.at_peak(roof, peak)
    per_sentence = flops / flop_sents
    limit = peak * 1e9 / per_sentence
    rate = sents / seconds
    return {"updates": updates, "warmup": warmup, "seconds": round(seconds, 2),
            "target_tokens_per_s": round(tokens / seconds, 1), "sentences_per_s": round(rate, 1),
            "sentences_per_update": round(sents / updates, 1), "parameters": count_parameters(run.model),
            "gflop_per_sentence": round(per_sentence / 1e9, 4), "limit_sentences_per_s": round(limit, 1),
            "share_of_limit": round(rate / limit, 3), "peak_rss_mb": round(peak_rss_mb(), 1),
            "precision": str(cfg.train.precision), "limit_precision": str(precision),
            "limit_peak_gflops": round(peak, 1), **({"roofline": roof} if roofline_updates else {})}


# minutes of a budget run that training leaves for start-up (~0.1) and the final validation and save
# (~0.2 on 2 cores); until 2026-12-06 1.5, which also held the test translation
BUDGET_MARGIN = 0.5


def budget_train(overrides, minutes: float, run_dir: str, nproc: int = 1) -> dict:
    """nmt-train for ``minutes`` of wall clock (start-up, sentencepiece, validation all included),
    stopped with SIGINT; with ``nproc`` > 1, that many data-parallel processes on this machine
    (``torchrun``, gloo; each rank takes ``train.max_tokens`` of every update and its share of the
    CPUs as threads). Unless the overrides say otherwise, the run knows its budget:
    ``train.max_minutes`` is the budget less ``BUDGET_MARGIN`` minutes for start-up and the final
    validation (the schedule decays to it). The test split is translated afterwards, outside the
    budget (``data.test=null`` in the run), as ``scripts/peer_opennmt.py`` does for the peer."""
    knows = [] if any(o.startswith("train.max_minutes=") for o in overrides) else [
        f"train.max_minutes={minutes - BUDGET_MARGIN:g}"]
    bin_dir = Path(sys.executable).parent
    launcher = [str(bin_dir / "nmt-train")] if nproc == 1 else [
        str(bin_dir / "torchrun"), "--standalone", f"--nproc_per_node={nproc}", "-m", "nmt.cli.train"]
    cmd = [*launcher, f"run_dir={run_dir}", *overrides, *knows,
           "train.max_steps=0", "train.max_epochs=0", "data.test=null"]
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(run_dir + ".log"), "w"))
    interrupted = False
    try:
        proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        interrupted = True
    wall = time.time() - start
    # at the budget's end SIGINT may land while the run is already past its last save, shutting down (it
    # then dies of it), and torchrun exits non-zero after passing it on: last.pt holds what the budget got
    last_pt = os.path.join(run_dir, "checkpoints", "last.pt")
    if proc.returncode != 0 and not (interrupted and os.path.exists(last_pt)):
        raise SystemExit(f"nmt-train failed ({proc.returncode}); see {run_dir}.log")
    return {**budget_summary(run_dir, wall / 60), "train_peak_rss_mb": round(peak_rss_mb(children=True), 1)}


def budget_summary(run_dir: str, minutes: float) -> dict:
    """What a budget run reached, from its last.pt."""
    state = load_checkpoint(os.path.join(run_dir, "checkpoints", "last.pt"))["train_state"]
    return {"minutes": round(minutes, 2), "updates": state["step"], "epochs": state["epoch"],
            "best_valid_bleu": state["best_bleu"], "best_step": state["best_step"]}


def source_factors(tok, src_path: str) -> Optional[List[List[str]]]:
    """For a model with source factors, their lines beside ``src_path`` (PREFIX.SRC_LANG[.gz]:
    PREFIX.SRC_LANG.NAME[.gz]); None otherwise."""
    base = src_path.removesuffix(".gz")
    return [list(iter_lines(resolve(base, f.name))) for f in tok.factors] if tok.factors else None


def picked(factors: Optional[List[List[str]]], idx) -> Optional[List[List[str]]]:
    """The factor lines of input lines ``idx`` (a slice or indices)."""
    if factors is None:
        return None
    return [f[idx] if isinstance(idx, slice) else [f[i] for i in idx] for f in factors]


def valid_bleu(ckpt: str, data_dir: str, src_lang: str, tgt_lang: str) -> float:
    model, tok, *_ = load_model(ckpt)
    src = list(iter_lines(f"{data_dir}/val.{src_lang}.gz"))
    ref = list(iter_lines(f"{data_dir}/val.{tgt_lang}.gz"))
    factors = source_factors(tok, f"{data_dir}/val.{src_lang}.gz")
    hyps = [h[0][0] for h in Translator(model, tok, SearchOptions(strategy="greedy")).translate(src, factors=factors)]
    return score(hyps, [ref], metrics=("bleu",))["bleu"]["score"]


def ensure_shortlist(ckpt: str, data_dir: str, out_dir: str) -> str:
    """``ckpt`` if it holds a lexical shortlist; else a copy under ``out_dir`` with one built from the
    training split in ``data_dir`` (checkpoints saved before shortlists existed)."""
    raw = load_checkpoint(ckpt)
    if "shortlist" in raw:
        return ckpt
    from nmt.checkpoint import atomic_save, config_of, tokenizer_of
    from nmt.data.dataset import encode_cached
    from nmt.training.build import training_shortlist
    cfg, tok = config_of(raw, ckpt), tokenizer_of(raw)
    train = encode_cached(f"{data_dir}/train", cfg.data.src_lang, cfg.data.tgt_lang, tok, cfg.data.max_len,
                          os.path.join(out_dir, "cache"), threads=torch.get_num_threads())
    raw["shortlist"] = training_shortlist(train, tok)
    path = os.path.join(out_dir, "with_shortlist.pt")
    atomic_save(raw, path)
    return path


def compress(model, weights: str):
    """The model with ``weights`` "int8" or "fp16" (as nmt-translate --int8 / --fp16-weights), or as it is."""
    from nmt.precision import compress_weights
    return compress_weights(model, weights == "int8", weights == "fp16", torch.device("cpu"))


def decode(ckpt: str, src_path: str, ref_path: str, extra, peak: float, weights: str = "", shortlist=None) -> dict:
    """Decode speed (model loaded first, not timed), its limit (matmul FLOPs per sentence at the
    peak GEMM rate) and the whole nmt-translate process time; ``shortlist`` = (K, N) searches over
    each source token's K partners and the N most frequent target tokens; ``weights`` "int8" or
    "fp16": compressed weights (no FLOP limit: the counter sees no quantized products)."""
    model, tok, _, _, stored = load_model(ckpt)
    model = compress(model, weights)
    if shortlist:
        from nmt.search.shortlist import trim
        stored = trim(stored, *shortlist)
    else:
        stored = None
    src = list(iter_lines(src_path))
    ref = list(iter_lines(ref_path))
    factors = source_factors(tok, src_path)
    results = {}
    beam5 = beam5_options(extra)
    for name, options in (("beam5", beam5), ("greedy", SearchOptions(strategy="greedy"))):
        tr = Translator(model, tok, options, batch_size=64, precision=extra.get("precision", "fp32"),
                        shortlist=stored)
        tr.translate(src[:64], factors=picked(factors, slice(64)))  # warm-up
        start = time.perf_counter()
        hyps = [h[0][0] for h in tr.translate(src, factors=factors)]
        seconds = time.perf_counter() - start
        s = score(hyps, [ref])
        per_sentence = count_flops(lambda: tr.translate(src[:256], factors=picked(factors, slice(256)))  # noqa: B023
                                   ) / 256 if not weights else 0
        rate = len(src) / seconds
        results[name] = {"sentences_per_s": round(rate, 1), "decode_seconds": round(seconds, 2),
                         **({"gflop_per_sentence": round(per_sentence / 1e9, 5),
                             "limit_sentences_per_s": round(peak * 1e9 / per_sentence, 1),
                             "share_of_limit": round(rate * per_sentence / (peak * 1e9), 3)} if per_sentence else {}),
                         "bleu": s["bleu"]["score"], "chrf": s["chrf"]["score"],
                         "bleu_signature": s["bleu"]["signature"], "chrf_signature": s["chrf"]["signature"],
                         **({"shortlist": list(shortlist)} if shortlist else {})}
        if not weights:
            cmd = [str(Path(sys.executable).parent / "nmt-translate"), ckpt, "-i", src_path, "-o", os.devnull,
                   "--batch-size", "64", "--quiet"]
            cmd += ["--greedy"] if name == "greedy" else ["--beam", "5", "--length-penalty", str(beam5.alpha),
                                                          "--coverage-penalty", str(beam5.coverage_penalty)]
            if extra.get("precision") == "bf16":
                cmd.append("--bf16")
            if shortlist:
                cmd += ["--shortlist", str(shortlist[0]), "--shortlist-frequent", str(shortlist[1])]
            if tok.factors:
                base = src_path.removesuffix(".gz")
                cmd += ["--src-factors", *(f"{f.name}={resolve(base, f.name)}" for f in tok.factors)]
            start = time.perf_counter()
            subprocess.run(cmd, check=True)
            results[name]["process_seconds"] = round(time.perf_counter() - start, 2)
            results[name]["process_sentences_per_s"] = round(len(src) / results[name]["process_seconds"], 1)
    return results


def memory_bandwidth_gbs(mb: int = 256, repeats: int = 5) -> float:
    """The machine's memory bandwidth: the best rate of copying ``mb`` MB into another buffer (bytes
    read and written), with the current thread count."""
    a = torch.ones(mb << 18)  # mb MB of fp32
    b = torch.empty_like(a)
    b.copy_(a)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        b.copy_(a)
        best = max(best, 2 * a.numel() * 4 / (time.perf_counter() - start))
    return best / 1e9


def weight_bytes(model) -> tuple:
    """(bytes the encoder reads once per sentence, bytes every decoding step reads): every weight but
    the embedding tables, of which a step reads a few rows (a target embedding tied to the output
    layer is read whole, as the output layer)."""
    def size(modules, tables) -> int:
        weights = {id(p): p for m in modules for p in m.parameters()}  # a shared tensor once
        return sum(p.numel() * p.element_size() for k, p in weights.items() if k not in tables)
    enc = model.encoder
    source_tables = {id(e.weight) for e in [enc.embed, *enc.factor_embeds]}
    target_table = {id(model.decoder.embed.weight)} - {id(model.decoder.output.weight)}
    return size([enc, model.bridge], source_tables), size([model.decoder], target_table)


def latency(ckpt: str, src_path: str, peak: float, words: int = 15, sentences: int = 40, extra=None,
            weights: str = "") -> dict:
    """One sentence at a time (batch 1, beam 5), as a server or a person typing sees it: the first
    ``sentences`` source lines of ``words`` words, each translated alone; milliseconds per sentence
    (median, 90th percentile) beside the limit (its matmul FLOPs at the peak GEMM rate; with
    ``weights`` "int8" or "fp16" (compressed weights), the fp32 model's) and the bandwidth bound:
    the fp32 weights read once per decoding step (and the encoder's once) at the measured memory
    bandwidth, for the steps the search took."""
    model, tok, _, _, _ = load_model(ckpt)
    encoder_bytes, step_bytes = weight_bytes(model)
    model = compress(model, weights)
    extra = extra or {}
    every = list(iter_lines(src_path))
    chosen = [k for k, line in enumerate(every) if len(line.split()) == words][:sentences]
    lines, factors = [every[k] for k in chosen], picked(source_factors(tok, src_path), chosen)
    tr = Translator(model, tok, beam5_options(extra),
                    batch_size=1, precision=extra.get("precision", "fp32"))
    tr.translate(lines[:3], factors=picked(factors, slice(3)))  # warm-up
    times = []
    steps = 0
    step = model.step

    def counted(*args, **kwargs):  # decoding steps of the timed sentences
        nonlocal steps
        steps += 1
        return step(*args, **kwargs)

    model.step = counted
    for k, line in enumerate(lines):
        start = time.perf_counter()
        tr.translate([line], factors=picked(factors, [k]))
        times.append(1000 * (time.perf_counter() - start))
    del model.step
    bandwidth = memory_bandwidth_gbs()
    bound_ms = 1000 * (encoder_bytes + steps / len(lines) * step_bytes) / (bandwidth * 1e9)
    flops = count_flops(lambda: [tr.translate([line], factors=picked(factors, [k]))
                                 for k, line in enumerate(lines)]) / len(lines) if not weights else \
        latency(ckpt, src_path, peak, words, 3, extra)["mflop_per_sentence"] * 1e6
    limit_ms = 1000 * flops / (peak * 1e9)
    median = statistics.median(times)
    return {"words": words, "sentences": len(lines), "ms_median": round(median, 2),
            "ms_p90": round(sorted(times)[int(0.9 * (len(times) - 1))], 2),
            "mflop_per_sentence": round(flops / 1e6, 2), "limit_ms": round(limit_ms, 3),
            "share_of_limit": round(limit_ms / median, 4), "steps_per_sentence": round(steps / len(lines), 1),
            "bandwidth_gbs": round(bandwidth, 1), "bandwidth_bound_ms": round(bound_ms, 2),
            "times_bandwidth_bound": round(median / bound_ms, 2)}


def busy_core_cost(args) -> list:
    """Training speed with and without another process spinning on one CPU, for 1 thread, the
    default thread count, and OpenMP's wait policy unset (libgomp spins a while) or passive; each case
    in a fresh process (the wait policy is read when the OpenMP runtime loads)."""
    rows = []
    for busy in (False, True):
        for policy in ("unset", "PASSIVE"):
            for threads in (1, 0):
                env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                if policy != "unset":
                    env["OMP_WAIT_POLICY"] = policy
                cmd = [sys.executable, __file__, "--experiment", args.experiment, "--data", args.data,
                       "--warmup", str(args.warmup), "--train-updates", str(args.train_updates),
                       "--threads", str(threads), "--results", os.devnull, "--run-dir", args.run_dir,
                       *args.overrides]
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
                try:
                    child = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                finally:
                    if spinner:
                        spinner.kill()
                        spinner.wait()
                train = json.loads(child.stdout.strip().splitlines()[-1])
                rows.append({"busy_core": busy, "omp_wait_policy": policy, "threads": train["threads"],
                             "sentences_per_s": train["train"]["sentences_per_s"],
                             "ms_per_update": round(1000 * train["train"]["seconds"] / args.train_updates, 1)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def speed_table(results: str) -> str:
    """The README's speed table from the latest records in ``results`` taken on the machine of the
    latest one: sentences/s beside the limit (matmul FLOPs counted on the model at the measured peak
    GEMM rate) and the share of it reached; then what a busy second core costs."""
    records = [json.loads(line) for line in open(results) if line.strip()]
    if not records:
        raise SystemExit(f"{results}: no benchmark records")
    cpu = records[-1]["cpu"]
    busy = [r for r in records if "busy_core" in r]  # the latest from any machine, named with it
    records = [r for r in records if r.get("cpu") == cpu]  # same model and instruction sets
    cpu = cpu["model"]
    train = {" ".join([f"`{r['experiment']}`", *r.get("overrides", [])]): r
             for r in records if "limit_sentences_per_s" in r.get("train", {})}
    decode = [r for r in records if "share_of_limit" in r.get("decode", {}).get("beam5", {})
              and r.get("decode_split", "test_2016_flickr") == "test_2016_flickr"]
    used = list(train.values()) + decode[-1:]
    peaks = sorted({r["peak_gemm_gflops"] for r in used if "peak_gemm_gflops" in r})
    bf16 = sorted({r["peak_gemm_gflops_bf16"] for r in used if "peak_gemm_gflops_bf16" in r})
    r0 = used[-1] if used else records[-1]
    native = "native" if r0.get("bf16_native") else "emulated: `precision=auto` computes in fp32 here"
    lines = [f"Machine: {cpu} ({', '.join(r0['cpu']['flags'])}), {r0['threads']} threads, torch {r0['torch']}; "
             f"peak fp32 GEMM measured at {', '.join(f'{p:.1f}' for p in peaks)} GFLOP/s"
             + (f", bf16 at {', '.join(f'{p:.1f}' for p in bf16)} ({native})" if bf16 else "")
             + ". Each row's limit is at the precision it computes in.", "",
             "| | sentences/s | limit (sentences/s) | share of the limit | FLOPs per sentence | BLEU |",
             "|---|---|---|---|---|---|"]
    for name, r in sorted(train.items()):
        t = r["train"]
        lines.append(f"| {name} training ({t['sentences_per_update']:.0f} sentences per update, "
                     f"{t['parameters'] / 1e6:.1f}M parameters, {t.get('limit_precision', 'fp32')}) | "
                     f"{t['sentences_per_s']:.1f} | "
                     f"{t['limit_sentences_per_s']:.1f} | {100 * t['share_of_limit']:.0f}% | "
                     f"{t['gflop_per_sentence']:.3f} GFLOP | |")
    if decode:
        r = decode[-1]
        params = f", {r['checkpoint_parameters'] / 1e6:.1f}M parameters" if "checkpoint_parameters" in r else ""
        what = r.get("label") or f"`{r['checkpoint']}`"
        lines.append(f"| *decoding test_2016_flickr, batch 64, decode time only: {what}{params}* | | | | | |")
        for key, lever in (("decode", "exact"), ("decode_fp16w", "fp16 weights"), ("decode_int8", "int8 weights"),
                           ("decode_shortlist", "shortlist"), ("decode_shortlist_fp16w", "shortlist + fp16 weights"),
                           ("decode_shortlist_int8", "shortlist + int8")):
            for name, label in (("beam5", "beam 5"), ("greedy", "greedy")):
                d = r.get(key, {}).get(name)
                if d is None:
                    continue
                how = lever + (" (K={}, N={})".format(*d["shortlist"]) if "shortlist" in d else "")
                limit = (f"{d['limit_sentences_per_s']:.1f} | {100 * d['share_of_limit']:.0f}% | "
                         f"{1000 * d['gflop_per_sentence']:.1f} MFLOP") if "limit_sentences_per_s" in d else "- | - | -"
                lines.append(f"| {label}, {how} | {d['sentences_per_s']:.1f} | {limit} | {d['bleu']:.2f} |")
        for key, how in (("latency", "exact"), ("latency_fp16w", "fp16 weights"), ("latency_int8", "int8 weights")):
            lat = r.get(key)
            if lat:
                bound = (f"; the fp32 weights' bandwidth bound {lat['bandwidth_bound_ms']:.1f} ms "
                         f"({lat['steps_per_sentence']:.0f} steps at {lat['bandwidth_gbs']:.0f} GB/s): "
                         f"{lat['times_bandwidth_bound']:.1f}x it") if "bandwidth_bound_ms" in lat else ""
                lines.append(f"| one sentence at a time ({lat['words']} words, batch 1, beam 5, {how}): ms per "
                             f"sentence, median of {lat['sentences']} (90th percentile {lat['ms_p90']:.1f}){bound} | "
                             f"{lat['ms_median']:.1f} ms | {lat['limit_ms']:.2f} ms | "
                             f"{100 * lat['share_of_limit']:.1f}% | {lat['mflop_per_sentence']:.1f} MFLOP | |")
    if busy:
        rows = busy[-1]["busy_core"]
        where = busy[-1]["cpu"]
        lines += ["", f"Training speed of `{busy[-1]['experiment']}` with another process spinning on one of the "
                  f"CPUs (ms per update; each case in its own process; {where['model']} with "
                  f"{', '.join(where['flags'])}, {busy[-1]['time'][:10]}):", "",
                  "| OpenMP wait policy | threads | idle machine | one core busy |", "|---|---|---|---|"]
        for policy in ("unset", "PASSIVE"):
            for threads in sorted({x["threads"] for x in rows}):
                cell = {x["busy_core"]: x["ms_per_update"] for x in rows
                        if x["omp_wait_policy"] == policy and x["threads"] == threads}
                lines.append(f"| {policy} | {threads} | {cell.get(False, '-')} | {cell.get(True, '-')} |")
    return "\n".join(lines)


def quality_table(results: str) -> str:
    """The quality-per-compute table: every labelled budget run (``--budget-minutes ... --label``)
    with its machine, updates, validation and test BLEU; then each label's mean and spread over seeds."""
    from nmt.config import TrainConfig
    records = [json.loads(line) for line in open(results) if line.strip()]
    runs = [r for r in records if r.get("label") and "budget" in r and "beam5" in r.get("decode", {})
            and r.get("decode_split", "test_2016_flickr") == "test_2016_flickr"]
    lines = ["| run | seed | machine: peak fp32 GEMM | minutes | updates (epochs) | valid BLEU | "
             "test BLEU, beam 5 | greedy |", "|---|---|---|---|---|---|---|---|"]
    groups: dict = {}  # (overrides but the seed, machine, minutes, processes) -> (label, [test BLEU])
    for r in runs:
        b, d = r["budget"], r["decode"]
        seed = next((o.split("=", 1)[1] for o in r["overrides"] if o.startswith("train.seed=")),
                    str(TrainConfig().seed))
        isa = "AVX-512" if "avx512f" in r["cpu"]["flags"] else "AVX2"
        valid = b["last_valid_bleu"] if b["scored"] == "last.pt" and "last_valid_bleu" in b else b["best_valid_bleu"]
        lines.append(f"| {r['label']} | {seed} | {isa}: {r['peak_gemm_gflops']:.0f} GFLOP/s, {r['time'][:10]} | "
                     f"{b['minutes']:.1f} | {b['updates']:,} ({b['epochs']}) | {valid:.2f} ({b['scored']}) | "
                     f"{d['beam5']['bleu']:.2f} | {d['greedy']['bleu']:.2f} |")
        data = Path(r.get("data", "multi30k")).name  # the corpus as given (earlier records: Multi30k itself)
        key = (tuple(sorted(o for o in r["overrides"] if not o.startswith("train.seed="))), isa, round(b["minutes"]),
               b.get("processes", 1), data)
        groups.setdefault(key, (f"{r['label']} ({isa}, {b['minutes']:.0f} min)", []))[1].append(
            (seed, d["beam5"]["bleu"]))
    lines += ["", "| run (the same overrides but the seed) | seeds of its runs | test BLEU, beam 5: mean (min - max) |",
              "|---|---|---|"]
    for label, runs in groups.values():
        scores = [bleu for _, bleu in runs]
        lines.append(f"| {label} | {', '.join(seed for seed, _ in runs)} | {sum(scores) / len(scores):.2f} "
                     f"({min(scores):.2f} - {max(scores):.2f}) |")
    return "\n".join(lines)


DOCS = ROOT / "docs" / "benchmarks.md"
def decode_roofline(ckpt: str, src_path: str, peak: float, repeats: int, extra: dict) -> dict:
    """``roofline.measure`` of beam 5 over one batch of 64 source lines (the first of the split)."""
    model, tok, _, _, _ = load_model(ckpt)
    tr = Translator(model, tok, beam5_options(extra),
                    batch_size=64, precision=extra.get("precision", "fp32"))
    lines = list(iter_lines(src_path))[:64]
    return roofline.measure(lambda: tr.translate(lines), repeats, count_flops(lambda: tr.translate(lines)), peak)


def roofline_table(results: str) -> str:
    """The per-class tables of the latest update and decoding rooflines in ``results``."""
    records = [json.loads(line) for line in open(results) if line.strip()]
    rows: List[str] = []
    train = lambda r: r.get("train", {}).get("roofline")  # noqa: E731
    experiments = list(dict.fromkeys(r["experiment"] for r in records if train(r)))  # each one's latest
    for name, get in [("a training update", lambda r, e=e: r["experiment"] == e and train(r)) for e in experiments] + \
            [("beam 5 over 64 sentences", lambda r: r.get("roofline_decode"))]:
        latest = next((r for r in reversed(records) if get(r)), None)
        if latest is not None:
            what = latest.get("label") if "roofline_decode" in latest and latest.get("label") else latest["experiment"]
            peak = get(latest).get("peak_gflops", latest["peak_gemm_gflops"])  # earlier records: fp32's
            where = f"{what}, {latest['time'][:10]}, peak {peak} GFLOP/s"
            rows += ([""] if rows else []) + roofline.table(f"{name} ({where})", get(latest))
    return "\n".join(rows)


ROOFLINE_MARKS = ("<!-- roofline-table:begin (scripts/benchmark.py --table --update-docs) -->",
                  "<!-- roofline-table:end -->")
MARKS = ("<!-- speed-table:begin (scripts/benchmark.py --table --update-docs) -->", "<!-- speed-table:end -->")
QUALITY_MARKS = ("<!-- quality-table:begin (scripts/benchmark.py --table --update-docs) -->",
                 "<!-- quality-table:end -->")


def update_docs(table: str, marks=MARKS, doc: Path = DOCS) -> None:
    """Replace a table in ``doc`` (docs/benchmarks.md by default) between ``marks`` with ``table``."""
    text = doc.read_text()
    start, end = text.index(marks[0]) + len(marks[0]), text.index(marks[1])
    doc.write_text(text[:start] + "\n" + table + "\n" + text[end:])


def recorded(p: argparse.ArgumentParser, results: str, doc: Path, marks, measure, table,
             checkpoint_help: str = "the checkpoint measured") -> None:
    """The command line of a benchmark of one checkpoint whose records are kept in ``results/RESULTS``
    (``deploy_benchmark.py``, ``constraints_benchmark.py``): ``--checkpoint`` measures it (``measure(args)``,
    a dict) and appends the record; ``--table [--update-docs]`` prints ``table(path)`` of the latest
    record and rewrites it in ``doc`` between ``marks``. ``p`` already holds the script's own options."""
    p.add_argument("--checkpoint", help=checkpoint_help)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--results", default=str(ROOT / "results" / results))
    p.add_argument("--table", action="store_true", help="print the table of the latest record and exit")
    p.add_argument("--update-docs", action="store_true",
                   help=f"with --table: rewrite it in {doc.relative_to(ROOT)}")
    args = p.parse_args()
    if args.table:
        text = table(args.results)
        print(text)
        if args.update_docs:
            update_docs(text, marks, doc)
        return
    if not args.checkpoint:
        p.error("--checkpoint is required (or --table)")
    line = json.dumps(measure(args))
    print(line)
    with open(args.results, "a") as f:
        f.write(line + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="bench_reference")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"),
                   help="directory with Multi30k's {train,val,test_2016_flickr}.{de,en}.gz")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--train-updates", type=int, default=250, help="timed updates (0: skip the speed test)")
    p.add_argument("--budget-minutes", type=float, default=0.0, help="train this long, then decode and score")
    p.add_argument("--budget-run", metavar="RUN_DIR",
                   help="with --budget-minutes: score this budget run, trained and stopped by an earlier call "
                        "whose scoring did not finish, instead of training one")
    p.add_argument("--nproc", type=int, default=1,
                   help="with --budget-minutes: train in this many data-parallel processes (torchrun)")
    p.add_argument("--checkpoint", help="decode and score this checkpoint (no training)")
    p.add_argument("--run-dir", default=str(ROOT / "runs" / "bench"))
    p.add_argument("--decode-bf16", action="store_true", help="bf16 autocast when decoding")
    p.add_argument("--label", help="what the checkpoint is, for the table")
    p.add_argument("--decode-split", default="test_2016_flickr", help="the split decoded (tune settings on val)")
    p.add_argument("--alpha", type=float, default=1.0, help="beam search length penalty (tune it on val)")
    p.add_argument("--coverage-penalty", type=float, default=0.0, metavar="BETA",
                   help="beam search coverage penalty (tune it on val; 0: off)")
    p.add_argument("--int8", action="store_true", help="also decode with int8 dynamic quantization")
    p.add_argument("--fp16-weights", action="store_true", help="also decode with fp16 weights (fp32 products)")
    p.add_argument("--shortlist", metavar="K,N", help="also decode with a lexical shortlist of K partners per source "
                                                      "token and N frequent tokens (built if the checkpoint has none)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="print a torch.profiler table of N training updates (during warm-up)")
    p.add_argument("--roofline", type=int, default=0, metavar="N",
                   help="where an update's (and, with a checkpoint, a decoding batch's) time goes by op class, "
                        "against the limit: N profiled calls each (scripts/roofline.py)")
    p.add_argument("--busy-core", action="store_true",
                   help="training speed with another process spinning on one CPU, per thread count and "
                        "OpenMP wait policy (each in its own process)")
    p.add_argument("--results", default=str(ROOT / "results" / "benchmarks.jsonl"))
    p.add_argument("--table", action="store_true", help="print the speed and quality tables from --results and exit")
    p.add_argument("--update-docs", nargs="?", const="all", choices=["all", "quality", "roofline"],
                   help="with --table: rewrite the tables in docs/benchmarks.md (between their markers); "
                        "'quality' or 'roofline': that table alone (the speed table describes the latest "
                        "record's machine)")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. train.precision=bf16")
    args = p.parse_args()
    if args.table:
        table, quality = speed_table(args.results), quality_table(args.results)
        print(table, quality, sep="\n\n")
        if args.update_docs == "all":
            update_docs(table)
        if args.update_docs in ("all", "roofline"):
            update_docs(roofline_table(args.results), ROOFLINE_MARKS)
        if args.update_docs in ("all", "quality"):
            update_docs(quality, QUALITY_MARKS)
        return
    if not os.path.exists(os.path.join(args.data, "train.de.gz")):
        raise SystemExit(f"Multi30k not found in {args.data}; fetch it with: nmt-data multi30k --out {args.data}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.busy_core:
        rows = busy_core_cost(args)
        line = json.dumps({"experiment": args.experiment, "overrides": args.overrides, "cpu": cpu_flags(),
                           "time": time.strftime("%Y-%m-%d %H:%M:%S"), "busy_core": rows, "cpus": os.cpu_count()})
        print(line)
        with open(args.results, "a") as f:
            f.write(line + "\n")
        return
    cfg, overrides = compose(args.experiment, args.data, args.overrides)
    peaks = Peaks()
    out = {"experiment": args.experiment, "data": args.data, "overrides": args.overrides,
           "time": time.strftime("%Y-%m-%d %H:%M:%S"),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_flags(),
           **peaks.record()}
    print(json.dumps({**peaks.record(), "threads": out["threads"]}), file=sys.stderr)
    if args.train_updates and not args.checkpoint:
        out["train"] = train_speed(cfg, args.warmup, args.train_updates, f"{args.run_dir}-speed-{int(time.time())}",
                                   peaks, args.profile, args.roofline)
        out.update(peaks.record())  # the best of the measurements so far
        print(json.dumps({"train": out["train"]}), file=sys.stderr)
    ckpt = args.checkpoint
    if args.budget_minutes and not ckpt:
        run_dir = args.budget_run or f"{args.run_dir}-{args.experiment}-{int(time.time())}"
        os.makedirs(os.path.dirname(run_dir), exist_ok=True)
        out["budget"] = (budget_summary(run_dir, args.budget_minutes) if args.budget_run else
                         budget_train(overrides, args.budget_minutes, run_dir, args.nproc))
        if args.nproc > 1:
            out["budget"]["processes"] = args.nproc
        ckpt = os.path.join(run_dir, "checkpoints", "last.pt")
        best = os.path.join(run_dir, "checkpoints", "best.pt")
        if os.path.exists(best):
            last_bleu = valid_bleu(ckpt, args.data, cfg.data.src_lang, cfg.data.tgt_lang)
            out["budget"]["last_valid_bleu"] = last_bleu
            if out["budget"]["best_valid_bleu"] > last_bleu:
                ckpt = best
        out["budget"]["scored"] = os.path.basename(ckpt)
        out["budget"]["run_dir"] = run_dir
    if ckpt:
        src = f"{args.data}/{args.decode_split}.{cfg.data.src_lang}.gz"
        ref = f"{args.data}/{args.decode_split}.{cfg.data.tgt_lang}.gz"
        out["decode_split"] = args.decode_split
        extra = {"precision": "bf16"} if args.decode_bf16 else {}
        extra["alpha"] = args.alpha
        peak = peaks.again(extra.get("precision", "fp32"))  # the precision decoding computes in, measured anew
        out.update(peaks.record())
        if args.coverage_penalty:
            extra["coverage_penalty"] = out["coverage_penalty"] = args.coverage_penalty
        out["checkpoint"] = ckpt
        if args.label:
            out["label"] = args.label
        out["checkpoint_parameters"] = count_parameters(load_model(ckpt).model)
        out["decode"] = decode(ckpt, src, ref, extra, peak)
        out["latency"] = latency(ckpt, src, peak, extra=extra)
        if args.roofline:
            out["roofline_decode"] = decode_roofline(ckpt, src, peak, args.roofline, extra)
        print(json.dumps({"latency": out["latency"]}), file=sys.stderr)
        compressed = [(flag, key) for flag, key in ((args.fp16_weights, "fp16"), (args.int8, "int8")) if flag]
        suffix = {"fp16": "fp16w", "int8": "int8"}
        for _, weights in compressed:
            out[f"decode_{suffix[weights]}"] = decode(ckpt, src, ref, {"alpha": args.alpha}, peak, weights=weights)
            out[f"latency_{suffix[weights]}"] = latency(ckpt, src, peak, extra={"alpha": args.alpha}, weights=weights)
        if args.shortlist:
            k, n = (int(x) for x in args.shortlist.split(","))
            listed = ensure_shortlist(ckpt, args.data, f"{args.run_dir}-shortlist")
            out["decode_shortlist"] = decode(listed, src, ref, extra, peak, shortlist=(k, n))
            for _, weights in compressed:
                out[f"decode_shortlist_{suffix[weights]}"] = decode(listed, src, ref, {"alpha": args.alpha}, peak,
                                                                    weights=weights, shortlist=(k, n))
    line = json.dumps(out)
    print(line)
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
