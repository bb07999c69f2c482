"""Search over a model with the ``encode`` / ``step`` / ``reorder`` contract.

The names below load their module on first use (PEP 562), so that ``from nmt.search.options import
SearchOptions`` (the declaration of every decoding setting, which the command-line parsers read for
their defaults and choices) does not import torch."""
import importlib

_HOME = {"beam_search": "beam", "Hypothesis": "common", "max_lengths": "common", "greedy_search": "greedy",
         "sample_search": "greedy", "SearchOptions": "options", "decoding_options": "options",
         "end_of_run_options": "options", "validation_options": "options"}
__all__ = sorted(_HOME)


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
