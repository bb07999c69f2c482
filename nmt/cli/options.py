"""Numeric command-line options checked as they are parsed: a value out of range stops the
program with argparse's usage line and a message naming the option, before any work."""
from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Dict, List, Optional

from ..config import FROM_CHECKPOINT, INFERENCE_PRECISIONS, InferenceSettings  # every loading default
from ..data.corpus import CorpusError
from ..guides import FACTORS
from ..search.options import PENALTIES
from ..search.options import SearchOptions as D  # every decoding default and choice


def integer(low: Optional[int] = None, high: Optional[int] = None):
    """An int option in [low, high] (either bound optional)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        _check(value, low, high, text)
        return value
    parse.__name__ = "integer"
    return parse


def real(low: Optional[float] = None, high: Optional[float] = None, above: Optional[float] = None):
    """A finite float option in [low, high], or > ``above``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{text!r}: must be > {above}")
        _check(value, low, high, text)
        return value
    parse.__name__ = "number"
    return parse


def _check(value, low, high, text) -> None:
    if low is not None and value < low:
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= {low}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"{text!r}: must be <= {high}")


# the SearchOptions fields whose flag (argparse dest) is named otherwise; strategy is --greedy / --sample
FLAG_DESTS = {"beam_size": "beam", "alpha": "length_penalty"}


def search_flag_values(args: argparse.Namespace) -> dict:
    """Every ``SearchOptions`` field (but the beam size and the strategy) that the program has a flag
    for, with its value: what ``decoding_options`` takes besides them."""
    dests = {f.name: FLAG_DESTS.get(f.name, f.name) for f in dataclasses.fields(D)
             if f.name not in ("strategy", "beam_size")}
    return {name: getattr(args, dest) for name, dest in dests.items() if hasattr(args, dest)}


def add_search_flags(group, beam_help: str) -> None:
    """The beam and length flags of nmt-translate and nmt-serve, their defaults from ``SearchOptions``."""
    group.add_argument("--beam", type=integer(1), default=D.beam_size, help=f"{beam_help} (default %(default)s)")
    group.add_argument("--length-penalty", type=real(), default=D.alpha,
                       help="GNMT length penalty alpha (default %(default)s)")
    group.add_argument("--penalty", choices=PENALTIES, default=D.penalty.value,
                       help="score normalisation: gnmt ((5+len)/6)^alpha, average (per token) or none")
    group.add_argument("--coverage-penalty", type=real(0), default=D.coverage_penalty, metavar="BETA",
                       help="GNMT coverage penalty: a finished hypothesis gains BETA * sum over source pieces of "
                            "log min(attention it received, 1), against dropped source words (default 0: off)")
    group.add_argument("--max-len-a", type=real(0), default=D.max_len_a,
                       help="max output length = a * source length + b")
    group.add_argument("--max-len-b", type=integer(0), default=D.max_len_b)


def add_model_flags(group) -> None:
    """How nmt-translate and nmt-serve load and run the model: device, precision, compressed weights,
    threads, lexical shortlist."""
    group.add_argument("--device", default=InferenceSettings.device, help="cpu, cuda or auto (default %(default)s)")
    group.add_argument("--precision", choices=INFERENCE_PRECISIONS, default=InferenceSettings.precision,
                       help=f"{FROM_CHECKPOINT} (default): what the model trained with (its train.precision, 'auto' "
                            f"resolved on this machine), so translations match the run's own test score; auto: bf16 "
                            f"where native; fp32; bf16 or fp16 (autocast)")
    group.add_argument("--int8", action="store_true", help="int8 dynamic quantization of linear and RNN layers (CPU)")
    group.add_argument("--fp16-weights", action="store_true",
                       help="linear and RNN weights in fp16, multiplied in fp32 (CPU): about 2x faster one sentence "
                            "at a time, translations as fp32's")
    add_threads_flag(group)
    group.add_argument("--shortlist", type=integer(0), default=InferenceSettings.shortlist, metavar="K",
                       help="lexical shortlist: search only over each source token's K likeliest target tokens "
                            "(from the training data, stored in the checkpoint) and the most frequent ones (0: off)")
    group.add_argument("--shortlist-frequent", type=integer(0), default=InferenceSettings.shortlist_frequent,
                       metavar="N",
                       help="the N most frequent target tokens are always candidates (default %(default)s)")


def add_threads_flag(group) -> None:
    group.add_argument("--threads", type=integer(0), default=InferenceSettings.threads,
                       help="torch threads (0: the CPUs this process may use)")


def add_batch_flags(group) -> None:
    """nmt-translate's and nmt-score's search batches (``InferenceSettings``)."""
    group.add_argument("--batch-size", type=integer(1), default=InferenceSettings.batch_size,
                       help="sentences per batch (default %(default)s)")
    group.add_argument("--max-tokens", type=integer(1), default=InferenceSettings.max_tokens,
                       help="padded source tokens per batch (default %(default)s)")


def load_model(args: argparse.Namespace):
    """What ``nmt-translate`` and ``nmt-serve`` translate with, from their model flags: the model,
    ensemble or exported bundle (``nmt.load``, the one loader), the shortlist chosen (or None) and
    the number of threads set. A bundle runs without torch: nothing here imports it for one."""
    from ..api import load
    threads, device = threads_and_device(args.checkpoints, args.threads, args.device)
    loaded = load(args.checkpoints, device, args.precision, int8=args.int8, fp16_weights=args.fp16_weights,
                  threads=threads)
    return loaded, loaded.shortlist_table(args.shortlist, args.shortlist_frequent, "--shortlist "), threads


def threads_and_device(paths, threads: int, device: str):
    """The threads set (``--threads``) and the device for ``nmt.load`` of the models ``paths``: exported
    models get ONNX Runtime's threads and leave the device to ``nmt.load``'s check, so no torch is
    imported; checkpoints get torch's threads and the device picked here (named ``--device``)."""
    from ..deploy.bundle import is_bundle
    from ..runtime import pick_threads
    if any(is_bundle(p) for p in paths):
        return pick_threads(threads, torch_threads=False), device
    from ..runtime import pick_device
    return pick_threads(threads), pick_device(device, key="--device")


def add_factors_flag(p) -> None:
    p.add_argument(FACTORS.flag, nargs="+", metavar="NAME=FILE", help=f"{FACTORS.help}; FILE per factor NAME")


def factor_inputs(vocabs, values: Optional[List[str]]) -> Optional[List[str]]:
    """The files of ``--src-factors NAME=FILE ...`` in the order of the model's factors (``vocabs``);
    None for a model without factors; a missing or unknown factor refused, naming the flag."""
    from ..data.factors import factor_columns
    return factor_columns(vocabs, factor_files(values), FACTORS.flag, f"{FACTORS.flag} NAME=FILE per factor")


def factor_files(values: Optional[List[str]]) -> Dict[str, str]:
    """``--src-factors NAME=FILE ...`` as {name: file}."""
    files: Dict[str, str] = {}
    for value in values or []:
        name, eq, path = value.partition("=")
        if not eq or not name or not path:
            raise CorpusError(f"{FACTORS.flag} {value}: give NAME=FILE for each source factor (e.g. case=input.case)")
        if name in files:
            raise CorpusError(f"{FACTORS.flag}: factor {name!r} given twice")
        files[name] = path
    return files
