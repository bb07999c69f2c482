#!/usr/bin/env python
"""How the data pipeline scales: time to the first update and peak memory against corpus size.

  python scripts/data_scaling.py --repeats 1 10 100            # 29k, 290k, 2.9M pairs
  python scripts/data_scaling.py --repeats 1 10 -- train.threads=1

The training corpus is Multi30k's train split repeated N times (written once into --workdir, never
beside the original files). Each size is trained for one update with the ``multi30k_de_en``
experiment (validation on Multi30k val, no test translation), twice: a first run that trains
sentencepiece and encodes the corpus, and a second one into a new run directory that reuses the
first run's sentencepiece model and encoded-corpus cache. Measured per run, from the outside:
seconds from launch to the first update's log line, and the training process's peak resident
memory (VmHWM, polled); from its log, the sentencepiece process's own peak. Prints a Markdown table
and one JSON object per run.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def repeated_corpus(data: Path, repeats: int, workdir: Path) -> Path:
    """WORKDIR/train_xN.{de,en}: Multi30k train, N times over (plain text)."""
    prefix = workdir / f"train_x{repeats}"
    for lang in ("de", "en"):
        out = Path(f"{prefix}.{lang}")
        if out.exists():
            continue
        with gzip.open(data / f"train.{lang}.gz", "rb") as f:
            block = f.read()
        tmp = out.with_suffix(out.suffix + ".tmp")
        with open(tmp, "wb") as f:
            for _ in range(repeats):
                f.write(block)
        tmp.rename(out)
    return prefix


def peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(command, overrides) -> dict:
    """Launch a training run; the seconds to its first update's log line and its peak memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(command + overrides, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    result = {"first_update_s": None, "spm_s": None, "spm_peak_mb": None, "encode_s": None}
    log_lines = []

    def read():
        for line in proc.stderr:
            log_lines.append(line)
            if result["first_update_s"] is None and re.search(r"step 1 \| epoch", line):
                result["first_update_s"] = time.perf_counter() - start
            if m := re.search(r"sentencepiece: trained on \d+ sentences in ([\d.]+) s \(its process peaked at (\d+) MB",
                              line):
                result["spm_s"], result["spm_peak_mb"] = float(m.group(1)), float(m.group(2))
            if m := re.search(r"train: encoded \d+ pairs in ([\d.]+) s", line):
                result["encode_s"] = float(m.group(1))
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, peak_rss_mb(proc.pid))
        time.sleep(0.1)
    reader.join()
    if proc.returncode != 0:
        sys.exit("".join(log_lines[-30:]) + f"\ntraining failed with exit status {proc.returncode}")
    result.update(peak_rss_mb=peak, total_s=time.perf_counter() - start)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"),
                   help="directory with Multi30k's train/val .gz files")
    p.add_argument("--repeats", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--workdir", help="where the repeated corpora and runs go (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--command", default="nmt-train", help="the training command (default: nmt-train)")
    p.add_argument("overrides", nargs="*", help="extra nmt-train overrides")
    args = p.parse_args()
    data = Path(args.data)
    if not (data / "train.de.gz").exists():
        sys.exit(f"no Multi30k under {data} (nmt-data multi30k fetches it)")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="nmt-scaling-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for n in args.repeats:
            prefix = repeated_corpus(data, n, workdir)
            common = ["experiment=multi30k_de_en", f"data.train={prefix}", f"data.valid={data / 'val'}",
                      "data.test=null", "train.max_steps=1", "train.log_every=1", "train.plots=false",
                      "train.tensorboard=false", f"data.cache_dir={workdir / f'cache_x{n}'}"] + args.overrides
            cmd = args.command.split()
            first_dir = workdir / f"run_x{n}"
            first = run(cmd, common + [f"run_dir={first_dir}"])
            again = run(cmd, common + [f"run_dir={workdir / f'run_x{n}_again'}",
                                       f"data.spm.model={first_dir / 'spm.model'}"])
            pairs = 29000 * n
            for label, r in (("first run", first), ("again (cached)", again)):
                print(json.dumps({"pairs": pairs, "run": label, **r}), flush=True)
            rows.append((pairs, first, again))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n| training pairs | to first update | sentencepiece (its own peak) | encoding | peak RSS "
          "| again, cached: to first update | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for pairs, a, b in rows:
        spm = f"{a['spm_s']:.1f} s ({a['spm_peak_mb']:.0f} MB)" if a["spm_s"] is not None else "-"
        enc = f"{a['encode_s']:.1f} s" if a["encode_s"] is not None else "-"
        print(f"| {pairs:,} | {a['first_update_s']:.1f} s | {spm} | {enc} | {a['peak_rss_mb']:.0f} MB "
              f"| {b['first_update_s']:.1f} s | {b['peak_rss_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
