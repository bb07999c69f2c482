"""A user's own project: their files are never touched, bad input and settings give clear errors
(no tracebacks), one run directory is one training, every run ends with a test score."""
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from ..conftest import TINY_OVERRIDES, bin_path
from .helpers import inputs_untouched, run, wait_for


@pytest.fixture(scope="module")
def user_corpus(toy_dir, tmp_path_factory):
    """A user's own corpus in their own layout: gzipped de/en files named train/dev/test."""
    d = tmp_path_factory.mktemp("user") / "corpus"
    d.mkdir()
    for split, name in (("train", "train"), ("valid", "dev"), ("test", "test")):
        for src_lang, lang in (("src", "de"), ("tgt", "en")):
            with open(toy_dir / f"{split}.{src_lang}", "rb") as f, gzip.open(d / f"{name}.{lang}.gz", "wb") as g:
                g.write(f.read())
    os.chmod(d, 0o555)  # read-only, as a shared corpus often is
    yield d
    os.chmod(d, 0o755)


def no_traceback(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_readme_own_data_recipe_trains_on_the_users_data_and_reports_test(user_corpus, tmp_path):
    """The README's recipe without data.generate=null: the user's corpus, nothing generated anywhere."""
    work = tmp_path / "work"
    work.mkdir()
    proc = run(bin_path("nmt-train"), f"data.train={user_corpus}/train", f"data.valid={user_corpus}/dev",
               f"data.test={user_corpus}/test", "data.src_lang=de", "data.tgt_lang=en", "run_dir=runs/x",
               *TINY_OVERRIDES, "train.max_steps=30", "train.valid_every=15", "train.log_every=10", cwd=work)
    assert not (work / "data").exists()  # no toy corpus written beside the user's work either
    run_dir = work / "runs" / "x"
    log = (run_dir / "train.log").read_text()
    assert "600 training pairs" in log  # the user's corpus, not 20,000 toy pairs
    scores = json.loads((run_dir / "test" / "scores.json").read_text())
    assert scores["sentences"] == 40 and "tok:13a" in scores["bleu"]["signature"] and "nc:6" in scores["chrf"]["signature"]
    assert len((run_dir / "test" / "hyp.txt").read_text().splitlines()) == 40
    assert "test (" in proc.stderr and "BLEU" in proc.stderr
    # every log_every updates one plain line with all the fields a cluster log needs
    line = next(l for l in log.splitlines() if "step 10 |" in l)
    for field in ("epoch 1", "loss", "nll", "ppl", "lr", "tf 1.00", "gnorm", "tok/s"):
        assert field in line, (field, line)
    assert re.search(r"\| \d+:\d\d:\d\d$", line), line  # elapsed time
    assert "\r" not in proc.stderr  # no progress bar without a terminal
    # resuming with a smaller valid set of the user's: still nothing written beside it
    run(bin_path("nmt-train"), f"data.train={user_corpus}/train", f"data.valid={user_corpus}/dev",
        f"data.test={user_corpus}/test", "data.src_lang=de", "data.tgt_lang=en", "run_dir=runs/x", "resume=true",
        *TINY_OVERRIDES, "train.max_steps=35", "train.valid_every=15", "train.log_every=10", cwd=work)


def test_keys_outside_the_schema_stop_at_start_up(tmp_path):
    for bad, named in (("+train.max_step=10", "train.max_step"), ("+foo=1", "foo"), ("train.max_stepz=3", "max_stepz"),
                       ("teacher_forcing.feed=argmx", "argmax")):
        proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'r'}", bad, check=False)
        assert proc.returncode != 0 and named in proc.stderr, (bad, proc.stderr)
        no_traceback(proc)
    assert not (tmp_path / "r" / "spm.model").exists()


@pytest.mark.parametrize("override,named", [
    ("train.max_steps=-5", "train.max_steps"), ("train.clip_grad_norm=-1", "train.clip_grad_norm"),
    ("optim.lr=0", "optim.lr"), ("train.max_tokens=0", "train.max_tokens"), ("encoder.num_layers=0", "encoder.num_layers"),
    ("encoder.hidden_size=0", "encoder.hidden_size"), ("decoder.dropout=1.5", "decoder.dropout")])
def test_bad_values_are_refused_before_any_work_with_the_key_named(toy_dir, tmp_path, override, named):
    run_dir = tmp_path / "r"
    proc = run(bin_path("nmt-train"), f"run_dir={run_dir}", f"data.train={toy_dir}/train",
               f"data.valid={toy_dir}/valid", override, check=False)
    assert proc.returncode != 0 and named in proc.stderr, proc.stderr
    no_traceback(proc)
    assert not (run_dir / "spm.model").exists()  # refused before sentencepiece training


def test_missing_test_split_refused_at_start_up_and_null_skips_it(toy_dir, tmp_path):
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'r'}", f"data.train={toy_dir}/train",
               f"data.valid={toy_dir}/valid", f"data.test={tmp_path}/nope", *TINY_OVERRIDES, check=False)
    assert proc.returncode != 0 and "data.test" in proc.stderr and "nope.src" in proc.stderr
    assert not (tmp_path / "r" / "spm.model").exists()
    run(bin_path("nmt-train"), f"run_dir={tmp_path / 'n'}", f"data.train={toy_dir}/train",
        f"data.valid={toy_dir}/valid", "data.test=null", *TINY_OVERRIDES, "train.max_steps=2", "train.valid_every=2")
    assert not (tmp_path / "n" / "test").exists()


def test_run_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'f'}", check=False)
    assert proc.returncode != 0 and "not a directory" in no_traceback(proc)


def test_clear_errors_for_bad_files_and_devices(toy_dir, tmp_path):
    (tmp_path / "h").write_text("")
    (tmp_path / "r").write_text("")
    proc = run(bin_path("nmt-evaluate"), tmp_path / "h", tmp_path / "r", check=False)
    assert proc.returncode != 0 and "empty" in no_traceback(proc)
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    proc = run(bin_path("nmt-translate"), tmp_path / "random.pt", input="a b\n", check=False)
    assert proc.returncode != 0 and "not a readable checkpoint" in no_traceback(proc)
    with open(toy_dir / "train.src", "rb") as f:
        data = gzip.compress(f.read())
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "train.src.gz").write_bytes(data[: len(data) // 2])
    shutil.copy(toy_dir / "train.tgt", tmp_path / "cut" / "train.tgt")
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'run'}", f"data.train={tmp_path}/cut/train",
               f"data.valid={toy_dir}/valid", "data.test=null", *TINY_OVERRIDES, check=False)
    assert proc.returncode != 0 and "train.src.gz" in proc.stderr and "truncated" in no_traceback(proc)
    if not __import__("torch").cuda.is_available():
        proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'cuda'}", "train.device=cuda", check=False)
        assert proc.returncode != 0 and "CUDA" in no_traceback(proc)


def test_bom_and_control_characters(toy_dir, tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    src = (toy_dir / "train.src").read_text().splitlines()
    src[0] = "\ufeff" + src[0]
    src[3] = src[3] + "\x00"
    (d / "train.src").write_text("\n".join(src) + "\n")
    shutil.copy(toy_dir / "train.tgt", d / "train.tgt")
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'r'}", f"data.train={d}/train",
               f"data.valid={toy_dir}/valid", "data.test=null", *TINY_OVERRIDES, "train.max_steps=1",
               "train.valid_every=1")
    assert "train.src:4: control character '\\x00'" in proc.stderr
    assert "\ufeff" not in (tmp_path / "r" / "train.log").read_text()


def test_second_training_into_one_run_dir_stops_at_once(toy_dir, tmp_path):
    run_dir = tmp_path / "r"
    args = [bin_path("nmt-train"), f"run_dir={run_dir}", f"data.train={toy_dir}/train", f"data.valid={toy_dir}/valid",
            "data.test=null", *TINY_OVERRIDES, "train.max_steps=10", "train.valid_every=5"]
    with inputs_untouched(args):
        first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(run_dir / ".lock", first)
        first.send_signal(signal.SIGSTOP)  # frozen while it holds the lock: no race with its finishing
        try:
            second = run(*args, check=False)
        finally:
            first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    assert second.returncode != 0 and "in use by a training run" in no_traceback(second)
    assert f"pid {first.pid}" in second.stderr
    assert first.returncode == 0, err
    steps = [json.loads(l)["step"] for l in (run_dir / "metrics.jsonl").read_text().splitlines()
             if '"train"' in l]
    assert steps == list(range(1, 11))  # the first run alone wrote its log
    assert not (run_dir / ".lock").exists()


def test_translate_a_run_directory_and_help_is_fast(toy_dir, tmp_path):
    run_dir = tmp_path / "r"
    run(bin_path("nmt-train"), f"run_dir={run_dir}", f"data.train={toy_dir}/train", f"data.valid={toy_dir}/valid",
        "data.test=null", *TINY_OVERRIDES, "train.max_steps=4", "train.valid_every=4")
    a = run(bin_path("nmt-translate"), run_dir, "-i", toy_dir / "test.src", "--greedy").stdout
    b = run(bin_path("nmt-translate"), run_dir / "checkpoints" / "best.pt", "-i", toy_dir / "test.src",
            "--greedy").stdout
    assert a == b and len(a.splitlines()) == 40
    # fast by construction, not by a clock: --help imports none of the heavy libraries
    code = ("import sys; from nmt.cli.train import main; main(['--help']); "
            "heavy = {'torch', 'sentencepiece', 'sacrebleu', 'numpy'} & set(sys.modules); "
            "assert not heavy, f'--help imported {heavy}'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for key in ("train.max_steps", "train.test_beam", "data.test", "optim.lr", "train.init_from"):
        line = next(l for l in proc.stdout.splitlines() if l.strip().startswith(key + " "))
        assert len(line.split(")", 1)[1].strip()) > 10, line  # a description, not just the key
