#!/usr/bin/env python
"""Deployment benchmark: one checkpoint through PyTorch (fp32, fp16 weights, int8) and through its
exported bundle on ONNX Runtime (fp32, int8), on Multi30k test_2016_flickr; prints one JSON object.

  python scripts/deploy_benchmark.py --checkpoint runs/m30k/checkpoints/best.pt
  python scripts/deploy_benchmark.py --table [--update-docs]   # the table from results/deploy.jsonl

Per backend: beam 5 and greedy at batch 64 (sentences/s, model loaded first, not timed), latency of
one 15-word sentence at a time (batch 1, beam 5; median and 90th percentile ms), BLEU, the share of
lines identical to PyTorch fp32, and a whole ``nmt-translate`` process translating one line (wall
seconds, peak resident memory). The limit: the fp32 model's matmul FLOPs per sentence (counted by
torch) at the peak GEMM rate measured at the start. Run it alone on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from benchmark import beam5_options, count_flops, cpu_flags, peak_gemm_gflops, recorded  # noqa: E402

import nmt  # noqa: E402
from nmt.data.corpus import iter_lines  # noqa: E402
from nmt.eval.bleu import score  # noqa: E402
from nmt.search import SearchOptions  # noqa: E402
from nmt.translator import Translator  # noqa: E402

DOCS = ROOT / "docs" / "deployment.md"
MARKS = ("<!-- deploy-table:begin (scripts/deploy_benchmark.py --table --update-docs) -->",
         "<!-- deploy-table:end -->")
# backend name -> (whether it is the exported bundle, nmt.load's keyword arguments / nmt-translate flags)
BACKENDS = {"PyTorch fp32": (False, {}, []),
            "PyTorch fp16 weights": (False, {"fp16_weights": True}, ["--fp16-weights"]),
            "PyTorch int8": (False, {"int8": True}, ["--int8"]),
            "ONNX Runtime fp32": (True, {}, []), "ONNX Runtime int8": (True, {}, [])}
THREADS = 2


def timed_translate(model, lines, options, batch_size):
    tr = Translator(model.model, model.tokenizer, options, batch_size=batch_size, precision=model.precision,
                    src_prefix=model.src_prefix, max_src_len=model.max_src_len)
    tr.translate(lines[:batch_size])  # warm-up
    start = time.perf_counter()
    hyps = [n[0][0] for n in tr.translate(lines)]
    return hyps, time.perf_counter() - start


def latency_ms(model, lines, words: int = 15, count: int = 40):
    alone = [line for line in lines if len(line.split()) == words][:count]
    tr = Translator(model.model, model.tokenizer, beam5_options({}), batch_size=1, precision=model.precision,
                    src_prefix=model.src_prefix, max_src_len=model.max_src_len)
    tr.translate(alone[:3])
    times = []
    for line in alone:
        start = time.perf_counter()
        tr.translate([line])
        times.append(1000 * (time.perf_counter() - start))
    p90 = sorted(times)[int(0.9 * (len(times) - 1))]
    return {"ms_median": round(statistics.median(times), 2), "ms_p90": round(p90, 2), "sentences": len(alone),
            "words": words}


def process(path: str, flags, line: str) -> dict:
    """A whole ``nmt-translate`` process translating one line: wall seconds and peak resident memory."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(line + "\n")
    cmd = [str(Path(sys.executable).parent / "nmt-translate"), path, "-i", f.name, "-o", os.devnull, "--quiet",
           "--threads", str(THREADS), *flags]
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], "
             "check=True); print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True).stdout
    os.unlink(f.name)
    seconds, rss_kb = out.split()
    return {"process_seconds": round(float(seconds), 2), "peak_rss_mb": round(int(rss_kb) / 1024, 1)}


def measure(args) -> dict:
    torch.set_num_threads(THREADS)
    peak = peak_gemm_gflops()
    src = list(iter_lines(f"{args.data}/{args.split}.de.gz"))
    ref = list(iter_lines(f"{args.data}/{args.split}.en.gz"))
    out = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "checkpoint": args.checkpoint, "split": args.split,
           "cpu": cpu_flags(), "threads": THREADS, "peak_gemm_gflops": round(peak, 1), "backends": {}}
    bundles = {}
    for int8 in (False, True):
        bundles[int8] = tempfile.mkdtemp(prefix="nmt-deploy-bench-")
        subprocess.run([str(Path(sys.executable).parent / "nmt-export"), args.checkpoint, "-o", bundles[int8],
                        *(["--int8"] if int8 else [])], check=True)
    reference = None
    for name, (exported, kwargs, flags) in BACKENDS.items():
        path = bundles["int8" in name] if exported else args.checkpoint
        model = nmt.load(path, threads=THREADS) if exported else nmt.load(path, **kwargs)
        row = {}
        for kind, options in (("beam5", beam5_options({})), ("greedy", SearchOptions(strategy="greedy"))):
            hyps, seconds = timed_translate(model, src, options, 64)
            row[kind] = {"sentences_per_s": round(len(src) / seconds, 1)}
            if kind == "beam5":
                row["bleu"] = round(score(hyps, [ref])["bleu"]["score"], 2)
                reference = reference or hyps
                row["identical_lines"] = sum(a == b for a, b in zip(hyps, reference))
        if name == "PyTorch fp32":
            for kind, options in (("beam5", beam5_options({})), ("greedy", SearchOptions(strategy="greedy"))):
                tr = Translator(model.model, model.tokenizer, options, batch_size=64)
                out[f"gflop_per_sentence_{kind}"] = count_flops(lambda: tr.translate(src[:256])) / 256 / 1e9  # noqa: B023
        for kind in ("beam5", "greedy"):
            rate = row[kind]["sentences_per_s"]
            row[kind]["share_of_limit"] = round(rate * out[f"gflop_per_sentence_{kind}"] / peak, 3)
        row["latency"] = latency_ms(model, src)
        row.update(process(path, [] if exported else flags, src[0]))
        out["backends"][name] = row
        print(json.dumps({name: row}), file=sys.stderr)
    out["lines"] = len(src)
    return out


def table(results: str) -> str:
    r = [json.loads(line) for line in open(results) if line.strip()][-1]
    rows = [f"Measured {r['time'][:10]} on {r['cpu']['model']} ({r['threads']} threads, peak fp32 GEMM "
            f"{r['peak_gemm_gflops']} GFLOP/s), {os.path.basename(os.path.dirname(os.path.dirname(r['checkpoint'])))}, "
            f"{r['split']} ({r['lines']} lines); share = sentences/s x the fp32 model's matmul FLOPs per sentence "
            f"({r['gflop_per_sentence_beam5']:.4f} GFLOP beam 5, {r['gflop_per_sentence_greedy']:.4f} greedy) / peak.",
            "", "| backend | beam 5, batch 64: sent/s (share) | greedy: sent/s (share) | one 15-word sentence, beam 5: "
            "ms median (p90) | BLEU | lines identical to PyTorch fp32 | nmt-translate one line: s, peak MB |",
            "|---|---|---|---|---|---|---|"]
    for name, b in r["backends"].items():
        rows.append(f"| {name} | {b['beam5']['sentences_per_s']} ({b['beam5']['share_of_limit']:.0%}) | "
                    f"{b['greedy']['sentences_per_s']} ({b['greedy']['share_of_limit']:.0%}) | "
                    f"{b['latency']['ms_median']} ({b['latency']['ms_p90']}) | {b['bleu']} | "
                    f"{b['identical_lines']} / {r['lines']} | {b['process_seconds']} s, {b['peak_rss_mb']:.0f} MB |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    recorded(p, "deploy.jsonl", DOCS, MARKS, measure, table, "the checkpoint measured (exported to a temporary bundle)")


if __name__ == "__main__":
    main()
