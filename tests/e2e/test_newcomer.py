"""What a newcomer meets in the first hour: the README's API snippet as a plain script, runs that end
on their last weights."""
import subprocess
import sys

from ..conftest import toy_overrides


def test_readme_api_snippet_runs_once_as_a_script_without_a_main_guard(toy_dir, tmp_path):
    """The README's ``nmt.train([...])`` line in a file with no ``if __name__ == "__main__":``:
    sentencepiece trains in a fresh interpreter that never imports the user's script, so the script
    runs exactly once and ends."""
    overrides = ["experiment=toy", "run_dir=runs/x", *toy_overrides(toy_dir, ["train.max_steps=4", "train.valid_every=2"])]
    script = tmp_path / "train_it.py"
    script.write_text("import nmt\n"
                      "with open('started.txt', 'a') as f:\n"
                      "    f.write('started\\n')\n"
                      f"summary = nmt.train({overrides!r})\n"
                      "print(summary['steps'], summary['stop_reason'])\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "started.txt").read_text() == "started\n"  # never re-run by a child process
    assert proc.stdout.split() == ["4", "max_steps"]
