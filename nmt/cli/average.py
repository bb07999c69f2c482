"""nmt-average: average the parameters of several checkpoints of one run (or of matching runs)."""
from __future__ import annotations

import argparse
import os
import sys

from ..runpaths import RunPaths
from . import prepare_process, reported, work_signals
from .options import integer


def main(argv=None) -> None:
    prepare_process()
    p = argparse.ArgumentParser(prog="nmt-average", description="Average checkpoints' parameters (in fp32) into "
                                "one checkpoint for nmt-translate, nmt-score and nmt.load. Configs and "
                                "sentencepiece models must match. The result is not resumable.")
    p.add_argument("inputs", nargs="+", metavar="CKPT_OR_RUN_DIR",
                   help="checkpoint files, or one run directory with --last N")
    p.add_argument("--last", type=integer(1), metavar="N", help="average the N latest step_*.pt of the run directory")
    p.add_argument("-o", "--output", required=True, help="where to write the averaged checkpoint")
    args = p.parse_args(argv)
    from ..checkpoint import CheckpointError, atomic_save, average_checkpoints
    from ..outputs import check_output, checkpoint_files
    with reported("nmt-average", f"{args.output} not written"):
        paths = args.inputs
        if args.last is not None:
            if len(args.inputs) != 1 or not os.path.isdir(args.inputs[0]):
                raise CheckpointError("--last N takes exactly one run directory")
            found = RunPaths(args.inputs[0]).steps()
            if args.last < 1 or len(found) < args.last:
                raise CheckpointError(f"--last {args.last}: {args.inputs[0]}/checkpoints holds {len(found)} step "
                                      f"checkpoints ({', '.join(os.path.basename(f) for f in found) or 'none'}); "
                                      f"train.keep_last decides how many are kept")
            paths = found[-args.last:]
        if os.path.abspath(args.output) in {os.path.abspath(x) for x in paths}:
            raise CheckpointError(f"{args.output} is one of the inputs; write the average elsewhere")
        check_output(args.output, [f for x in paths for f in checkpoint_files(x)], text=False)
        with work_signals():
            atomic_save(average_checkpoints(paths), args.output)
    print(f"averaged {len(paths)} checkpoints ({', '.join(os.path.basename(x) for x in paths)}) into {args.output}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
