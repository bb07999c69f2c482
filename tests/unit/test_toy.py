import os

import pytest

from nmt.data import toy
from nmt.data.corpus import CorpusError
from nmt.data.dataset import ensure_generated


def test_generation_is_deterministic_and_splits_disjoint(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    toy.generate(str(a), sizes={"train": 300, "valid": 30, "test": 30})
    toy.generate(str(b), sizes={"train": 300, "valid": 30, "test": 30})
    for name in ("train.src", "train.tgt", "test.src", "test.tgt"):
        assert (a / name).read_text() == (b / name).read_text()
    train = set((a / "train.src").read_text().splitlines())
    test = set((a / "test.src").read_text().splitlines())
    assert len(train) == 300 and not train & test


def test_real_structure_thousands_of_forms_and_verb_final(tmp_path):
    toy.generate(str(tmp_path), sizes={"train": 20000, "valid": 10, "test": 10})
    src = (tmp_path / "train.src").read_text().split()
    tgt_lines = (tmp_path / "train.tgt").read_text().splitlines()
    forms = set(src) | {w for line in tgt_lines for w in line.split()}
    assert len(forms) > 2000
    lex = toy.make_lexicon()
    stems = tuple(v[1] for v in lex.verbs)
    # SOV: the target's last word is always the verb (plus the period).
    assert all(line.split()[-1].rstrip(".").startswith(stems) for line in tgt_lines[:500])


def test_generate_never_overwrites_a_different_file(tmp_path):
    sizes = {"train": 30, "valid": 5, "test": 5}
    toy.generate(str(tmp_path), sizes=sizes)
    toy.generate(str(tmp_path), sizes=sizes)  # identical content: left alone, no error
    (tmp_path / "valid.tgt").write_text("my own data\n")
    with pytest.raises(FileExistsError, match="valid.tgt"):
        toy.generate(str(tmp_path), sizes=sizes)
    assert (tmp_path / "valid.tgt").read_text() == "my own data\n"


def test_toy_corpus_only_written_into_its_own_empty_default_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the user's own corpus (any prefix outside data/toy): nothing is generated anywhere
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "train.de").write_text("hallo\n")
    assert not ensure_generated("corpus/train", "corpus/dev", None, "toy", "de", "en")
    assert sorted(os.listdir(tmp_path / "corpus")) == ["train.de"] and not (tmp_path / "data").exists()
    # a default-looking train prefix with a user valid prefix: still the user's data
    assert not ensure_generated("data/toy/train", "corpus/dev", None, "toy", "src", "tgt")
    assert not (tmp_path / "data").exists()
    # the default place, empty: written
    assert ensure_generated("data/toy/train", "data/toy/valid", "data/toy/test", "toy", "src", "tgt")
    assert len(os.listdir(tmp_path / "data" / "toy")) == 12  # three splits: source, target, alignments, pos
    # the default place holding some corpus files but not all: refused, nothing written
    os.remove(tmp_path / "data" / "toy" / "test.tgt")
    (tmp_path / "data" / "toy" / "train.src").write_text("mine\n")
    with pytest.raises(CorpusError, match="not test.tgt"):
        ensure_generated("data/toy/train", "data/toy/valid", "data/toy/test", "toy", "src", "tgt")
    assert (tmp_path / "data" / "toy" / "train.src").read_text() == "mine\n"
    assert not (tmp_path / "data" / "toy" / "test.tgt").exists()
