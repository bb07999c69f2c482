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


@contextlib.contextmanager
def reported(program: str, not_written: str = ""):
    """Around a program's work: how it ends when something goes wrong, one line on stderr and an exit
    status, never a traceback. ``NmtError`` (the user can fix it): ``program: error: MESSAGE``, status 1;
    ``OSError``: the same with the system's reason and the file; Ctrl-C or SIGTERM: ``interrupted``
    (status 130 or 143), saying ``not_written`` when given (e.g. which output was left unwritten);
    a broken pipe (output piped into ``head``): the output goes to /dev/null and the program ends
    quietly with status 0. Anything else is a bug and keeps its traceback."""
    from ..errors import NmtError
    try:
        yield
    except NmtError as e:
        sys.exit(f"{program}: error: {e}")
    except KeyboardInterrupt:
        interrupted(program, not_written)
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # stdout may be no file (captured in-process)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the buffered rest goes nowhere
        sys.exit(0)
    except OSError as e:
        sys.exit(f"{program}: error: {e.strerror or e}{f': {e.filename}' if e.filename else ''}")


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
