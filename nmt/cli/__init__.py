"""Command-line entry points: parse, build, call; nothing else.

Importing a program's module changes nothing; its ``main`` first calls ``prepare_process``.
"""
import os
import sys


def prepare_process() -> None:
    """The process-wide settings every program makes first, before torch starts its threads: unless
    the user chose one, OpenMP threads wait passively instead of spinning, since the programs run on
    shared machines (laptops, servers, CI runners). The OpenMP runtime reads this once, so it is set
    before torch's first parallel region. What a busy core costs either way is measured by
    ``scripts/benchmark.py --busy-core`` (README, Benchmarks)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def interrupted(program: str, detail: str = "", hard: bool = False) -> None:
    """Ctrl-C: one line on stderr, exit status 130 (128 + SIGINT), as shells report it; no traceback.

    ``hard``: leave without the interpreter's shutdown (after flushing logs and the standard streams),
    for an interruption before any result exists. One that lands inside an import can leave a
    half-loaded extension module behind, which a shutdown hook then imports again and fails on
    ("cannot load module more than once per process"), printing a traceback after the line."""
    print(f"{program}: interrupted{'; ' + detail if detail else ''}", file=sys.stderr)
    if hard:
        import logging
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(130)
