"""The documentation's commands run as written: every fenced block marked ``bash runnable`` in
README.md and docs/*.md runs, line by line, in a fresh working directory on the toy data (the
toy experiment writes it there), and must succeed; an ``nmt-evaluate`` in a block must show a model that learned."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def runnable_blocks():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for k, m in enumerate(re.finditer(r"```bash runnable\n(.*?)```", path.read_text(), re.S)):
            yield pytest.param(m.group(1), id=f"{path.relative_to(ROOT)}#{k}")


@pytest.mark.parametrize("block", list(runnable_blocks()))
def test_runnable_blocks_run_as_written(block, tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    outputs = []
    for line in block.splitlines():
        command = line.split("  #")[0].strip()
        if not command or command.startswith(". .venv/bin/activate"):
            continue  # the test's interpreter is the venv's already
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, proc.stderr
        outputs.append((command, proc.stdout))
    for command, out in outputs:
        if command.startswith("nmt-evaluate"):
            bleu = float(re.search(r"BLEU = ([\d.]+)", out).group(1))
            assert bleu > 80, f"{command}: BLEU {bleu}: the example does not learn"
