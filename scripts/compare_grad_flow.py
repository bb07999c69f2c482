#!/usr/bin/env python
"""Draw the gradient-flow curves of several runs side by side (the last record of each run).

  nmt-train -m debug=grad_flow encoder=birnn,bigru,bilstm hydra.sweep.dir=runs/grad_flow
  python scripts/compare_grad_flow.py runs/grad_flow/* -o grad_flow.png

Prints, per run, the ratio of the mean gradient norm at distance 20 (or the farthest recorded) to
that at distance 1, for the encoder states.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nmt.plots import grad_flow  # noqa: E402
from nmt.training.metrics import read_metrics  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories trained with train.grad_flow_every > 0")
    p.add_argument("-o", "--output", default="grad_flow.png")
    args = p.parse_args()
    records, labels = [], []
    for run in args.runs:
        if not os.path.isdir(run):  # e.g. a Hydra sweep's multirun.yaml matched by runs/sweep/*
            continue
        flows = [r for r in read_metrics(os.path.join(run, "metrics.jsonl")) if r.get("kind") == "grad_flow"]
        if not flows:
            print(f"{run}: no grad_flow records (train.grad_flow_every=0?)", file=sys.stderr)
            continue
        try:
            from omegaconf import OmegaConf
            cfg = OmegaConf.load(os.path.join(run, "config.yaml"))
            label = f"{cfg.encoder.cell}{' bi' if cfg.encoder.bidirectional else ''} (update {flows[-1]['step']})"
        except OSError:
            label = os.path.basename(run.rstrip("/"))
        records.append(flows[-1])
        labels.append(label)
        enc = flows[-1]["encoder"]
        far = min(20, len(enc) - 1)
        print(json.dumps({"run": run, "label": label, "distance": far, "ratio_far_to_1": enc[far] / enc[1]}))
    if records:
        grad_flow(records, args.output, labels)
        print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
