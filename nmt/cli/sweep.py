"""The end of a Hydra multirun (``nmt-train -m ...``): one table of its jobs, printed and written as
``multirun.tsv`` in the sweep folder. A Hydra callback (``configs/train.yaml``), reading what each job
left in its run directory (``summary.json``, ``.hydra/overrides.yaml``), so it works with any
launcher, also one that ran the jobs on other machines."""
from __future__ import annotations

import json
import os
import sys
from typing import List

from hydra.experimental.callback import Callback

from ..runpaths import RunPaths

COLUMNS = ("job", "overrides", "best_valid_bleu", "best_step", "test_bleu", "steps", "stop_reason", "run_dir")


def sweep_rows(sweep_dir: str) -> List[dict]:
    """One row per job folder (numbered as Hydra numbers them), in job order."""
    rows = []
    jobs = sorted((d for d in os.listdir(sweep_dir) if d.isdigit()), key=int) if os.path.isdir(sweep_dir) else []
    for job in jobs:
        folder = os.path.join(sweep_dir, job)
        row = {"job": job, "run_dir": folder, "overrides": "", "best_valid_bleu": "", "best_step": "",
               "test_bleu": "", "steps": "", "stop_reason": "failed or unfinished"}
        try:
            with open(os.path.join(folder, ".hydra", "overrides.yaml"), encoding="utf-8") as f:
                row["overrides"] = " ".join(line[2:].strip() for line in f if line.startswith("- "))
        except OSError:
            pass
        try:
            with open(RunPaths(folder).summary, encoding="utf-8") as f:
                s = json.load(f)
            row.update(best_valid_bleu=f"{s['best_bleu']:.2f}", best_step=s["best_step"], steps=s["steps"],
                       stop_reason=s["stop_reason"], run_dir=s["run_dir"],
                       test_bleu=f"{s['test']['bleu']['score']:.2f}" if s.get("test") else "")
        except (OSError, ValueError, KeyError, TypeError):
            pass
        rows.append(row)
    return rows


def write_summary(sweep_dir: str, out=sys.stderr) -> str:
    rows = sweep_rows(sweep_dir)
    path = os.path.join(sweep_dir, "multirun.tsv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(COLUMNS) + "\n")
        f.writelines("\t".join(str(r[c]) for c in COLUMNS) + "\n" for r in rows)
    # printed: only the overrides that differ between jobs (the file keeps every one)
    split = [r["overrides"].split() for r in rows]
    common = set.intersection(*map(set, split)) if len(rows) > 1 else set()
    rows = [dict(r, overrides=" ".join(o for o in parts if o not in common)) for r, parts in zip(rows, split)]
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in COLUMNS if c != "run_dir"}
    print(f"== {len(rows)} jobs in {sweep_dir} (also {path}) ==", file=out)
    if common:
        print("every job: " + " ".join(o for o in split[0] if o in common), file=out)
    print("  ".join(c.ljust(w) for c, w in widths.items()), file=out)
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in widths.items()), file=out)
    return path


class MultirunSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        try:
            write_summary(config.hydra.sweep.dir)
        except OSError as e:
            print(f"nmt-train: warning: no multirun summary ({e})", file=sys.stderr)
