"""nmt-train on several weighted training corpora: the pairs each corpus gives follow the weights,
each corpus has its own cache entry and tag, a resumed run sees the batches an uninterrupted one
would, and a bad list stops with the item named."""
import json

import pytest
import torch

from nmt.checkpoint import load_checkpoint

from ..conftest import TINY_OVERRIDES, bin_path
from .helpers import run


@pytest.fixture(scope="module")
def corpora(toy_dir, tmp_path_factory):
    """The toy training corpus split in two: a 'general' 480 pairs and an 'indomain' 120."""
    d = tmp_path_factory.mktemp("corpora")
    for lang in ("src", "tgt"):
        lines = (toy_dir / f"train.{lang}").read_text(encoding="utf-8").splitlines(keepends=True)
        (d / f"general.{lang}").write_text("".join(lines[:480]), encoding="utf-8")
        (d / f"indomain.{lang}").write_text("".join(lines[480:]), encoding="utf-8")
    return d


def _overrides(toy_dir, corpora, extra=()):
    train = f"data.train=[{{path: {corpora}/general, weight: 1}}, {{path: {corpora}/indomain, weight: 3, " \
            f"src_prefix: '<id>'}}]"
    return [train, f"data.valid={toy_dir}/valid", "data.test=null", "data.generate=null", *TINY_OVERRIDES,
            "train.valid_every=1000", *extra]


def _records(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_each_corpus_gives_pairs_by_its_weight(toy_dir, corpora, tmp_path):
    out = tmp_path / "run"
    proc = run(bin_path("nmt-train"), f"run_dir={out}", "train.max_epochs=2", *_overrides(toy_dir, corpora))
    log = proc.stderr + (out / "train.log").read_text()
    drawn = _records(out, "corpora")
    assert [r["epoch"] for r in drawn] == [1, 2]
    for r in drawn:  # 600 pairs an epoch: 150 general, 450 indomain (3.75 passes), less an unfilled update
        general, indomain = r["pairs"]["general"], r["pairs"]["indomain"]
        assert 140 <= general <= 150 and 430 <= indomain <= 450, r
        assert abs(indomain / (general + indomain) - 0.75) < 0.01
    assert "corpus indomain" in log and "weight 3: 450 drawn per epoch (3.75 passes), sources tagged <id>" in log
    assert "epoch 1 draws general" in log
    assert len(list((out / "cache").glob("train-*"))) == 2  # one cache entry per corpus
    ckpt = load_checkpoint(str(out / "checkpoints" / "last.pt"))
    pieces = ckpt["spm"]["src"].numpy().tobytes()
    assert b"<id>" in pieces  # the tag is one piece of the sentencepiece model


def test_subword_sampling_resumes_exactly_and_cleans_up(toy_dir, corpora, tmp_path):
    """A weighted mixture of two corpora (one tagged) with a fresh segmentation of both each epoch: a
    run cut inside an epoch and resumed past the next draws the pairs and sees the segmentations an
    uninterrupted one did (the resumed mixture position and sampler)."""
    common = _overrides(toy_dir, corpora, ["train.max_tokens=3000", "train.max_sentences=100",
                                           "data.spm.sampling_alpha=0.2"])
    run(bin_path("nmt-train"), f"run_dir={tmp_path / 'whole'}", "train.max_steps=14", *common)
    run(bin_path("nmt-train"), f"run_dir={tmp_path / 'cut'}", "train.max_steps=4", *common)
    run(bin_path("nmt-train"), f"run_dir={tmp_path / 'cut'}", "resume=true", "train.max_steps=14")
    a = load_checkpoint(str(tmp_path / "whole" / "checkpoints" / "last.pt"))
    b = load_checkpoint(str(tmp_path / "cut" / "checkpoints" / "last.pt"))
    assert a["train_state"]["epoch"] == b["train_state"]["epoch"] >= 1
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], msg=k)
    log = (tmp_path / "whole" / "train.log").read_text()
    assert log.count("sampled segmentation (alpha 0.2, 16 best)") == a["train_state"]["epoch"] + 1
    assert a["config"]["data"]["spm"]["sampling_alpha"] == 0.2
    assert not (tmp_path / "whole" / "subword").exists() and not (tmp_path / "cut" / "subword").exists()


def test_a_changed_corpus_of_a_mixture_is_refused_on_resume(toy_dir, corpora, tmp_path):
    d = tmp_path / "own"
    d.mkdir()
    for name in ("general.src", "general.tgt", "indomain.src", "indomain.tgt"):
        (d / name).write_bytes((corpora / name).read_bytes())
    common = _overrides(toy_dir, d)
    run(bin_path("nmt-train"), f"run_dir={tmp_path / 'r'}", "train.max_steps=2", *common)
    with open(d / "indomain.tgt", "a", encoding="utf-8") as f:
        f.write("one more line\n")
    with open(d / "indomain.src", "a", encoding="utf-8") as f:
        f.write("noch eine zeile\n")
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'r'}", "resume=true", "train.max_steps=4", check=False)
    assert proc.returncode != 0
    assert "changed since the checkpoint was written" in proc.stderr and "indomain.src" in proc.stderr


@pytest.mark.parametrize("value, message", [
    ("[{path: X/general, weight: 0}]", "data.train[0].weight=0: must be a number > 0"),
    ("[{path: X/general}, {path: X/nothing}]", "missing corpus file: X/nothing.src"),
    ("[{path: X/general, wieght: 2}]", "data.train[0]: unknown key 'wieght'; did you mean 'weight'?"),
])
def test_a_bad_corpus_list_stops_before_training_naming_the_item(toy_dir, corpora, tmp_path, value, message):
    value, message = value.replace("X", str(corpora)), message.replace("X", str(corpora))
    proc = run(bin_path("nmt-train"), f"run_dir={tmp_path / 'r'}", f"data.train={value}",
               *_overrides(toy_dir, corpora)[1:], check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()
