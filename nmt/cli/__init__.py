"""Command-line entry points: parse, build, call; nothing else.

Importing a program's module changes nothing; its ``main`` first calls ``prepare_process``. The
console scripts start in ``entry``.
"""
import contextlib
import os
import signal
import sys


def prepare_process() -> None:
    """The process-wide settings every program makes first, before torch starts its threads: unless
    the user chose one, OpenMP threads wait passively instead of spinning, since the programs run on
    shared machines (laptops, servers, CI runners). The OpenMP runtime reads this once, so it is set
    before torch's first parallel region. What a busy core costs either way is measured by
    ``scripts/benchmark.py --busy-core`` (docs/benchmarks.md)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class Terminated(KeyboardInterrupt):
    """SIGTERM while a program works: unwinds like Ctrl-C (temporary files removed, nothing half
    written), then ``interrupted`` reports it with exit status 143."""


@contextlib.contextmanager
def work_signals():
    """While a program writes its results: Ctrl-C raises KeyboardInterrupt and SIGTERM raises
    ``Terminated``, so the output being written is removed before the program reports and exits.
    The previous handlers come back afterwards."""
    def terminate(signum, frame):
        raise Terminated()
    old = {}
    try:
        old = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
               signal.SIGTERM: signal.signal(signal.SIGTERM, terminate)}
    except ValueError:  # not the main thread: signals go elsewhere
        pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def interrupted(program: str, detail: str = "", hard: bool = False) -> None:
    """Ctrl-C: one line on stderr, exit status 130 (128 + SIGINT), as shells report it; no traceback.
    SIGTERM (``Terminated``): the same line saying so, exit status 143.

    ``hard``: leave without the interpreter's shutdown (after flushing logs and the standard streams),
    for an interruption before any result exists. One that lands inside an import can leave a
    half-loaded extension module behind, which a shutdown hook then imports again and fails on
    ("cannot load module more than once per process"), printing a traceback after the line."""
    terminated = isinstance(sys.exc_info()[1], Terminated)
    status = 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    print(f"{program}: {'terminated (SIGTERM)' if terminated else 'interrupted'}{'; ' + detail if detail else ''}",
          file=sys.stderr)
    if hard:
        import logging
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
