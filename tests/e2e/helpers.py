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


def _input_dirs(args):
    """Directories of the files and corpus prefixes named in ``args``, outputs excluded."""
    dirs, outputs, skip = set(), set(), False
    for arg in map(str, args):
        if skip:
            outputs.add(os.path.abspath(arg))
            skip = False
            continue
        if arg in OUTPUT_FLAGS:
            skip = True
            continue
        if arg.startswith(OUTPUT_KEYS):
            outputs.add(os.path.abspath(arg.split("=", 1)[1]))
            continue
        value = arg.split("=", 1)[1] if "=" in arg and not arg.startswith("-") else arg
        if not value or value.startswith("-") or "/" not in value:
            continue
        listed = re.findall(r"path:\s*([^,}\s]+)", value) if value.startswith("[") else []  # data.train=[{path: P}]
        for v in listed or value.split(","):
            path = Path(v)
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
def inputs_untouched(args):
    dirs, outputs = _input_dirs(args)
    before = _snapshot(dirs, outputs)
    yield
    after = _snapshot(dirs, outputs)
    RUNS["guarded"] += 1
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"{args[0]} changed files beside its inputs: {changed}"


def run(*args, input=None, check=True, env=None, timeout=600, cwd=None):
    args = [str(a) for a in args]
    with inputs_untouched(args):
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
