"""The console scripts' entry points (``nmt-translate`` is ``nmt.cli.entry:translate``, ...).

This module imports nothing heavy, so its signal handling starts within milliseconds of the process.
"""
from __future__ import annotations

import os
import signal

PROGRAMS = ("train", "translate", "evaluate", "data", "average", "score", "serve", "export")


def _leave_at_once(program: str):
    def handle(signum, frame):
        name = "interrupted" if signum == signal.SIGINT else "terminated"
        os.write(2, f"{program}: {name}\n".encode())
        os._exit(128 + signum)
    return handle


def _entry(program: str):
    """A console script's entry point: from its first instant until the program installs its own
    handling (``work_signals``, or the training's), Ctrl-C or SIGTERM ends the process at once with
    one line: start-up (imports, loading a model) has nothing to clean up, and an interruption inside
    an import would otherwise print a traceback, or be swallowed by a finaliser and ignored."""
    def entry() -> None:
        name = f"nmt-{program}"
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _leave_at_once(name))
        import importlib
        importlib.import_module(f"nmt.cli.{program}").main()
    entry.__name__ = program
    return entry


train, translate, evaluate, data, average, score, serve, export = (_entry(p) for p in PROGRAMS)
