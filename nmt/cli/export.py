"""nmt-export: a checkpoint as a bundle that translates without PyTorch (ONNX graphs + ONNX Runtime)."""
from __future__ import annotations

import argparse
import sys

from . import prepare_process, reported, work_signals


def main(argv=None) -> None:
    prepare_process()
    p = argparse.ArgumentParser(
        prog="nmt-export", description="Export a checkpoint to a directory that nmt-translate, nmt-serve and "
        "nmt.load run with ONNX Runtime and no torch: encoder.onnx, step.onnx, the sentencepiece model(s) and "
        "manifest.json. Search (beam, greedy, sampling, prefixes, n-gram blocking) stays in nmt. Needs "
        "pip install 'nmt[onnx]'.")
    p.add_argument("checkpoint", metavar="CKPT_OR_RUN_DIR",
                   help="a checkpoint file, or a run directory (its checkpoints/best.pt)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="the bundle directory: new, empty, or an earlier bundle (replaced whole)")
    p.add_argument("--int8", action="store_true",
                   help="weights quantized to int8 (ONNX Runtime's dynamic quantization): smaller and faster, "
                        "translations may differ from the checkpoint's")
    args = p.parse_args(argv)
    with reported("nmt-export", f"{args.output} not written"):
        from ..deploy.export import export_bundle
        with work_signals():
            manifest = export_bundle(args.checkpoint, args.output, int8=args.int8)
    print(f"exported {manifest.checkpoint} to {args.output} ({'int8' if manifest.int8 else 'fp32'}, opset "
          f"{manifest.opset}, state {'+'.join(manifest.state)}; log-probabilities within "
          f"{manifest.max_logprob_diff:.1e} of the checkpoint's)", file=sys.stderr)


if __name__ == "__main__":
    main()
