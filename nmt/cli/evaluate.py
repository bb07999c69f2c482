"""nmt-evaluate: sacrebleu BLEU and chrF (TER on request) of a hypothesis file against references,
for the whole corpus or (``--sentence``) per line."""
from __future__ import annotations

import argparse
import json

from ..data.corpus import iter_lines
from ..errors import NmtError
from . import prepare_process, reported


def main(argv=None) -> None:
    prepare_process()
    p = argparse.ArgumentParser(prog="nmt-evaluate", description="Score detokenized translations with sacrebleu "
                                "(BLEU and chrF, TER with --ter), printing each score with its signature.")
    p.add_argument("hyp", help="hypothesis file, one translation per line ('-' for stdin)")
    p.add_argument("refs", nargs="+", metavar="REF", help="reference file(s), plain or .gz, same line count")
    p.add_argument("--ter", action="store_true", help="also compute TER")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--sentence", choices=["tsv", "jsonl"], nargs="?", const="tsv",
                   help="per-line sentence BLEU and chrF instead of corpus scores: tsv ('line<TAB>bleu<TAB>chrf', "
                        "the default) or jsonl")
    args = p.parse_args(argv)
    from ..eval.bleu import score, sentence_scores
    metrics = ("bleu", "chrf", "ter") if args.ter else ("bleu", "chrf")
    with reported("nmt-evaluate"):
        if [args.hyp, *args.refs].count("-") > 1:
            raise NmtError("only one of the files can be '-' (stdin)")
        hyps = list(iter_lines(args.hyp))  # "-": stdin, decoded as strictly as a file
        refs = [list(iter_lines(r)) for r in args.refs]
        names = [args.hyp] + args.refs
        if args.sentence:
            _print(args, metrics, sentence_scores(hyps, refs, metrics=metrics, names=names))
        else:
            _print(args, metrics, score(hyps, refs, metrics=metrics, names=names))


def _print(args, metrics, out) -> None:
    rows = result = out
    if args.sentence == "jsonl":
        for i, row in enumerate(rows, start=1):
            print(json.dumps({"line": i, **row}))
    elif args.sentence:
        print("line\t" + "\t".join(metrics))
        for i, row in enumerate(rows, start=1):
            print(f"{i}\t" + "\t".join(f"{row[m]:.4f}" for m in metrics))
    elif args.json:
        print(json.dumps({k: {"score": v["score"], "signature": v["signature"]} for k, v in result.items()}))
    else:
        for r in result.values():
            print(f"{r['text']}\n  signature: {r['signature']}")


if __name__ == "__main__":
    main()
