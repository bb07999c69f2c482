"""Paired training-speed A/B: is variant B's update faster than A's, on this machine, now?

This host's speed drifts by tens of percent within minutes (the peak GEMM rate measured 99-173
GFLOP/s in one day), so two runs one after the other compare the host as much as the code. Here
both variants train side by side in one process: two runs built from the same experiment and seed,
each with its own overrides (A and B), and every pair is one update of A and one of B, timed alone,
in alternating order (AB, BA, ...), on the same batch groups unless the overrides change batching.
Each pair shares the host's moment; the median of the pairs' ratios of seconds per sentence is the
answer, with their quartiles.

    python scripts/ab_speed.py --experiment multi30k_de_en --data DATA --a "" --b "train.max_tokens=2400"

``paired(...)`` takes hooks instead of overrides for a code change measured before it is adopted
(a function switched on around B's updates). Records go to results/benchmarks.jsonl ("ab").
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import ROOT, compose, cpu_flags  # noqa: E402

from nmt.training.build import build_run  # noqa: E402
from nmt.training.distributed import Dist  # noqa: E402
from nmt.training.loop import epoch_updates  # noqa: E402
from nmt.training.update import run_update  # noqa: E402

Hook = Callable[[bool], None]  # switched on (True) before a variant's update, off (False) after it


def quartiles(xs: Sequence[float]):
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def paired(experiment: str, data: str, overrides: Dict[str, List[str]], updates: int = 60, warmup: int = 10,
           hooks: Optional[Dict[str, Hook]] = None) -> dict:
    """Each variant (name -> its overrides; exactly two) trains its own run (the same seed: the same
    batch groups unless the overrides change batching), one update each per pair in alternating
    order; returns each one's mean ms per update and sentences/s over the ``updates`` after
    ``warmup``, and the quartiles of the pairs' ratios of seconds per sentence (first / second)."""
    names = list(overrides)
    assert len(names) == 2, "two variants"
    hooks = hooks or {}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="ab-speed-") as tmp:
        for name in names:
            cfg, _ = compose(experiment, data, overrides[name])
            runs[name] = build_run(cfg, f"{tmp}/{name}", torch.device("cpu"), Dist())
        times: Dict[str, List[float]] = {name: [] for name in names}  # seconds per update
        counts: Dict[str, List[int]] = {name: [] for name in names}  # sentences per update

        def groups(run):  # epoch after epoch
            while True:
                yield from epoch_updates(run)

        streams = {name: groups(runs[name]) for name in names}
        for i in range(warmup + updates):
            for name in (names if i % 2 == 0 else names[::-1]):
                group, hook = next(streams[name]), hooks.get(name, lambda on: None)
                hook(True)
                try:
                    start = time.perf_counter()
                    run_update(runs[name], group)
                    seconds = time.perf_counter() - start
                finally:
                    hook(False)
                if i >= warmup:
                    times[name].append(seconds)
                    counts[name].append(sum(len(idx) for idx in group))
        for run in runs.values():
            run.close()
    a, b = names
    # per pair, A's seconds per sentence over B's (the same groups unless the overrides change batching)
    ratios = [(ta / na) / (tb / nb) for ta, na, tb, nb in zip(times[a], counts[a], times[b], counts[b])]
    return {"variants": {n: {"overrides": overrides[n], "ms_per_update": round(1e3 * statistics.mean(times[n]), 1),
                             "sentences_per_s": round(sum(counts[n]) / sum(times[n]), 1)} for n in names},
            "updates": updates, "warmup": warmup,
            "time_ratio_quartiles": [round(r, 3) for r in quartiles(ratios)]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="multi30k_de_en")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    p.add_argument("--a", default="", help="variant A's overrides, one shell-quoted string ('' for none)")
    p.add_argument("--b", required=True, help="variant B's overrides")
    p.add_argument("--updates", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--results", default=str(ROOT / "results" / "benchmarks.jsonl"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = paired(args.experiment, args.data, {"A": shlex.split(args.a), "B": shlex.split(args.b)}, args.updates,
                 args.warmup)
    record = {"experiment": args.experiment, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "cpu": cpu_flags(), "ab": out}
    va, vb = out["variants"]["A"], out["variants"]["B"]
    q1, med, q3 = out["time_ratio_quartiles"]
    print(f"A {va['overrides']}: {va['ms_per_update']} ms per update, {va['sentences_per_s']} sentences/s\n"
          f"B {vb['overrides']}: {vb['ms_per_update']} ms per update, {vb['sentences_per_s']} sentences/s\n"
          f"A's time / B's, per pair: median {med:.3f} (quartiles {q1:.3f} - {q3:.3f}; above 1: B is faster)")
    with open(args.results, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
