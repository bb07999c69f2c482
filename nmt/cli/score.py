"""nmt-score: the model's log-probability of given translations (forced decoding), per line."""
from __future__ import annotations

import argparse
import sys

from ..config import InferenceSettings
from . import prepare_process, reported, work_signals
from .options import (
    add_batch_flags,
    add_factors_flag,
    add_threads_flag,
    factor_files,
    factor_inputs,
    threads_and_device,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nmt-score", description="Score given translations with a checkpoint: per "
                                "input line, 'logprob<TAB>mean<TAB>tokens' (natural log of p(target + EOS | source), "
                                "its mean per target piece, the number of pieces + EOS), in input order; with "
                                "--alignment, the word alignment as a fourth column.")
    p.add_argument("checkpoint", help="a checkpoint file or a run directory (its checkpoints/best.pt)")
    p.add_argument("-s", "--source", required=True, help="source sentences, plain or .gz ('-': stdin)")
    p.add_argument("-t", "--target", required=True, help="their translations, same line count")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--alignment", action="store_true",
                   help="add a fourth column: the pair's word alignment from attention while the model reads the "
                        "given translation (Pharaoh 'src-tgt', whitespace words from 0; as nmt-translate --alignment "
                        "gives for its own output)")
    add_factors_flag(p)
    add_batch_flags(p)
    p.add_argument("--device", default=InferenceSettings.device, help="cpu, cuda or auto (default %(default)s)")
    add_threads_flag(p)
    return p


def main(argv=None) -> None:
    prepare_process()
    args = build_parser().parse_args(argv)
    from ..api import load
    from ..data.corpus import CorpusError, iter_lines
    from ..data.factors import read_factor_lines
    from ..deploy.bundle import model_files
    from ..outputs import atomic_output, check_output
    from ..translator import Translator
    with reported("nmt-score", "" if args.output == "-" else f"{args.output} not written"):
        if args.source == "-" and args.target == "-":
            raise CorpusError("--source and --target cannot both be stdin")
        factors = factor_files(args.src_factors)
        check_output(args.output, [args.source, args.target, *factors.values(), *model_files(args.checkpoint)])
        sources, targets = list(iter_lines(args.source)), list(iter_lines(args.target))
        if len(sources) != len(targets):
            raise CorpusError(f"line counts differ: {args.source} has {len(sources)} lines, {args.target} has "
                              f"{len(targets)}")
        threads, device = threads_and_device([args.checkpoint], args.threads, args.device)
        loaded = load(args.checkpoint, device, threads=threads)
        translator = Translator(loaded.model, loaded.tokenizer, batch_size=args.batch_size,
                                max_tokens=args.max_tokens, precision=loaded.precision, src_prefix=loaded.src_prefix,
                                max_src_len=loaded.max_src_len,
                                warn=lambda m: print(f"nmt-score: warning: {args.source}: {m}", file=sys.stderr))
        files = factor_inputs(loaded.tokenizer.factors, args.src_factors)
        texts = None if files is None else read_factor_lines(files, args.source, sources)
        scores = translator.score(sources, targets, factors=texts)
        links = translator.align(sources, targets, factors=texts) if args.alignment else None
        with work_signals(), atomic_output(args.output) as f:
            f.write("".join(f"{lp:.6f}\t{lp / max(n, 1):.6f}\t{n}" + (f"\t{links[k]}" if links is not None else "")
                            + "\n" for k, (lp, n) in enumerate(scores)))


if __name__ == "__main__":
    main()
