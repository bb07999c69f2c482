"""Source factors carry what the text does not: a toy corpus whose target ends in "!" where the
source's factor says so (and "." elsewhere) is learned through the factor, from training (its
validation and test translation reading the factor files) to nmt-translate, the API and nmt-score."""
import os
import random

import pytest

import nmt
from nmt.cli import score as score_cli
from nmt.cli import translate as translate_cli
from nmt.data.corpus import read_lines
from nmt.training.loop import fit

from ..conftest import compose, toy_overrides
from .test_guided_alignment import SETTINGS

EXCLAIM, STATE = "E", "S"


def write_split(toy_dir, out, split: str, seed: int) -> None:
    """The toy split with a sentence-level factor ``mood`` on every source word: E ends the target in "!"."""
    rng = random.Random(seed)
    src, tgt = read_lines(f"{toy_dir}/{split}.src"), read_lines(f"{toy_dir}/{split}.tgt")
    moods = [rng.choice((EXCLAIM, STATE)) for _ in src]
    (out / f"{split}.src").write_text("".join(s + "\n" for s in src))
    (out / f"{split}.src.mood").write_text("".join(" ".join([m] * len(s.split())) + "\n" for s, m in zip(src, moods)))
    (out / f"{split}.tgt").write_text("".join((t[:-1] + " !" if m == EXCLAIM else t) + "\n"
                                              for t, m in zip(tgt, moods)))


def test_a_factor_the_target_depends_on_is_learned_and_read_everywhere(toy_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for k, split in enumerate(("train", "valid", "test")):
        write_split(toy_dir, data, split, k)
    run_dir = str(tmp_path / "run")
    fit(compose(toy_overrides(data, [*SETTINGS, "data.test=" + str(data / "test"), "data.src_factors=[mood]",
                                     "train.max_steps=200"])), run_dir)
    assert os.path.exists(os.path.join(run_dir, "test", "hyp.txt"))  # the end-of-run test translation read them
    model = nmt.load(run_dir)
    lines = read_lines(str(data / "test.src"))
    ends = {}
    for mood in (EXCLAIM, STATE):
        out = model.translate(lines, factors={"mood": [" ".join([mood] * len(s.split())) for s in lines]})
        ends[mood] = sum(t.endswith("!") for t in out) / len(out)
    assert ends[EXCLAIM] > 0.8 and ends[STATE] < 0.2, ends

    translate_cli.main([run_dir, "-i", str(data / "test.src"), "-o", str(tmp_path / "hyp"), "--quiet",
                        "--src-factors", f"mood={data / 'test.src.mood'}"])
    wanted = [m.split()[0] == EXCLAIM for m in read_lines(str(data / "test.src.mood"))]
    got = [h.endswith("!") for h in read_lines(str(tmp_path / "hyp"))]
    assert sum(w == g for w, g in zip(wanted, got)) > 0.8 * len(wanted)
    score_cli.main([run_dir, "-s", str(data / "test.src"), "-t", str(data / "test.tgt"), "-o", str(tmp_path / "sc"),
                    "--src-factors", f"mood={data / 'test.src.mood'}"])
    assert len(read_lines(str(tmp_path / "sc"))) == len(lines)

    pytest.importorskip("fastapi", reason="nmt-serve needs the serve extra")
    from fastapi.testclient import TestClient

    from nmt.serve.app import create_app
    with TestClient(create_app(model)) as client:
        ok = client.post("/v1/translate", json={"text": lines[:2], "factors": {"mood": [EXCLAIM] * 2}})
        assert ok.status_code == 422 and "factors.mood[0]" in ok.json()["error"]  # one value per word
        moods = [" ".join([EXCLAIM] * len(s.split())) for s in lines[:2]]
        ok = client.post("/v1/translate", json={"text": lines[:2], "factors": {"mood": moods}})
        assert ok.status_code == 200 and len(ok.json()["translations"]) == 2
        missing = client.post("/v1/translate", json={"text": lines[:2]})
        assert missing.status_code == 422 and "mood not given" in missing.json()["error"]
        assert set(client.get("/v1/model").json()["source_factors"]["mood"]) == {EXCLAIM, STATE}
