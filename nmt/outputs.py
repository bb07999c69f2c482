"""Files the programs write for the user: never an input, never half-written.

Every program that writes a file (``nmt-translate``, ``nmt-score``, ``nmt-average``, attention
plots, ``nmt-data``) goes through ``check_output`` before any work and ``atomic_output`` for the
writing:

- an output that is the same file as an input or a checkpoint (the same device and inode, so a
  hard link or a symlink of one counts, whatever its name) is refused, naming both paths;
- an existing nmt checkpoint is never replaced by text, nor a directory by a file;
- the content goes to a hidden temporary file beside the output, renamed into place only when
  complete: an interrupted or failed run leaves the previous file (or none) under the user's name.
"""
from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
import zipfile
from typing import IO, Iterable, Iterator, Optional

from .errors import NmtError
from .runpaths import RunPaths

PARTIAL_SUFFIX = ".part"  # of the temporary file beside an output being written


class OutputError(NmtError):
    """An output path that would destroy something, or that cannot be written; the message names it."""


def _stat(path: str) -> Optional[os.stat_result]:
    try:
        return os.stat(path)
    except OSError:
        return None


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def stdin_stat() -> Optional[os.stat_result]:
    """What stdin is (a redirected file has a device and inode like any other)."""
    try:
        return os.fstat(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return None


def _is_checkpoint(path: str) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def check_output(output: Optional[str], inputs: Iterable[Optional[str]] = (), flag: str = "-o",
                 text: bool = True) -> None:
    """Refuse ``output`` if writing it could destroy an input or a checkpoint.

    ``inputs``: every file the program reads (checkpoints, run directories' checkpoints, sources,
    references; ``"-"`` for stdin). ``text``: the output is text, so an existing checkpoint
    (a torch archive) in its place is refused too."""
    if output is None or output == "-":
        return
    if not output.strip():
        raise OutputError(f"{flag} {output!r}: empty; name a file (or - for standard output)")
    if output.endswith(("/", os.sep)):
        raise OutputError(f"{flag} {output}: names a directory (ends with '/'); name a file")
    out = _stat(output)
    if out is None:
        parent = _directory(output)  # as written: 'missing/../x' needs 'missing' to exist
        if not os.path.isdir(parent):
            raise OutputError(f"{flag} {output}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{flag} {output}: directory {parent} is not writable")
        return
    if stat.S_ISDIR(out.st_mode):
        raise OutputError(f"{flag} {output}: is a directory; name a file")
    for path in inputs:
        if path is None:
            continue
        st = stdin_stat() if path == "-" else _stat(path)
        if st is not None and stat.S_ISREG(st.st_mode) and same_file(st, out):
            what = "standard input" if path == "-" else path
            alias = "" if path == "-" or os.path.abspath(path) == os.path.abspath(output) else " (a link to it)"
            raise OutputError(f"{flag} {output}: is the same file as the input {what}{alias}; writing it would "
                              f"destroy the input: choose another output")
    if text and stat.S_ISREG(out.st_mode) and _is_checkpoint(output):
        raise OutputError(f"{flag} {output}: is a checkpoint (or another archive); refusing to replace it with "
                          f"text: choose another output")


def checkpoint_files(path: str) -> list:
    """The files a checkpoint argument stands for: the file, or a run directory's checkpoints/*.pt
    (all of them: training makes best.pt, last.pt and step_N.pt hard links of one another)."""
    def listed(d: str) -> list:
        try:
            return [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".pt")]
        except OSError:
            return []
    if os.path.isdir(path):
        return listed(RunPaths(path).checkpoints)
    return [path] + listed(os.path.dirname(os.path.abspath(path)))


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w") -> Iterator[IO]:
    """A file object for ``path`` (``"-"``: stdout) whose content appears under ``path`` only when
    the block ends without an exception; otherwise ``path`` is left as it was. A path that is not a
    regular file (``/dev/null``, a named pipe) is written in place."""
    if path == "-":
        out = sys.stdout.buffer if "b" in mode else sys.stdout
        yield out
        out.flush()
        return
    existing = _stat(path)
    if existing is not None and not stat.S_ISREG(existing.st_mode):  # /dev/null, a FIFO: written in place
        with _open(path, mode) as f:
            yield f
        return
    directory = _directory(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=PARTIAL_SUFFIX, dir=directory)
    os.close(fd)
    try:
        with _open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(existing.st_mode) if existing else 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    fsync_dir(directory)


def _directory(path: str) -> str:
    """The directory ``path`` is in, as written (not normalised: ``a/../x`` is in ``a/..``)."""
    return os.path.dirname(path) or "."


def _open(path: str, mode: str):
    return open(path, "wb") if "b" in mode else open(path, "w", encoding="utf-8", newline="\n")


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (where the file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
