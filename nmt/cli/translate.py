"""nmt-translate: translate a file or stdin with a checkpoint (or an ensemble of them), in streamed,
length-sorted batches."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import IO, List, Optional

from ..data.corpus import STDIN, CorpusError, display_name, iter_lines
from ..deploy.bundle import model_files
from ..guides import CONSTRAINTS, FACTORS, PREFIX
from ..outputs import atomic_output, check_output
from ..search.options import SearchOptions as D  # every decoding default and choice
from . import prepare_process, reported, work_signals
from .options import (
    add_batch_flags,
    add_factors_flag,
    add_model_flags,
    add_search_flags,
    factor_files,
    factor_inputs,
    integer,
    load_model,
    real,
    search_flag_values,
)


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nmt-translate", description="Translate raw text with an nmt checkpoint: one sentence per line in, "
        "one detokenized translation per line out (line count always preserved).")
    p.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="checkpoint file(s) or run directories (RUN_DIR means RUN_DIR/checkpoints/best.pt); "
                        "several decode as an ensemble (their log-probabilities averaged at each step); or one "
                        "exported model (nmt-export), run by ONNX Runtime without torch")
    p.add_argument("-i", "--input", default="-", help="input file, plain or .gz (default: stdin)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.add_argument("--output-format", choices=["text", "tsv", "jsonl"], default="text",
                   help="text: the translation; tsv: 'index<TAB>score<TAB>translation' per hypothesis; jsonl: "
                        "{\"translation\", \"score\"[, \"nbest\"]} per input line. Scores are log-probabilities, "
                        "divided by the length penalty for beam search")
    s = p.add_argument_group("search")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="greedy decoding instead of beam search")
    mode.add_argument("--sample", action="store_true", help="sample from the model (see --temperature, --top-k)")
    add_search_flags(s, "beam size")
    s.add_argument("--min-len", type=integer(0), default=D.min_len, help="minimum output length in pieces")
    s.add_argument("--nbest", type=integer(1), default=D.nbest,
                   help="N best per line (text and tsv: 'index<TAB>score<TAB>text' lines; jsonl: an \"nbest\" list)")
    s.add_argument("--temperature", type=real(above=0), default=D.temperature)
    s.add_argument("--src-prefix", metavar="TAG",
                   help="the tag put before every source line (default: the model's data.src_prefix; '' for none), "
                        "e.g. the target-language tag of a multilingual model")
    s.add_argument(PREFIX.flag, metavar="FILE", help=f"one line per input line: {PREFIX.help}")
    s.add_argument(CONSTRAINTS.flag, metavar="FILE",
                   help=f"one line per input line, its phrases separated by tabs: {CONSTRAINTS.help}")
    add_factors_flag(s)
    s.add_argument("--top-k", type=integer(0), default=D.top_k, help="sample among the k most probable tokens (0: all)")
    s.add_argument("--top-p", type=real(0, 1, above=0), default=D.top_p,
                   help="nucleus sampling: among the fewest most probable tokens whose probability reaches p (1: all)")
    s.add_argument("--no-repeat-ngram", type=integer(0), default=D.no_repeat_ngram, metavar="N",
                   help="no output repeats an n-gram of N pieces (0: off)")
    s.add_argument("--seed", type=integer(0), default=D.seed, help="seed for --sample")
    r = p.add_argument_group("speed")
    add_batch_flags(r)
    r.add_argument("--chunk-size", type=integer(1), default=4000, help="lines read, sorted and translated at a time")
    r.add_argument("--max-src-len", type=integer(0), default=0,
                   help="truncate longer inputs (pieces), with a warning (default: the model's data.max_len)")
    add_model_flags(r)
    r.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="the same as --precision bf16")
    o = p.add_argument_group("extras")
    o.add_argument("--attention-plot", metavar="DIR", help="write attention heatmaps of the first sentences to DIR")
    o.add_argument("--attention-plot-count", type=integer(0), default=10, metavar="K")
    o.add_argument("--alignment", action="store_true",
                   help="word alignments from attention (Pharaoh 'src-tgt' word indices; the attention argmax, "
                        "not a trained aligner): jsonl adds an \"alignment\" field, tsv a fourth column")
    o.add_argument("--ref", nargs="+", metavar="REF", help="score the output against these references right away")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def check_input(path: str) -> None:
    """The input exists and is not a directory (a pipe, ``/dev/stdin`` or ``<(cmd)`` is fine)."""
    if path != STDIN and not os.path.exists(path):
        raise CorpusError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise CorpusError(f"input {path} is a directory; give a file (or - for stdin)")


def check_references(source: str, refs: List[str]) -> None:
    """``--ref`` files exist and, where the input is a file (not a stream), have its line count:
    checked before any translation."""
    for ref in refs:
        check_input(ref)
    if not refs or source == STDIN or not os.path.isfile(source):
        return
    n = sum(1 for _ in iter_lines(source, warn=False))
    for ref in refs:
        m = sum(1 for _ in iter_lines(ref, warn=False))
        if m != n:
            raise CorpusError(f"--ref {ref} has {m} lines but the input {source} has {n}: not its references")


def write_heatmaps(translator, chunk, count: int, out_dir: str, inputs=()) -> int:
    """Attention heatmaps of the chunk's first ``count`` lines, attention_N.png for input line N
    (from 1); returns how many lines it covered (``count`` when the model has no attention: stop)."""
    from ..plots import attention_heatmap
    n = min(count, len(chunk.lines))
    maps = translator.attention_maps(chunk.ids[:n], [hyps[0] for hyps in chunk.results[:n]])
    if maps is None:
        print("nmt-translate: this model has no attention (attention=none): no heatmaps", file=sys.stderr)
        return count
    os.makedirs(out_dir, exist_ok=True)
    for k, drawn in enumerate(maps):
        if drawn is None:  # a blank line
            continue
        line, (src, tgt, weights) = chunk.first + k + 1, drawn
        path = os.path.join(out_dir, f"attention_{line}.png")
        check_output(path, inputs, flag="--attention-plot", text=False)
        attention_heatmap(weights, src, tgt, path, title=f"line {line}, score {chunk.results[k][0].score:.3f}")
    return n


def write_results(out: IO, fmt: str, nbest: int, index: int, results, tok, aligned=None) -> List[str]:
    """Write one chunk's results (with ``aligned``, per input and hypothesis ``{"alignment": ...}``);
    returns the 1-best texts."""
    from ..translator import result_record
    firsts = []
    for k, hyps in enumerate(results):
        texts = tok.decode_tgt([h.tokens for h in hyps])
        firsts.append(texts[0])
        extras = aligned[k] if aligned else None
        if fmt == "jsonl":
            out.write(json.dumps(result_record(hyps, texts, nbest, extras), ensure_ascii=False) + "\n")
        elif fmt == "tsv" or nbest > 1:
            out.write("".join(f"{index + k}\t{h.score:.4f}\t{t}" + (f"\t{extras[j]['alignment']}" if extras else "")
                              + "\n" for j, (h, t) in enumerate(zip(hyps, texts))))
        else:
            out.write(texts[0] + "\n")
    return firsts


def run(args: argparse.Namespace, out: IO, inputs=()) -> Optional[List[str]]:
    from ..runtime import check_busy
    from ..search import decoding_options
    from ..search.options import check_min_len
    from ..translator import Translator
    loaded, shortlist, threads = load_model(args)
    if not args.threads and not args.quiet and (busy := check_busy(threads, key="--threads")):
        print(f"nmt-translate: warning: {busy}", file=sys.stderr)
    model, tok = loaded.model, loaded.tokenizer
    options = decoding_options(args.beam, greedy=args.greedy, sample=args.sample, **search_flag_values(args))
    src_prefix = loaded.src_prefix if args.src_prefix is None else args.src_prefix
    max_src = args.max_src_len or loaded.max_src_len
    check_min_len(options, max_src)
    translator = Translator(model, tok, options, batch_size=args.batch_size, max_tokens=args.max_tokens,
                            precision=loaded.precision, shortlist=shortlist, src_prefix=src_prefix, max_src_len=max_src,
                            warn=lambda message: print(f"nmt-translate: warning: {message}", file=sys.stderr))
    progress = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm
        total = sum(1 for _ in iter_lines(args.input)) if os.path.isfile(args.input) else None
        progress = tqdm(total=total, unit="sent", file=sys.stderr, desc="translating", dynamic_ncols=True)
    kept: Optional[List[str]] = [] if args.ref else None
    heatmaps = args.attention_plot_count if args.attention_plot else 0
    factors = factor_inputs(tok.factors, args.src_factors)
    chunks = translator.translate_stream(
        iter_lines(args.input), args.chunk_size, iter_lines(args.prefix_file) if args.prefix_file else None,
        f"{PREFIX.flag} {args.prefix_file}", args.alignment, None if progress is None else progress.update,
        iter_lines(args.constraints) if args.constraints else None, f"{CONSTRAINTS.flag} {args.constraints}",
        None if factors is None else [iter_lines(f) for f in factors], factors or (), display_name(args.input))
    for chunk in chunks:
        firsts = write_results(out, args.output_format, args.nbest, chunk.first, chunk.results, tok, chunk.aligned)
        if kept is not None:
            kept.extend(firsts)
        out.flush()
        if heatmaps:
            heatmaps -= write_heatmaps(translator, chunk, heatmaps, args.attention_plot, inputs)
    if progress is not None:
        progress.close()
    return kept


def main(argv=None) -> None:
    prepare_process()
    args = parse_args(argv)
    from ..eval.bleu import score
    with reported("nmt-translate", "" if args.output == "-" else f"{args.output} not written"):
        if args.alignment and (args.output_format == "text" and args.nbest == 1):
            raise CorpusError("--alignment needs --output-format jsonl or tsv (text output has no room for it)")
        sides = {flag: path for flag, path in ((PREFIX.flag, args.prefix_file), (CONSTRAINTS.flag, args.constraints),
                                               *((f"{FACTORS.flag} {n}=", f)
                                                 for n, f in factor_files(args.src_factors).items())) if path}
        inputs = [args.input, *(args.ref or []), *sides.values(),
                  *(f for c in args.checkpoints for f in model_files(c))]
        check_output(args.output, inputs)
        if args.attention_plot and os.path.exists(args.attention_plot) and not os.path.isdir(args.attention_plot):
            raise CorpusError(f"--attention-plot {args.attention_plot}: exists and is not a directory")
        check_input(args.input)
        check_references(args.input, args.ref or [])
        for flag, path in sides.items():
            if path == STDIN and args.input == STDIN:
                raise CorpusError(f"{flag} and the input cannot both be stdin")
            check_input(path)
        from .. import translator  # noqa: F401 (torch and the model code, before the signals change)
        with work_signals(), atomic_output(args.output) as out:
            kept = run(args, out, inputs)
        if args.ref and kept is not None:
            refs = [list(iter_lines(r)) for r in args.ref]
            for ref, lines in zip(args.ref, refs):
                if len(lines) != len(kept):
                    raise CorpusError(f"--ref {ref} has {len(lines)} lines but the input had {len(kept)}: not its "
                                      f"references (the translation is written)")
            for result in score(kept, refs, names=[args.output] + list(args.ref)).values():
                print(f"{result['text']}  ({result['signature']})", file=sys.stderr)


if __name__ == "__main__":
    main()
