#!/usr/bin/env python
"""Lexical constraints on Multi30k: the terminology evaluation. Prints one JSON object.

  python scripts/constraints_benchmark.py --checkpoint runs/m30k/checkpoints/best.pt
  python scripts/constraints_benchmark.py --table [--update-docs]   # the table from results/constraints.jsonl

Terms are drawn from the references (seeded): per line, one or two reference words of 4 letters or
more (sometimes with the next word, a two-word phrase) that the unconstrained beam-5 translation
lacks; a line whose translation already holds every such word gets none. Each beam width translates
the split without and with the terms as constraints: BLEU, the share of terms in the output (whole
words, punctuation stripped), lines where search reported a term unmet, and sentences/s at batch 64
(model loaded and warmed first; the median of ``--repeats`` runs, the settings interleaved). Run it
alone on the machine.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from benchmark import cpu_flags, peak_gemm_gflops, recorded  # noqa: E402

import nmt  # noqa: E402
from nmt.data.corpus import iter_lines  # noqa: E402
from nmt.eval.bleu import score  # noqa: E402
from nmt.search import decoding_options  # noqa: E402
from nmt.translator import Translator  # noqa: E402

DOCS = ROOT / "docs" / "after-training.md"
MARKS = ("<!-- constraints-table:begin (scripts/constraints_benchmark.py --table --update-docs) -->",
         "<!-- constraints-table:end -->")
THREADS, BATCH, PUNCTUATION = 2, 64, ".,;:!?\"'()"


def words(text: str):
    return [w.strip(PUNCTUATION) for w in text.split() if w.strip(PUNCTUATION)]


def holds(text: str, phrase: str) -> bool:
    out, want = words(text), phrase.split()
    return any(out[i:i + len(want)] == want for i in range(len(out) - len(want) + 1))


def draw_terms(refs, hyps, seed: int = 1):
    """Per line, one or two reference phrases its translation lacks (see the module docstring)."""
    rng = random.Random(seed)
    out = []
    for ref, hyp in zip(refs, hyps):
        ref_words, have = words(ref), set(words(hyp))
        missing = [i for i, w in enumerate(ref_words) if len(w) >= 4 and w.isalpha() and w not in have]
        picked = rng.sample(missing, min(len(missing), rng.choice([1, 2])))
        phrases = []
        for i in sorted(picked):
            two = i + 1 < len(ref_words) and rng.random() < 0.25
            phrases.append(" ".join(ref_words[i:i + 2 if two else i + 1]))
        out.append(phrases)
    return out


def run(model, src, beam: int, constraints=None):
    warnings = []
    tr = Translator(model.model, model.tokenizer, decoding_options(beam), batch_size=BATCH,
                    precision=model.precision, src_prefix=model.src_prefix, max_src_len=model.max_src_len,
                    warn=warnings.append)
    tr.translate(src[:BATCH], None, None if constraints is None else constraints[:BATCH])  # warm-up
    warnings.clear()
    start = time.perf_counter()
    hyps = [n[0][0] for n in tr.translate(src, None, constraints)]
    return hyps, time.perf_counter() - start, len(warnings)


def measure(args) -> dict:
    torch.set_num_threads(THREADS)
    src = list(iter_lines(f"{args.data}/{args.split}.de.gz"))
    ref = list(iter_lines(f"{args.data}/{args.split}.en.gz"))
    model = nmt.load(args.checkpoint)
    out = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "checkpoint": args.checkpoint, "split": args.split,
           "cpu": cpu_flags(), "threads": THREADS, "peak_gemm_gflops": round(peak_gemm_gflops(), 1),
           "lines": len(src), "rows": []}
    free5, _, _ = run(model, src, 5)
    terms = draw_terms(ref, free5, args.seed)
    total = sum(len(t) for t in terms)
    out.update(terms=total, lines_with_terms=sum(bool(t) for t in terms))
    for beam in (5, 10):
        rows, rates = {}, {False: [], True: []}
        for _ in range(args.repeats):  # interleaved, so that the machine's drift falls on both alike
            for constrained in (False, True):
                hyps, seconds, unmet = run(model, src, beam, terms if constrained else None)
                rates[constrained].append(len(src) / seconds)
                rows[constrained] = {
                    "beam": beam, "constrained": constrained, "bleu": round(score(hyps, [ref])["bleu"]["score"], 2),
                    "term_share": round(sum(holds(h, p) for h, ts in zip(hyps, terms) for p in ts) / max(total, 1), 4),
                    "unmet_lines": unmet}
        for constrained, row in rows.items():
            row.update(sentences_per_s=round(statistics.median(rates[constrained]), 1),
                       sentences_per_s_range=[round(min(rates[constrained]), 1), round(max(rates[constrained]), 1)])
            out["rows"].append(row)
            print(json.dumps(row), file=sys.stderr)
    return out


def table(results: str) -> str:
    r = [json.loads(line) for line in open(results) if line.strip()][-1]
    speed = {(row["beam"], row["constrained"]): row["sentences_per_s"] for row in r["rows"]}
    rows = [f"Measured {r['time'][:10]} on {r['cpu']['model']} ({r['threads']} threads, peak fp32 GEMM "
            f"{r['peak_gemm_gflops']} GFLOP/s), {Path(r['checkpoint']).parent.parent.name}, {r['split']} "
            f"({r['lines']} lines): {r['terms']} reference terms on {r['lines_with_terms']} lines, each missing from "
            f"the unconstrained beam-5 translation.", "",
            "| beam | constraints | BLEU | terms in the output | lines reported unmet | sent/s (batch 64): median "
            "(range) | speed vs. unconstrained |", "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        ratio = row["sentences_per_s"] / speed[(row["beam"], False)]
        low, high = row.get("sentences_per_s_range", [row["sentences_per_s"]] * 2)
        rows.append(f"| {row['beam']} | {'yes' if row['constrained'] else 'no'} | {row['bleu']} | "
                    f"{row['term_share']:.1%} | {row['unmet_lines']} | {row['sentences_per_s']} ({low}-{high}) | "
                    f"{ratio:.2f}x |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1, help="for drawing the terms")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each setting, interleaved (median reported)")
    recorded(p, "constraints.jsonl", DOCS, MARKS, measure, table)


if __name__ == "__main__":
    main()
