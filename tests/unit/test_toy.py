from nmt.data import toy


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


def test_ensure_only_writes_when_missing(tmp_path):
    assert toy.ensure(str(tmp_path / "t"))
    assert not toy.ensure(str(tmp_path / "t"))
