"""Source factors carry what the text does not: toy sources whose translation is <loud> or <calm>
as a factor on their words says (the text alone cannot tell) are learned through the factor,
from training (its validation and test translation reading the factor files) to nmt-translate, the
API, nmt-score and the server."""
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
WORD = {EXCLAIM: "<loud>", STATE: "<calm>"}  # pieces of their own (data.spm.user_symbols)


def moods_of(lines, mood):
    """Factor lines: ``mood`` on every word."""
    return [" ".join([mood] * len(s.split())) for s in lines]


def write_split(toy_dir, out, split: str, seed: int) -> None:
    """The toy split's sources, each with a random mood (factor ``mood``) and its mood's word as the
    target."""
    rng = random.Random(seed)
    src = read_lines(f"{toy_dir}/{split}.src")
    moods = [rng.choice((EXCLAIM, STATE)) for _ in src]
    (out / f"{split}.src").write_text("".join(s + "\n" for s in src))
    (out / f"{split}.src.mood").write_text("".join(m + "\n" for s, mood in zip(src, moods) for m in moods_of([s], mood)))
    (out / f"{split}.tgt").write_text("".join(WORD[m] + "\n" for m in moods))


def test_a_factor_the_target_depends_on_is_learned_and_read_everywhere(toy_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for k, split in enumerate(("train", "valid", "test")):
        write_split(toy_dir, data, split, k)
    run_dir = str(tmp_path / "run")
    fit(compose(toy_overrides(data, [*SETTINGS, "data.test=" + str(data / "test"), "data.src_factors=[mood]",
                                     "train.max_steps=200", "data.spm.user_symbols=['<loud>','<calm>']"])), run_dir)
    assert os.path.exists(os.path.join(run_dir, "test", "hyp.txt"))  # the end-of-run test translation read them
    model = nmt.load(run_dir)
    lines = read_lines(str(data / "test.src"))
    for mood in (EXCLAIM, STATE):  # the same sources, every one given this mood
        out = model.translate(lines, factors={"mood": moods_of(lines, mood)})
        assert sum(t == WORD[mood] for t in out) > 0.9 * len(lines), (mood, out)

    translate_cli.main([run_dir, "-i", str(data / "test.src"), "-o", str(tmp_path / "hyp"), "--quiet",
                        "--src-factors", f"mood={data / 'test.src.mood'}"])
    wanted = [WORD[m.split()[-1]] for m in read_lines(str(data / "test.src.mood"))]
    assert sum(w == h for w, h in zip(wanted, read_lines(str(tmp_path / "hyp")))) > 0.9 * len(wanted)
    score_cli.main([run_dir, "-s", str(data / "test.src"), "-t", str(data / "test.tgt"), "-o", str(tmp_path / "sc"),
                    "--src-factors", f"mood={data / 'test.src.mood'}"])
    assert len(read_lines(str(tmp_path / "sc"))) == len(lines)

    pytest.importorskip("fastapi", reason="nmt-serve needs the serve extra")
    from fastapi.testclient import TestClient

    from nmt.serve.app import create_app
    with TestClient(create_app(model)) as client:
        bad = client.post("/v1/translate", json={"text": lines[:2], "factors": {"mood": [EXCLAIM] * 2}})
        assert bad.status_code == 422 and "factors.mood[0]" in bad.json()["error"]  # one value per word
        ok = client.post("/v1/translate", json={"text": lines[:2], "factors": {"mood": moods_of(lines[:2], STATE)}})
        assert ok.status_code == 200 and [t["translation"] for t in ok.json()["translations"]] == [WORD[STATE]] * 2
        missing = client.post("/v1/translate", json={"text": lines[:2]})
        assert missing.status_code == 422 and "mood not given" in missing.json()["error"]
        assert set(client.get("/v1/model").json()["source_factors"]["mood"]) == {EXCLAIM, STATE}
