"""After training: averaging, ensembles, scoring, output formats, the Python API, fine-tuning,
vocabulary reuse and gradient-flow recording, through the real programs."""
import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

import nmt
from nmt.checkpoint import load_checkpoint

from ..conftest import bin_path, toy_overrides
from .helpers import run


@pytest.fixture(scope="module")
def runs(toy_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    common = ["optim.lr=5e-3", "train.max_tokens=1500", "data.test=null"]
    run(bin_path("nmt-train"), f"run_dir={base / 'a'}", *toy_overrides(toy_dir, [
        *common, "train.max_steps=60", "train.valid_every=20", "train.keep_last=3", "train.grad_flow_every=20",
        "train.plots=true"]))
    run(bin_path("nmt-train"), f"run_dir={base / 'b'}", *toy_overrides(toy_dir, [
        *common, "train.max_steps=40", "train.valid_every=20", "train.seed=2", "data.spm.model=" + str(base / "a" / "spm.model")]))
    return base


def test_average_last_checkpoints_translates_and_is_not_resumable(runs, toy_dir, tmp_path):
    avg = tmp_path / "avg.pt"
    proc = run(bin_path("nmt-average"), runs / "a", "--last", "3", "-o", avg)
    assert "step_20.pt, step_40.pt, step_60.pt" in proc.stderr
    ckpts = [load_checkpoint(str(runs / "a" / "checkpoints" / f"step_{s}.pt"))["model"] for s in (20, 40, 60)]
    got = load_checkpoint(str(avg))["model"]
    for k, v in got.items():
        torch.testing.assert_close(v, sum(c[k] for c in ckpts) / 3, msg=k)
    out = run(bin_path("nmt-translate"), avg, "-i", toy_dir / "test.src", "--greedy").stdout
    assert len(out.splitlines()) == 40
    # resuming from it is refused with the reason
    (tmp_path / "resume" / "checkpoints").mkdir(parents=True)
    shutil.copy(avg, tmp_path / "resume" / "checkpoints" / "last.pt")
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'resume'}", "resume=true",
               *toy_overrides(toy_dir, ["data.test=null"]), check=False)
    assert proc.returncode != 0 and "cannot be resumed" in proc.stderr and "init_from" in proc.stderr
    # a run with other settings cannot be averaged with it, and the message names the first difference
    other = tmp_path / "other"
    run(bin_path("nmt-train"), f"run_dir={other}", *toy_overrides(toy_dir, [
        "train.max_steps=2", "train.valid_every=2", "data.test=null", "encoder.hidden_size=16",
        "data.spm.model=" + str(runs / "a" / "spm.model")]))
    proc = run(bin_path("nmt-average"), runs / "a" / "checkpoints" / "best.pt", other / "checkpoints" / "last.pt",
               "-o", tmp_path / "bad.pt", check=False)
    assert proc.returncode != 0 and "encoder.hidden_size" in proc.stderr and not (tmp_path / "bad.pt").exists()


def test_ensembles(runs, toy_dir):
    a, b = runs / "a" / "checkpoints" / "best.pt", runs / "b" / "checkpoints" / "best.pt"
    src = toy_dir / "test.src"
    single = run(bin_path("nmt-translate"), a, "-i", src, "--beam", "4", "--output-format", "tsv").stdout
    same = run(bin_path("nmt-translate"), a, a, "-i", src, "--beam", "4", "--output-format", "tsv").stdout
    for x, y in zip(single.splitlines(), same.splitlines()):  # an ensemble of one model twice is that model
        assert x.split("\t")[2] == y.split("\t")[2] and abs(float(x.split("\t")[1]) - float(y.split("\t")[1])) < 1e-3
    both = run(bin_path("nmt-translate"), a, b, "-i", src, "--nbest", "2", "--beam", "3").stdout
    assert len(both.splitlines()) == 80
    assert len(run(bin_path("nmt-translate"), a, b, "-i", src, "--greedy").stdout.splitlines()) == 40


def test_ensemble_members_must_share_the_vocabulary(runs, toy_dir, tmp_path):
    other = tmp_path / "v"
    run(bin_path("nmt-train"), f"run_dir={other}", *toy_overrides(toy_dir, [
        "train.max_steps=2", "train.valid_every=2", "data.test=null", "data.spm.vocab_size=150"]))
    proc = run(bin_path("nmt-translate"), runs / "a", other, "-i", toy_dir / "test.src", check=False)
    assert proc.returncode != 0 and "vocabulary" in proc.stderr and "Traceback" not in proc.stderr


def test_scoring_and_output_formats(runs, toy_dir, tmp_path):
    ckpt = runs / "a"
    src = toy_dir / "test.src"
    jsonl = run(bin_path("nmt-translate"), ckpt, "-i", src, "--beam", "3", "--nbest", "2", "--penalty", "none",
                "--output-format", "jsonl").stdout.splitlines()
    records = [json.loads(l) for l in jsonl]
    assert len(records) == 40 and all(len(r["nbest"]) == 2 and r["nbest"][0]["score"] == r["score"] for r in records)
    hyps = tmp_path / "hyps.txt"
    hyps.write_text("".join(r["translation"] + "\n" for r in records))
    # nmt-score: (sum, mean, count) per line, in input order, the same numbers as the Python API.
    # (That a search result scores what search reported is checked on token ids in test_translator:
    # an undertrained model's text need not re-encode to the tokens it was decoded from.)
    refs = (toy_dir / "test.tgt").read_text().splitlines()
    scored = run(bin_path("nmt-score"), ckpt, "-s", src, "-t", toy_dir / "test.tgt").stdout.splitlines()
    assert len(scored) == 40
    expected = nmt.load(str(ckpt)).score(src.read_text().splitlines(), refs)
    for line, want, ref in zip(scored, expected, refs):
        logprob, mean, count = line.split("\t")
        assert abs(float(logprob) - want) < 1e-4 and float(logprob) < 0
        assert abs(float(mean) * int(count) - float(logprob)) < 1e-3 and int(count) > len(ref.split())
    # shuffled input, shuffled output: batching by length does not leak into the order
    order = list(range(40))[::-3] + [i for i in range(40) if i not in range(40)[::-3]]
    (tmp_path / "s").write_text("".join(src.read_text().splitlines()[i] + "\n" for i in order))
    (tmp_path / "t").write_text("".join(refs[i] + "\n" for i in order))
    shuffled = run(bin_path("nmt-score"), ckpt, "-s", tmp_path / "s", "-t", tmp_path / "t",
                   "--alignment").stdout.splitlines()
    assert len(shuffled) == 40  # each line's own numbers (other batches round differently in the 6th digit)
    aligned = nmt.load(str(ckpt)).align(src.read_text().splitlines(), refs)  # the API's forced alignment
    for line, i in zip(shuffled, order):
        got, want = line.split("\t"), scored[i].split("\t")
        assert got[2] == want[2] and abs(float(got[0]) - float(want[0])) < 1e-4, (i, line, scored[i])
        # --alignment: a fourth column, the pair's links, as the API gives them, covering every target word
        assert got[3] == aligned[i] and {int(link.split("-")[1]) for link in got[3].split()} == \
            set(range(len(refs[i].split()))), (i, got[3])
    sent = run(bin_path("nmt-evaluate"), hyps, toy_dir / "test.tgt", "--sentence", "jsonl").stdout.splitlines()
    assert len(sent) == 40 and {"line", "bleu", "chrf"} <= set(json.loads(sent[0]))
    tsv = run(bin_path("nmt-evaluate"), hyps, toy_dir / "test.tgt", "--sentence").stdout.splitlines()
    assert tsv[0] == "line\tbleu\tchrf" and len(tsv) == 41


def test_fine_tuning_and_grad_flow_records(runs, toy_dir, tmp_path):
    a = runs / "a"
    flows = [json.loads(l) for l in (a / "metrics.jsonl").read_text().splitlines() if '"grad_flow"' in l]
    assert [f["step"] for f in flows] == [0, 20, 40] and all(len(f["encoder"]) > 5 for f in flows)
    assert (a / "plots" / "grad_flow.png").exists()
    assert (runs / "b" / "spm.model").read_bytes() == (a / "spm.model").read_bytes()  # reused, not retrained
    tuned = tmp_path / "tuned"
    proc = run(bin_path("nmt-train"), f"run_dir={tuned}", f"train.init_from={a / 'checkpoints' / 'last.pt'}",
               *toy_overrides(toy_dir, ["train.max_steps=5", "train.valid_every=5", "data.test=null", "optim.lr=1e-4"]))
    assert "fine-tuning" in proc.stderr
    assert (tuned / "spm.model").read_bytes() == (a / "spm.model").read_bytes()
    first = [json.loads(l) for l in (tuned / "metrics.jsonl").read_text().splitlines()][0]
    trained = [json.loads(l) for l in (a / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
    # starts where the source run ended (its last update, step 60), far below a fresh start
    assert first["loss"] < trained[0]["loss"] - 1.0 and abs(first["loss"] - trained[-1]["loss"]) < 0.5
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'bad'}", f"train.init_from={a}/checkpoints/best.pt",
               *toy_overrides(toy_dir, ["train.max_steps=5", "data.test=null", "decoder.hidden_size=32"]), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert re.search(r"'[\w.]+weight' is \(64, 64\) in the checkpoint but \(32, 64\) in this model", proc.stderr)


def test_python_api(runs, toy_dir, tmp_path):
    code = f"""
import json, sys, nmt
model = nmt.load({str(runs / 'a')!r})
lines = open({str(toy_dir / 'test.src')!r}).read().splitlines()[:5]
out = model.translate(lines)
nb = model.translate(lines, beam=4, nbest=3)
scores = model.score(lines, out)
summary = nmt.train(["run_dir={tmp_path / 'api'}", "data.train={toy_dir}/train", "data.valid={toy_dir}/valid",
                     "data.test={toy_dir}/test", "data.generate=null", "encoder.hidden_size=16", "decoder.hidden_size=32",
                     "decoder.embed_size=16", "encoder.embed_size=16", "attention.hidden_size=16",
                     "decoder.attentional_size=32", "data.spm.vocab_size=200", "train.max_steps=3",
                     "train.valid_every=3", "train.plots=false", "train.tensorboard=false", "train.test_beam=2"])
print(json.dumps({{"out": out, "nb": nb, "scores": scores, "version": nmt.__version__,
                  "summary": {{k: summary[k] for k in ("steps", "stop_reason")}}, "test": summary["test"]["bleu"]["score"]}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    cli = run(bin_path("nmt-translate"), runs / "a", "-i", toy_dir / "test.src").stdout.splitlines()[:5]
    assert r["out"] == cli  # the same defaults as nmt-translate (beam 5)
    assert len(r["nb"]) == 5 and all(len(n) == 3 and n[0][1] >= n[1][1] for n in r["nb"])
    assert len(r["scores"]) == 5 and all(s < 0 for s in r["scores"])
    assert r["summary"] == {"steps": 3, "stop_reason": "max_steps"} and r["version"] and r["test"] >= 0
