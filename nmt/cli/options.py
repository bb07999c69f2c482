"""Numeric command-line options checked as they are parsed: a value out of range stops the
program with argparse's usage line and a message naming the option, before any work."""
from __future__ import annotations

import argparse
import math


def integer(low: int = None, high: int = None):
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


def real(low: float = None, high: float = None, above: float = None):
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
