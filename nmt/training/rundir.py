"""The run directory: checked before anything is written, and locked while a training runs in it."""
from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
import time
import uuid
from typing import Iterable, Optional

from ..errors import NmtError
from ..runpaths import RunPaths

LOCK_NAME = ".lock"
MARKER_NAME = ".nmt-run"  # written by the first training in a directory: what makes it an nmt run
PROBE_PREFIX = ".nmt-probe."  # check_writable's short-lived folder (another rank may be probing the same directory)


class TrainingError(NmtError):
    """A training run that cannot start or go on; the message says why and what to do."""


class RunDirError(TrainingError):
    """A run directory that cannot be used as asked."""


def nothing_to_resume(last: str) -> RunDirError:
    """The refusal of ``resume=true`` where ``last`` (the run's last.pt) does not exist."""
    return RunDirError(f"resume=true but there is no checkpoint at {last}; set run_dir= to the run to resume")


def check_writable(run_dir: str) -> None:
    """``run_dir`` is (or can become) a writable directory; a clear error otherwise."""
    path = os.path.abspath(run_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"run_dir={run_dir}: exists and is not a directory")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise RunDirError(f"run_dir={run_dir}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"run_dir={run_dir}: {parent} is not writable (read-only file system or no permission)")
    try:  # the access bits can say yes where the file system says no (/proc, a read-only mount)
        os.rmdir(tempfile.mkdtemp(prefix=PROBE_PREFIX, dir=parent))
    except OSError as e:
        raise RunDirError(f"run_dir={run_dir}: cannot create a directory in {parent}: "
                          f"{e.strerror or e}") from None


def read_marker(run_dir: str) -> Optional[dict]:
    """The run's marker (``{"run_id", "created"}``), or None where the directory has none."""
    try:
        with open(os.path.join(run_dir, MARKER_NAME), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("run_id"), str) else None


def write_marker(run_dir: str) -> str:
    """Mark ``run_dir`` as an nmt run (once; kept on resume); returns its run id."""
    marker = read_marker(run_dir)
    if marker is None:
        marker = {"run_id": uuid.uuid4().hex, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        path = os.path.join(run_dir, MARKER_NAME)
        with open(f"{path}.tmp", "w", encoding="utf-8") as f:
            json.dump(marker, f)
        os.replace(f"{path}.tmp", path)
    return marker["run_id"]


def check_is_run_or_empty(run_dir: str, ignored: Iterable[str] = ()) -> None:
    """A run directory is new, empty, or an nmt run (its marker, or a checkpoint of a run made
    before markers existed); a directory holding anything else is the user's, and refused before
    anything is written there. ``ignored``: names this start wrote itself (Hydra's ``.hydra/`` and
    ``train.log`` when the preflight already checked the directory)."""
    if not os.path.isdir(run_dir) or read_marker(run_dir) is not None or \
            os.path.exists(RunPaths(run_dir).last):
        return
    found = sorted(name for name in set(os.listdir(run_dir)) - set(ignored) - {LOCK_NAME}
                   if not name.startswith(PROBE_PREFIX))
    if found:
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        raise RunDirError(f"run_dir={run_dir}: the directory holds files ({shown}) and is not an nmt run (no "
                          f"{MARKER_NAME} marker): training would overwrite them; choose a new or empty directory")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``RUN_DIR/.lock`` holds the pid and host of the training that owns the directory.

    Created with O_EXCL, so of two trainings started together exactly one gets it; a lock left by a
    process that died on this host (kill -9) is taken over.
    """

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK_NAME)
        self.held = False

    def _owner(self) -> Optional[dict]:
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _refusal(self, owner: Optional[dict]) -> RunDirError:
        who = f"pid {owner.get('pid')} on {owner.get('host')}" if owner else "another process"
        return RunDirError(f"{os.path.dirname(self.path)} is in use by a training run ({who}); wait for it to "
                           f"finish or choose another run_dir (remove {self.path} if that process is gone)")

    def _stale(self, owner: Optional[dict]) -> bool:
        if not owner:
            return False
        return owner.get("host") == socket.gethostname() and not _pid_alive(int(owner.get("pid", 0)))

    def check_free(self) -> None:
        """Refuse now, without taking the lock, if a live training holds it."""
        if os.path.exists(self.path):
            owner = self._owner()
            if not self._stale(owner):
                raise self._refusal(owner)

    def acquire(self) -> RunLock:
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if self._stale(owner):
                    os.remove(self.path)  # stale: its process is gone
                    continue
                raise self._refusal(owner) from None
            except OSError as e:
                if e.errno in (errno.EROFS, errno.EACCES):
                    raise RunDirError(f"cannot write in {os.path.dirname(self.path)}: {e.strerror}") from None
                raise
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise RunDirError(f"could not lock {self.path}")

    def release(self) -> None:
        if self.held:
            owner = self._owner()
            if owner and owner.get("pid") == os.getpid():
                os.remove(self.path)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
