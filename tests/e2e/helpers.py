"""Running the command-line programs, with a guard: every directory holding a file or corpus prefix
named on the command line is checksummed before and after the run, and any change there (a file
written, replaced or removed) fails the test. Outputs (``-o``, ``--output``, ``run_dir=``, ...) are
the only paths a run may create."""
import contextlib
import hashlib
import os
import re
import stat
import subprocess
import time
from pathlib import Path

OUTPUT_FLAGS = {"-o", "--output", "--attention-plot", "--out"}
OUTPUT_KEYS = ("run_dir=", "hydra.sweep.dir=", "hydra.run.dir=")
RUNS = {"guarded": 0}  # how many CLI runs the guard wrapped (printed at the end of the session)


def _input_dirs(args, cwd=None):
    """Directories of the files and corpus prefixes named in ``args`` (relative to ``cwd``), outputs
    excluded."""
    dirs, outputs, skip = set(), set(), False
    for arg in map(str, args):
        if skip:
            outputs.add(os.path.abspath(os.path.join(cwd or "", arg)))
            skip = False
            continue
        if arg in OUTPUT_FLAGS:
            skip = True
            continue
        if arg.startswith(OUTPUT_KEYS):
            outputs.add(os.path.abspath(os.path.join(cwd or "", arg.split("=", 1)[1])))
            continue
        value = arg.split("=", 1)[1] if "=" in arg and not arg.startswith("-") else arg
        if not value or value.startswith("-") or "/" not in value:
            continue
        listed = re.findall(r"path:\s*([^,}\s]+)", value) if value.startswith("[") else []  # data.train=[{path: P}]
        for v in listed or value.split(","):
            path = Path(cwd or "", v)
            if str(path).startswith(("/dev/", "/proc/", "/sys/")):
                continue
            parent = path.parent if not path.is_dir() else path
            if parent.is_dir() and (path.exists() or any(parent.glob(path.name + ".*"))):
                dirs.add(os.path.abspath(parent))
    return dirs, outputs


def _snapshot(dirs, outputs):
    state = {}
    for d in dirs:
        for root, subdirs, files in os.walk(d):
            subdirs[:] = [s for s in subdirs if os.path.join(root, s) not in outputs]
            for name in files:
                path = os.path.join(root, name)
                if path in outputs or any(path.startswith(o + os.sep) for o in outputs):
                    continue
                st = os.stat(path)
                if not stat.S_ISREG(st.st_mode):  # a device (/dev/zero), a pipe: nothing to checksum
                    continue
                with open(path, "rb") as f:
                    state[path] = (st.st_size, hashlib.sha256(f.read()).hexdigest())
    return state


@contextlib.contextmanager
def inputs_untouched(args, cwd=None):
    dirs, outputs = _input_dirs(args, cwd)
    before = _snapshot(dirs, outputs)
    yield
    after = _snapshot(dirs, outputs)
    RUNS["guarded"] += 1
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"{args[0]} changed files beside its inputs: {changed}"


def run(*args, input=None, check=True, env=None, timeout=600, cwd=None, process=False):
    """Run a program as ``subprocess.run`` would (a CompletedProcess with its status, stdout and
    stderr). An nmt program runs in this process (its ``main(argv)``, the standard streams swapped):
    the same code from the argument parser to the exit status, without paying a Python start and the
    torch import for each run. ``process=True`` (or ``env``) starts a real process, for what only a
    process shows: its environment, signals, the console script itself."""
    args = [str(a) for a in args]
    program = re.fullmatch(r"nmt-(\w+)", os.path.basename(args[0]))
    with inputs_untouched(args, cwd):
        if program and not process and env is None:
            code, out, err = in_process(program.group(1), args[1:], stdin_of(input), cwd)
            if isinstance(input, str) or input is None:
                out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
            proc = subprocess.CompletedProcess(args, code, out, err)
        else:
            proc = subprocess.run(args, input=input, capture_output=True, timeout=timeout, env=env, cwd=cwd,
                                  text=isinstance(input, str) or input is None)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for(path, proc, timeout: float = 300):
    """Wait until ``path`` exists (an event a running program makes); fail if ``proc`` ends first.
    ``timeout`` is only a guard against a hang, far above any expected wait."""
    start = time.monotonic()
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < timeout, f"{path} never appeared"
        time.sleep(0.05)


@contextlib.contextmanager
def _process_state_restored():
    """What a program sets for its whole process (the standard streams, sys.argv, the environment, the
    working directory, root logging handlers and level, SIGINT/SIGTERM handlers, Hydra's global state)
    is put back when the block ends; handlers it added to the root logger are closed."""
    import logging
    import signal
    import sys

    from hydra.core.global_hydra import GlobalHydra
    streams, argv, environ, cwd = (sys.stdin, sys.stdout, sys.stderr), sys.argv, dict(os.environ), os.getcwd()
    handlers, level, raise_exceptions = logging.root.handlers[:], logging.root.level, logging.raiseExceptions
    signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        for h in set(logging.root.handlers) - set(handlers):
            h.close()
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)
        logging.raiseExceptions = raise_exceptions
        for sig, handler in signals.items():
            signal.signal(sig, handler)
        GlobalHydra.instance().clear()


def stdin_of(input):
    """A text stdin reading ``input`` (str or bytes; None: empty)."""
    import io
    data = input.encode() if isinstance(input, str) else (input or b"")
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


def in_process(program: str, argv: list, stdin, cwd=None) -> tuple:
    """``nmt.cli.PROGRAM.main(argv)`` with ``stdin`` as sys.stdin, in ``cwd``: (status, stdout bytes,
    stderr bytes). An uncaught exception becomes status 1 and its traceback on stderr, as in a process."""
    import importlib
    import io
    import sys
    import traceback
    main = importlib.import_module(f"nmt.cli.{program}").main
    out, err = io.BytesIO(), io.BytesIO()
    code = 0
    with _process_state_restored():
        sys.stdin = stdin
        # kept by name: a wrapper closes its buffer when it is collected
        captured = [io.TextIOWrapper(b, encoding="utf-8", write_through=True) for b in (out, err)]
        sys.stdout, sys.stderr = captured
        if cwd is not None:
            os.chdir(cwd)
        try:
            main([str(a) for a in argv])
        except SystemExit as e:
            if isinstance(e.code, int) or e.code is None:
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            for stream in captured:
                stream.flush()
    return code, out.getvalue(), err.getvalue()
