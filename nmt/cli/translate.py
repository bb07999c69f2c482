"""nmt-translate: translate a file or stdin with a checkpoint, in streamed, length-sorted batches."""
from __future__ import annotations

import argparse
import itertools
import os
import sys
from typing import Iterator, List, Optional, TextIO, Tuple

import torch

from ..data.corpus import CorpusError, iter_lines
from ..eval.bleu import LineCountError, score
from ..train.checkpoint import CheckpointError
from ..translator import Translator, load_model


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="nmt-translate", description="Translate raw text with an nmt checkpoint: one sentence per line in, "
        "one detokenized translation per line out (line count always preserved).")
    p.add_argument("checkpoint", help="a checkpoint file (e.g. RUN_DIR/checkpoints/best.pt)")
    p.add_argument("-i", "--input", default="-", help="input file, plain or .gz (default: stdin)")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    s = p.add_argument_group("search")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="greedy decoding instead of beam search")
    mode.add_argument("--sample", action="store_true", help="sample from the model (see --temperature, --top-k)")
    s.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    s.add_argument("--length-penalty", type=float, default=1.0, help="GNMT length penalty alpha (default 1.0)")
    s.add_argument("--penalty", choices=["gnmt", "average", "none"], default="gnmt",
                   help="score normalisation: gnmt ((5+len)/6)^alpha, average (per token) or none")
    s.add_argument("--max-len-a", type=float, default=1.5, help="max output length = a * source length + b")
    s.add_argument("--max-len-b", type=int, default=10)
    s.add_argument("--min-len", type=int, default=0, help="minimum output length in pieces")
    s.add_argument("--nbest", type=int, default=1, help="print the N best as 'index<TAB>score<TAB>text'")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=0, help="sample among the k most probable tokens (0: all)")
    s.add_argument("--seed", type=int, default=1, help="seed for --sample")
    r = p.add_argument_group("speed")
    r.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    r.add_argument("--max-tokens", type=int, default=8000, help="padded source tokens per batch")
    r.add_argument("--chunk-size", type=int, default=4000, help="lines read, sorted and translated at a time")
    r.add_argument("--max-src-len", type=int, default=0,
                   help="truncate longer inputs (pieces), with a warning (default: the model's data.max_len)")
    r.add_argument("--device", default="cpu", help="cpu or cuda")
    r.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fast on CPUs with AVX-512 BF16)")
    r.add_argument("--int8", action="store_true", help="int8 dynamic quantization of linear and RNN layers (CPU)")
    r.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    o = p.add_argument_group("extras")
    o.add_argument("--attention-plot", metavar="DIR", help="write attention heatmaps of the first sentences to DIR")
    o.add_argument("--attention-plot-count", type=int, default=10, metavar="K")
    o.add_argument("--ref", nargs="+", metavar="REF", help="score the output against these references right away")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def read_chunks(path: str, size: int) -> Iterator[List[str]]:
    """Lists of at most ``size`` lines; invalid UTF-8 raises an error naming the line."""
    if path == "-":
        def stdin_lines():
            for number, raw in enumerate(sys.stdin.buffer, start=1):
                try:
                    yield raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as e:
                    raise CorpusError(f"<stdin>:{number}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        lines = stdin_lines()
    else:
        if not os.path.isfile(path):
            raise CorpusError(f"input file not found: {path}")
        lines = iter_lines(path)
    while True:
        chunk = list(itertools.islice(lines, size))
        if not chunk:
            return
        yield chunk


def quantize_int8(model):
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear, torch.nn.GRU, torch.nn.LSTM},
                                                  dtype=torch.qint8)


def plot_attention(model, tok, lines: List[str], hyps: List[List[int]], out_dir: str, first_index: int) -> None:
    """Heatmaps of teacher-forced attention over each (source, translation) pair."""
    from ..data.batching import pad, source_tensor
    from ..data.spm import BOS
    from ..train.plots import attention_heatmap

    os.makedirs(out_dir, exist_ok=True)
    for k, (line, hyp) in enumerate(zip(lines, hyps)):
        if not line.strip():
            continue
        src_ids = tok.encode_src([line])[0]
        src, src_lens = source_tensor([src_ids])
        with torch.inference_mode():
            _, weights = model(src, src_lens, pad([hyp], prefix=[BOS]))
        if weights is None:
            print("nmt-translate: this model has no attention (attention=none): no heatmaps", file=sys.stderr)
            return
        attention_heatmap(weights[0].float().numpy(), tok.src_pieces(line) + ["</s>"],
                          tok.tgt_pieces(hyp) + ["</s>"], os.path.join(out_dir, f"attention_{first_index + k}.png"))


def run(args: argparse.Namespace, out: TextIO) -> Optional[List[str]]:
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok, cfg = load_model(args.checkpoint, args.device)
    if args.int8:
        if args.device != "cpu":
            raise ValueError("--int8 quantization runs on the CPU only")
        model = quantize_int8(model)
    strategy = "greedy" if args.greedy else "sample" if args.sample else "beam"
    translator = Translator(model, tok, strategy=strategy, beam_size=args.beam, alpha=args.length_penalty,
                            penalty=args.penalty, max_len_a=args.max_len_a, max_len_b=args.max_len_b,
                            min_len=args.min_len, nbest=args.nbest, temperature=args.temperature, top_k=args.top_k,
                            batch_size=args.batch_size, max_tokens=args.max_tokens,
                            precision="bf16" if args.bf16 else "fp32", seed=args.seed)
    max_src = args.max_src_len or int(cfg["data"].get("max_len") or 0)
    progress = None
    if args.input != "-" and not args.quiet:
        from tqdm import tqdm
        progress = tqdm(unit="sent", file=sys.stderr, desc="translating", dynamic_ncols=True)
    kept: Optional[List[str]] = [] if args.ref else None
    index, plotted = 0, 0
    for chunk in read_chunks(args.input, args.chunk_size):
        ids = []
        for k, ids_k in enumerate(tok.encode_src([line if line.strip() else "" for line in chunk])):
            if not chunk[k].strip():
                ids_k = []
            elif max_src and len(ids_k) > max_src:
                print(f"nmt-translate: warning: line {index + k + 1}: {len(ids_k)} pieces, truncated to {max_src}",
                      file=sys.stderr)
                ids_k = ids_k[:max_src]
            ids.append(ids_k)
        results = translator.translate_ids(ids)
        for k, hyps in enumerate(results):
            texts = tok.decode_tgt([h.tokens for h in hyps])
            if args.nbest > 1:
                out.write("".join(f"{index + k}\t{h.score:.4f}\t{t}\n" for h, t in zip(hyps, texts)))
            else:
                out.write(texts[0] + "\n")
            if kept is not None:
                kept.append(texts[0])
        out.flush()
        if args.attention_plot and plotted < args.attention_plot_count:
            n = min(len(chunk), args.attention_plot_count - plotted)
            plot_attention(model, tok, chunk[:n], [r[0].tokens for r in results[:n]], args.attention_plot, index)
            plotted += n
        index += len(chunk)
        if progress is not None:
            progress.update(len(chunk))
    if progress is not None:
        progress.close()
    return kept


def main(argv=None) -> None:
    args = parse_args(argv)
    out = sys.stdout if args.output == "-" else None
    try:
        if out is None:
            with open(args.output, "w", encoding="utf-8") as f:
                kept = run(args, f)
        else:
            kept = run(args, out)
        if args.ref:
            refs = [list(iter_lines(r)) for r in args.ref]
            result = score(kept, refs, names=[args.output] + list(args.ref))
            for name, r in result.items():
                print(f"{r['text']}  ({r['signature']})", file=sys.stderr)
    except (CorpusError, CheckpointError, LineCountError, ValueError) as e:
        sys.exit(f"nmt-translate: error: {e}")
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()


if __name__ == "__main__":
    main()
