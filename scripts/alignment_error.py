"""Alignment error rate (AER, Och & Ney 2003) of a model's attention against reference alignments.

Aligns each (source, target) pair by forced decoding (``nmt.Model.align``, as ``nmt-score
--alignment``) and scores the links against a Pharaoh file (``i-j`` sure, ``i?j`` possible); or
scores a Pharaoh file of hypotheses (``--hypotheses``) directly. Prints one JSON object.

    python scripts/alignment_error.py --checkpoint RUN/checkpoints/best.pt \\
        --source test.de --target test.en --reference test.align
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt.data.alignments import alignment_error_rate, iter_alignments, reference_links  # noqa: E402
from nmt.data.corpus import read_lines  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", required=True, help="reference alignments (Pharaoh), one line per pair")
    p.add_argument("--checkpoint", help="align with this model (with --source and --target)")
    p.add_argument("--source")
    p.add_argument("--target")
    p.add_argument("--hypotheses", help="score these alignments (Pharaoh) instead of a model's")
    args = p.parse_args()
    reference = reference_links(args.reference)
    if args.hypotheses:
        hyps = [{(i, j) for i, j, _ in links} for links in iter_alignments(args.hypotheses)]
    else:
        if not (args.checkpoint and args.source and args.target):
            p.error("give --hypotheses, or --checkpoint with --source and --target")
        import nmt
        from nmt.data.alignments import links_of
        lines = nmt.load(args.checkpoint).align(read_lines(args.source), read_lines(args.target))
        hyps = [links_of(line) for line in lines]
    if len(hyps) != len(reference):
        raise SystemExit(f"{len(hyps)} aligned pairs but {len(reference)} reference lines in {args.reference}")
    print(json.dumps({"aer": round(alignment_error_rate(hyps, reference), 2), "pairs": len(hyps),
                      "links": sum(len(h) for h in hyps), "reference": args.reference,
                      "checkpoint": args.checkpoint, "hypotheses": args.hypotheses}))


if __name__ == "__main__":
    main()
