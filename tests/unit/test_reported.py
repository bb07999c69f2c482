"""``cli.reported``: how every program ends on a problem, one line and an exit status."""
import os

import pytest

from nmt.cli import Terminated, reported
from nmt.errors import ConfigError


def _ends(exc, capsys, not_written=""):
    with pytest.raises(SystemExit) as ended, reported("nmt-x", not_written):
        raise exc
    return ended.value.code, capsys.readouterr().err


def test_a_user_error_is_one_line_with_status_1(capsys):
    code, _ = _ends(ConfigError("--beam 0: must be at least 1"), capsys)
    assert code == "nmt-x: error: --beam 0: must be at least 1"  # sys.exit(str): printed, status 1


def test_an_os_error_names_the_reason_and_the_file(capsys):
    code, _ = _ends(FileNotFoundError(2, "No such file or directory", "in.txt"), capsys)
    assert code == "nmt-x: error: No such file or directory: in.txt"


def test_ctrl_c_and_sigterm_say_what_was_not_written(capsys):
    code, err = _ends(KeyboardInterrupt(), capsys, "out.txt not written")
    assert code == 130 and err == "nmt-x: interrupted; out.txt not written\n"
    code, err = _ends(Terminated(), capsys)
    assert code == 143 and err == "nmt-x: terminated (SIGTERM)\n"


def test_a_closed_pipe_ends_quietly_with_status_0(capsys, monkeypatch):
    """stdout is pointed at /dev/null (so the buffered rest is not written into the closed pipe at exit)."""
    class Stdout:
        def fileno(self):
            return 99
    pointed = []
    monkeypatch.setattr(os, "dup2", lambda fd, to: pointed.append(to))
    monkeypatch.setattr("sys.stdout", Stdout())
    code, err = _ends(BrokenPipeError(32, "Broken pipe"), capsys)
    assert code == 0 and err == "" and pointed == [99]


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError), reported("nmt-x"):
        raise ZeroDivisionError("a bug")
