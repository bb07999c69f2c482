"""nmt-evaluate: sacrebleu BLEU and chrF (TER on request) of a hypothesis file against references."""
from __future__ import annotations

import argparse
import json
import sys

from ..data.corpus import CorpusError, iter_lines
from ..eval.bleu import LineCountError, score


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="nmt-evaluate", description="Score detokenized translations with sacrebleu "
                                "(BLEU and chrF, TER with --ter), printing each score with its signature.")
    p.add_argument("hyp", help="hypothesis file, one translation per line ('-' for stdin)")
    p.add_argument("refs", nargs="+", metavar="REF", help="reference file(s), plain or .gz, same line count")
    p.add_argument("--ter", action="store_true", help="also compute TER")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args(argv)
    try:
        hyps = [line.rstrip("\r\n") for line in sys.stdin] if args.hyp == "-" else list(iter_lines(args.hyp))
        refs = [list(iter_lines(r)) for r in args.refs]
        result = score(hyps, refs, metrics=("bleu", "chrf", "ter") if args.ter else ("bleu", "chrf"),
                       names=[args.hyp] + args.refs)
    except (CorpusError, LineCountError) as e:
        sys.exit(f"nmt-evaluate: error: {e}")
    if args.json:
        print(json.dumps({k: {"score": v["score"], "signature": v["signature"]} for k, v in result.items()}))
    else:
        for r in result.values():
            print(f"{r['text']}\n  signature: {r['signature']}")


if __name__ == "__main__":
    main()
