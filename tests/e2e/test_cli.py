"""End to end through the real command-line programs, on the small toy corpus."""
import json
import os
import re
import signal
import subprocess

import pytest
import torch

from nmt.checkpoint import load_checkpoint

from ..conftest import bin_path, demo_run_dir, toy_overrides
from .helpers import inputs_untouched, run, wait_for


@pytest.fixture(scope="module")
def trained(toy_run):
    """The session's toy model (``make demo``'s run): its run directory."""
    return demo_run_dir(toy_run)


def test_training_outputs(trained):
    for name in ("config.yaml", "spm.model", "train.log", "metrics.jsonl", "checkpoints/best.pt",
                 "checkpoints/last.pt", "checkpoints/step_350.pt", "plots/loss.png", "plots/bleu.png",
                 "plots/grad_norm.png", "test/hyp.txt", "test/scores.json"):
        assert (trained / name).exists(), name
    # constant learning rate and teacher forcing: said in the log, not drawn
    assert not (trained / "plots" / "teacher_forcing.png").exists() and not (trained / "plots" / "lr.png").exists()
    assert any(p.startswith("events") for p in os.listdir(trained / "tensorboard"))
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in records if r["kind"] == "train"]
    assert sum(train[-10:]) / 10 < sum(train[:10]) / 10 - 1.0  # the loss fell
    assert [r["step"] for r in records if r["kind"] == "valid"] == [175, 350]
    assert "valid loss" in (trained / "train.log").read_text()


def test_translate_file_and_stdin_identical_and_evaluate(trained, toy_dir, tmp_path):
    ckpt = str(trained / "checkpoints" / "best.pt")
    out = tmp_path / "hyp.txt"
    proc = run(bin_path("nmt-translate"), ckpt, "-i", str(toy_dir / "test.src"), "-o", str(out),
               "--ref", str(toy_dir / "test.tgt"))
    assert "BLEU" in proc.stderr
    stdin_out = run(bin_path("nmt-translate"), ckpt, input=(toy_dir / "test.src").read_text()).stdout
    assert stdin_out == out.read_text()
    assert len(stdin_out.splitlines()) == 40
    ev = json.loads(run(bin_path("nmt-evaluate"), str(out), str(toy_dir / "test.tgt"), "--json").stdout)
    assert set(ev) == {"bleu", "chrf"} and "tok:13a" in ev["bleu"]["signature"]
    # the score nmt-translate --ref printed is the one nmt-evaluate computes from the written file
    printed = float(re.search(r"BLEU = ([\d.]+)", proc.stderr).group(1))
    assert printed == pytest.approx(ev["bleu"]["score"], abs=0.01)
    text = run(bin_path("nmt-evaluate"), str(out), str(toy_dir / "test.tgt"), "--ter").stdout
    assert "BLEU" in text and "chrF" in text and "TER" in text


def test_batch_size_does_not_change_output(trained, toy_dir):
    ckpt = str(trained / "checkpoints" / "best.pt")
    args = [bin_path("nmt-translate"), ckpt, "-i", str(toy_dir / "test.src"), "--nbest", "2", "--quiet"]
    one = run(*args, "--batch-size", "1").stdout.splitlines()
    many = run(*args, "--batch-size", "64").stdout.splitlines()
    assert [l.split("\t")[::2] for l in one] == [l.split("\t")[::2] for l in many]
    for a, b in zip(one, many):  # printed with 4 decimals: within one unit of the last digit
        assert abs(float(a.split("\t")[1]) - float(b.split("\t")[1])) < 1.5e-4


def test_line_count_preserved_with_blank_lines_and_truncation(trained, toy_dir):
    ckpt = str(trained / "checkpoints" / "best.pt")
    lines = (toy_dir / "test.src").read_text().splitlines()[:3]
    long_line = " ".join(lines * 20)
    text = "\n".join([lines[0], "", "   ", lines[1], long_line, lines[2]]) + "\n"
    proc = run(bin_path("nmt-translate"), ckpt, "--max-src-len", "40", "--greedy", input=text)
    out = proc.stdout.split("\n")[:-1]
    alone = run(bin_path("nmt-translate"), ckpt, "--greedy", input="\n".join(lines) + "\n").stdout.split("\n")[:-1]
    assert len(out) == 6 and out[1] == "" and out[2] == ""
    assert [out[0], out[3], out[5]] == alone
    assert "line 5" in proc.stderr and "truncated" in proc.stderr


def test_invalid_utf8_names_the_line(trained):
    proc = run(bin_path("nmt-translate"), str(trained / "checkpoints" / "best.pt"),
               input=b"fine line\nbad \xff line\n", check=False)
    assert proc.returncode != 0 and b":2:" in proc.stderr and b"UTF-8" in proc.stderr


def test_nbest_sampling_int8_and_attention_plots(trained, toy_dir, tmp_path):
    ckpt = str(trained / "checkpoints" / "best.pt")
    src = str(toy_dir / "test.src")
    nbest = run(bin_path("nmt-translate"), ckpt, "-i", src, "--beam", "4", "--nbest", "3", "--quiet").stdout.splitlines()
    assert len(nbest) == 120
    idx, score, _ = nbest[0].split("\t")
    assert idx == "0" and float(score) <= 0
    sample = run(bin_path("nmt-translate"), ckpt, "-i", src, "--sample", "--top-k", "5", "--quiet").stdout
    assert len(sample.splitlines()) == 40
    int8 = run(bin_path("nmt-translate"), ckpt, "-i", src, "--int8", "--quiet").stdout
    assert len(int8.splitlines()) == 40
    exact = run(bin_path("nmt-translate"), ckpt, "-i", src, "--quiet").stdout.splitlines()
    fp16 = run(bin_path("nmt-translate"), ckpt, "-i", src, "--fp16-weights", "--quiet").stdout.splitlines()
    assert sum(a == b for a, b in zip(exact, fp16)) >= 39  # fp16 weights: (almost always) fp32's translations
    both = run(bin_path("nmt-translate"), ckpt, "-i", src, "--int8", "--fp16-weights", check=False)
    assert both.returncode != 0 and "--int8 and --fp16-weights: choose one" in both.stderr
    plots = tmp_path / "att"
    run(bin_path("nmt-translate"), ckpt, "-i", src, "--attention-plot", str(plots), "--attention-plot-count", "3",
        "--quiet")
    assert sorted(os.listdir(plots)) == ["attention_1.png", "attention_2.png", "attention_3.png"]
    bad = run(bin_path("nmt-translate"), ckpt, "-i", src, "--beam", "2", "--nbest", "3", check=False)
    assert bad.returncode != 0 and "nbest" in bad.stderr


def test_shortlist_stored_in_the_checkpoint(trained, toy_dir):
    """Training stores the lexical shortlist; --shortlist K decodes with it, through the CLI and the
    Python API alike; ensembles and out-of-range sizes are refused with a clear message."""
    import nmt
    ckpt = str(trained / "checkpoints" / "best.pt")
    stored = load_checkpoint(ckpt)["shortlist"]
    assert stored["table"].shape[1] == 100 and len(stored["frequent"]) > 0
    src = str(toy_dir / "test.src")
    short = run(bin_path("nmt-translate"), ckpt, "-i", src, "--shortlist", "20", "--quiet").stdout.splitlines()
    assert len(short) == 40
    api = nmt.load(ckpt).translate((toy_dir / "test.src").read_text().splitlines(), shortlist=20)
    assert api == short
    both = run(bin_path("nmt-translate"), ckpt, ckpt, "-i", src, "--shortlist", "20", check=False)
    assert both.returncode != 0 and "single model" in both.stderr and "Traceback" not in both.stderr
    wide = run(bin_path("nmt-translate"), ckpt, "-i", src, "--shortlist", "500", check=False)
    assert wide.returncode != 0 and "between 1 and 100" in wide.stderr


def test_the_demo_experiment_learns_the_toy_task(toy_run):
    """What ``make demo`` runs (the session's shared run): the toy experiment from an empty folder (its
    corpus written into data/toy there) reaches >= 90 BLEU on the test split, scored by the run itself
    and by nmt-evaluate."""
    scores = json.loads((demo_run_dir(toy_run) / "test" / "scores.json").read_text())
    ev = json.loads(run(bin_path("nmt-evaluate"), demo_run_dir(toy_run) / "test" / "hyp.txt",
                        toy_run / "data" / "toy" / "test.tgt", "--json").stdout)
    assert ev["bleu"]["score"] == pytest.approx(scores["bleu"]["score"], abs=0.01)
    assert ev["bleu"]["score"] >= 90, ev


def test_evaluate_refuses_mismatched_line_counts(tmp_path):
    (tmp_path / "h").write_text("a\nb\n")
    (tmp_path / "r").write_text("a\n")
    proc = run(bin_path("nmt-evaluate"), str(tmp_path / "h"), str(tmp_path / "r"), check=False)
    assert proc.returncode != 0 and "2 lines" in proc.stderr and "1" in proc.stderr


HELP = {"train": ["experiment", "resume", "encoder"], "translate": ["--beam", "--nbest", "--greedy"],
        "evaluate": ["--json", "REF"], "data": ["toy", "multi30k"], "average": ["--last", "-o OUTPUT"],
        "score": ["-s SOURCE", "-t TARGET", "logprob"], "serve": ["--port", "--max-batch-sentences", "--api-key"],
        "export": ["-o DIR", "--int8", "ONNX Runtime"]}


def test_help_of_every_command():
    """Each of the programs (the console scripts pyproject.toml declares) prints its help, naming
    its main options, and exits 0."""
    from nmt.cli.entry import PROGRAMS
    assert set(HELP) == set(PROGRAMS)
    for program, words in HELP.items():
        proc = run(bin_path(f"nmt-{program}"), "--help")
        assert all(w in proc.stdout for w in words), (program, proc.stdout)


def test_bad_data_gives_a_clear_error(tmp_path, toy_dir):
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'r'}", f"data.train={tmp_path}/missing",
               f"data.valid={toy_dir}/valid", "data.generate=null", check=False)
    assert proc.returncode != 0 and "missing.src" in proc.stderr and "missing.src.gz" in proc.stderr
    proc = run(bin_path("nmt-train"), "train.max_stepz=3", check=False)
    assert proc.returncode != 0 and "max_stepz" in proc.stderr


def test_kill_9_then_resume_reproduces_the_uninterrupted_run(toy_dir, tmp_path):
    args = toy_overrides(toy_dir, ["train.max_steps=30", "train.valid_every=10", "train.max_tokens=1500",
                                   "encoder.dropout=0.2"])
    run(bin_path("nmt-train"), f"run_dir={tmp_path / 'whole'}", *args)
    killed = tmp_path / "killed"
    with inputs_untouched([bin_path("nmt-train"), f"run_dir={killed}", *args]):
        proc = subprocess.Popen([bin_path("nmt-train"), f"run_dir={killed}", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(killed / "checkpoints" / "step_10.pt", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    step = load_checkpoint(str(killed / "checkpoints" / "last.pt"))["train_state"]["step"]
    assert step in (10, 20, 30)
    run(bin_path("nmt-train"), f"run_dir={killed}", "resume=true", *args)
    a = load_checkpoint(str(tmp_path / "whole" / "checkpoints" / "last.pt"))["model"]
    b = load_checkpoint(str(killed / "checkpoints" / "last.pt"))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigint_saves_last_and_exits_cleanly(toy_dir, tmp_path):
    run_dir = tmp_path / "int"
    args = [bin_path("nmt-train"), f"run_dir={run_dir}",
            *toy_overrides(toy_dir, ["train.max_steps=100000", "train.valid_every=5"])]
    with inputs_untouched(args):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(run_dir / "checkpoints" / "step_5.pt", proc)  # mid-run, between validations
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    state = load_checkpoint(str(run_dir / "checkpoints" / "last.pt"))["train_state"]
    assert state["step"] >= 5
    records = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == state["step"]  # not a single update lost


def test_a_sweep_trains_each_job_and_ends_with_its_table(toy_dir, tmp_path):
    """``-m`` over two choices: one run directory per job and the summary table. (Every combination of
    encoder, attention and decoder is built, stepped and trained one update by the unit tests:
    test_seq2seq.py and test_decoder_step.py.)"""
    sweep = tmp_path / "sweep"
    base = [o for o in toy_overrides(toy_dir) if not o.startswith("train.max_tokens")]
    run(bin_path("nmt-train"), "-m", f"hydra.sweep.dir={sweep}", "debug=fast", "train.max_steps=2",
        "train.valid_every=2", "train.max_tokens=800", "encoder=birnn,stacked_lstm", "attention=luong_general",
        "decoder=gru", *base, timeout=900)
    jobs = [d for d in os.listdir(sweep) if d.isdigit()]
    assert sorted(jobs) == ["0", "1"]
    assert all((sweep / j / "checkpoints" / "last.pt").exists() for j in jobs)
    # the sweep ends with a table of its jobs, also written as multirun.tsv
    rows = (sweep / "multirun.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["job", "overrides", "best_valid_bleu"] and len(rows) == 3
    first, second = rows[1].split("\t"), rows[2].split("\t")
    assert first[0] == "0" and "encoder=birnn" in first[1] and first[5] == "2" and first[6] == "max_steps"
    assert second[0] == "1" and "encoder=stacked_lstm" in second[1]
