"""Subword regularization: an epoch's sampled segmentation holds the cached pairs (same text, same
order, at most max_len pieces), differs from the deterministic one and between epochs, and is the
same for the same (seed, epoch) in any process; the sampler cleans up after itself."""
import os

import numpy as np
import pytest

from nmt.config import CorpusSpec
from nmt.data import subword
from nmt.data.corpus import read_parallel
from nmt.data.dataset import encode_cached
from nmt.data.mixture import TrainingData
from nmt.data.spm import Tokenizer
from nmt.data.subword import Sampling, SubwordSampler, sample_corpus

from ..unit.helpers import toy_corpus_with_bad_pairs


@pytest.fixture(scope="module")
def toks(toy_dir):
    c = read_parallel(str(toy_dir / "train"), "src", "tgt")
    return {"unigram": Tokenizer.train(c.src[:2000], c.tgt[:2000], 300, "unigram", joint=True, user_symbols=["<t>"])}


@pytest.fixture
def corpus(tmp_path, toy_dir):
    """The toy training corpus with a blank pair and an over-long pair: the cache drops both."""
    return toy_corpus_with_bad_pairs(toy_dir, tmp_path)[0]


def _arrays(c):
    return [list(c.src[i]) for i in range(len(c))], [list(c.tgt[i]) for i in range(len(c))]


@pytest.mark.parametrize("kind, alpha", [("unigram", 0.2), ("unigram", 1.0)])
def test_a_sampled_segmentation_holds_the_cached_pairs_in_their_order(corpus, toks, tmp_path, monkeypatch, kind,
                                                                      alpha):
    tok = toks[kind]
    monkeypatch.setattr(subword, "_CHUNK", 70)  # several chunks, the last partial, dropped lines inside
    base = encode_cached(corpus, "src", "tgt", tok, 50, str(tmp_path / "cache"), src_prefix="<t>")
    out = tmp_path / "sampled"
    out.mkdir()
    stats = sample_corpus(tok, corpus, "src", "tgt", base.directory, "<t>", 50, Sampling(alpha), seed=3, epoch=0,
                          corpus=0, out_dir=str(out))
    from nmt.data.dataset import load_cached
    got = load_cached(str(out))
    (b_src, b_tgt), (s_src, s_tgt) = _arrays(base), _arrays(got)
    assert len(got) == len(base) == stats["kept"]
    assert [tok.src.decode(s) for s in s_src] == [tok.src.decode(s) for s in b_src]  # the same text, pair by pair
    assert [tok.tgt.decode(s) for s in s_tgt] == [tok.tgt.decode(s) for s in b_tgt]
    assert all("<t>" in tok.src_id_pieces(s[:2]) for s in s_src)  # the tag stays one piece
    changed = np.mean([a != b for a, b in zip(s_src + s_tgt, b_src + b_tgt)])
    assert changed > 0.2, changed
    assert stats["pieces"] > stats["base_pieces"]  # sampling splits words more finely
    assert max(map(len, s_src + s_tgt)) <= 50


def test_over_long_samples_keep_their_deterministic_segmentation(corpus, toks, tmp_path):
    tok = toks["unigram"]
    base = encode_cached(corpus, "src", "tgt", tok, 20, str(tmp_path / "cache"))
    (tmp_path / "s").mkdir()
    stats = sample_corpus(tok, corpus, "src", "tgt", base.directory, None, 20, Sampling(0.1), 1, 0, 0,
                          str(tmp_path / "s"))
    from nmt.data.dataset import load_cached
    got = load_cached(str(tmp_path / "s"))
    assert stats["kept_whole"] > 0
    assert int(got.src.lens.max()) <= 20 and int(got.tgt.lens.max()) <= 20


def _sampler(corpus, tok, tmp_path, name, seed=5):
    parts = [encode_cached(corpus, "src", "tgt", tok, 50, str(tmp_path / "cache"))]
    data = TrainingData(parts, [CorpusSpec(path=corpus, name="c")])
    return data, SubwordSampler(data, tok, Sampling(0.2), seed, 50, "src", "tgt", str(tmp_path / name / "rank0"))


def test_epochs_differ_and_the_same_epoch_is_the_same_in_another_process(corpus, toks, tmp_path):
    tok = toks["unigram"]
    base, a = _sampler(corpus, tok, tmp_path, "a")
    _, b = _sampler(corpus, tok, tmp_path, "b")
    try:
        a0, a1 = _arrays(a.epoch(0).parts[0]), _arrays(a.epoch(1).parts[0])
        b1 = _arrays(b.epoch(1).parts[0])  # another sampler, another child process, straight to epoch 2
        assert a1 == b1
        assert a0 != a1
        data = a.epoch(2)
        assert data.fingerprint == base.fingerprint and data.names == base.names and len(data) == len(base)
        assert not (tmp_path / "a" / "rank0" / "epoch-1").exists()  # earlier epochs' files go
        assert (tmp_path / "a" / "rank0" / "epoch-3").exists()  # the next epoch's is on its way
    finally:
        a.close(), b.close()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_sampler_without_child_processes_samples_in_its_own(corpus, toks, tmp_path, monkeypatch):
    tok = toks["unigram"]
    _, a = _sampler(corpus, tok, tmp_path, "a")
    _, b = _sampler(corpus, tok, tmp_path, "b")

    def refuse(*args, **kwargs):
        raise OSError("no processes here")
    try:
        want = _arrays(a.epoch(0).parts[0])
        monkeypatch.setattr(subword.subprocess, "Popen", refuse)
        assert _arrays(b.epoch(0).parts[0]) == want
    finally:
        a.close(), b.close()


def test_a_corpus_shortened_under_the_run_is_named(corpus, toks, tmp_path):
    tok = toks["unigram"]
    _, a = _sampler(corpus, tok, tmp_path, "a")
    try:
        for lang in ("src", "tgt"):
            path = f"{corpus}.{lang}"
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(lines[:100])
        with pytest.raises(Exception, match="fewer lines than its encoded cache"):
            a.epoch(0)
    finally:
        a.close()
    assert not os.path.exists(tmp_path / "a")
