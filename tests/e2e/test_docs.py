"""The documentation's commands run as written: every fenced block marked ``bash runnable`` in
README.md and docs/*.md runs, line by line, in a fresh working directory on the toy data (the
toy experiment writes it there), and must succeed; an ``nmt-evaluate`` in a block must show a model that learned.

A line that is one nmt program with plain arguments runs that program in this process (``helpers.run``:
the same argument parsing and exit status, without a Python start per line); a line with shell syntax
runs in bash. A line that trains exactly ``make demo``'s model (the same arguments up to ``run_dir``)
takes the session's shared run (``toy_run``: that training, made once) into its ``run_dir``."""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import bin_path, demo_arguments, demo_run_dir
from .helpers import run

ROOT = Path(__file__).resolve().parents[2]
SHELL = re.compile(r"[|<>&;$`()*?~\\]")  # what only bash can run


def runnable_blocks():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for k, m in enumerate(re.finditer(r"```bash runnable\n(.*?)```", path.read_text(), re.S)):
            yield pytest.param(m.group(1), id=f"{path.relative_to(ROOT)}#{k}")


def _without_run_dir(words):
    return [w for w in words if not w.startswith("run_dir=")]


def _demo_training(words, toy_run, cwd) -> bool:
    """``words`` train ``make demo``'s model: the shared run's data and run directory are copied to
    ``cwd`` (under the line's ``run_dir``) instead of training it again."""
    if words[:1] != ["nmt-train"] or _without_run_dir(words[1:]) != _without_run_dir(demo_arguments()):
        return False
    target = next(w for w in words if w.startswith("run_dir=")).split("=", 1)[1]
    work = toy_run()
    shutil.copytree(work / "data", cwd / "data", dirs_exist_ok=True)
    shutil.copytree(demo_run_dir(work), cwd / target)
    return True


def run_line(command, cwd, toy_run):
    """(status, stdout, stderr) of one documented command run in ``cwd``."""
    words = None if SHELL.search(command) else shlex.split(command)
    if words and _demo_training(words, toy_run, cwd):
        return 0, "", ""
    if words and words[0].startswith("nmt-"):
        proc = run(bin_path(words[0]), *words[1:], cwd=cwd, check=False)
    else:
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=900)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("block", list(runnable_blocks()))
def test_runnable_blocks_run_as_written(block, tmp_path, request):
    outputs = []
    for line in block.splitlines():
        command = line.split("  #")[0].strip()
        if not command or command.startswith(". .venv/bin/activate"):
            continue  # the test's interpreter is the venv's already
        code, out, err = run_line(command, tmp_path, lambda: request.getfixturevalue("toy_run"))
        assert code == 0, f"{command}\n{err[-3000:]}"
        assert "Traceback" not in err, err
        outputs.append((command, out))
    for command, out in outputs:
        if command.startswith("nmt-evaluate"):
            bleu = float(re.search(r"BLEU = ([\d.]+)", out).group(1))
            assert bleu > 80, f"{command}: BLEU {bleu}: the example does not learn"
