"""The training-data pipeline: streamed encoding into a memory-mapped cache, equal to in-memory
encoding; cache keys; interrupted encodings; sampling for sentencepiece."""
import os

import numpy as np
import pytest

from nmt.data import dataset
from nmt.data.batching import TokenArrays
from nmt.data.corpus import CorpusError, iter_parallel, read_parallel, sample_pairs
from nmt.data.dataset import EncodedCorpus, encode_cached, open_cached
from nmt.data.spm import Tokenizer

from .helpers import collate, filter_pairs, toy_corpus_with_bad_pairs, write_lines


@pytest.fixture(scope="module")
def tok(toy_dir):
    c = read_parallel(str(toy_dir / "train"), "src", "tgt")
    return Tokenizer.train(c.src[:2000], c.tgt[:2000], 300, "unigram", joint=True)


@pytest.fixture
def corpus(tmp_path, toy_dir):
    """The toy training corpus with a blank pair and an over-long pair added."""
    return toy_corpus_with_bad_pairs(toy_dir, tmp_path)


def test_cached_encoding_equals_in_memory_encoding(corpus, tok, tmp_path, monkeypatch):
    prefix, src, tgt = corpus
    monkeypatch.setattr(dataset, "_CHUNK", 70)  # several chunks, the last one partial
    got = encode_cached(prefix, "src", "tgt", tok, max_len=50, cache_dir=str(tmp_path / "cache"), threads=2)
    src_ids, tgt_ids = tok.encode_src(src), tok.encode_tgt(tgt)
    keep, stats = filter_pairs(src_ids, tgt_ids, src, tgt, 50)
    assert stats["empty"] == 1 and stats["too_long"] >= 1
    assert len(got) == len(keep) and got.src_text is None  # no raw training text kept
    assert isinstance(got.src.tokens, np.memmap) and got.src.tokens.dtype == np.uint16
    assert [got.src[i] for i in range(len(got))] == [src_ids[i] for i in keep]
    assert [got.tgt[i] for i in range(len(got))] == [tgt_ids[i] for i in keep]
    idx = [5, 0, 17, 3]
    want = collate([src_ids[keep[i]] for i in idx], [tgt_ids[keep[i]] for i in idx], idx)
    b = got.batch(idx)
    for name in ("src", "src_lens", "tgt_in", "tgt_out"):
        assert getattr(b, name).tolist() == getattr(want, name).tolist(), name


def test_cache_is_reused_and_keyed_by_corpus_and_model(corpus, tok, tmp_path, monkeypatch):
    prefix, src, tgt = corpus
    cache = str(tmp_path / "cache")
    first = encode_cached(prefix, "src", "tgt", tok, 50, cache)
    entries = os.listdir(cache)
    assert len(entries) == 1 and not any(e.startswith(".") for e in entries)

    def refuse(*a, **k):
        raise AssertionError("encoded again")
    monkeypatch.setattr(dataset, "_write_cache", refuse)
    again = encode_cached(prefix, "src", "tgt", tok, 50, cache)
    assert np.array_equal(again.src.tokens, first.src.tokens)
    monkeypatch.undo()
    encode_cached(prefix, "src", "tgt", tok, 40, cache)  # another max_len
    write_lines(tmp_path / "c.tgt", tgt[:-1] + ["changed"])  # another corpus
    encode_cached(prefix, "src", "tgt", tok, 50, cache)
    other = Tokenizer.train(src[:500], tgt[:500], 200, "unigram", joint=True)
    encode_cached(prefix, "src", "tgt", other, 50, cache)  # another sentencepiece model
    assert len(os.listdir(cache)) == 4


def test_interrupted_encoding_leaves_nothing_behind(corpus, tok, tmp_path, monkeypatch):
    prefix, _, _ = corpus
    cache = tmp_path / "cache"

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(dataset, "_write_cache", interrupted)
    with pytest.raises(KeyboardInterrupt):
        encode_cached(prefix, "src", "tgt", tok, 50, str(cache))
    assert os.listdir(cache) == []


def test_a_worker_rank_only_reads_the_cache(corpus, tok, tmp_path):
    prefix, _, _ = corpus
    with pytest.raises(FileNotFoundError):
        open_cached(prefix, "src", "tgt", tok, 50, str(tmp_path / "cache"))


def test_no_pair_left_is_an_error(tmp_path, tok):
    write_lines(tmp_path / "e.src", [" ", "a b c"])
    write_lines(tmp_path / "e.tgt", ["x", ""])
    with pytest.raises(CorpusError, match="no pair left"):
        encode_cached(str(tmp_path / "e"), "src", "tgt", tok, 50, str(tmp_path / "cache"))


def test_streamed_pairs_report_different_line_counts_and_empty_files(tmp_path):
    write_lines(tmp_path / "a.de", ["1", "2", "3"])
    write_lines(tmp_path / "a.en", ["1"])
    with pytest.raises(CorpusError, match=r"a\.de has 3 lines, .*a\.en has 1"):
        list(iter_parallel(str(tmp_path / "a"), "de", "en"))
    write_lines(tmp_path / "a.en", ["1", "2", "3", "4"])
    with pytest.raises(CorpusError, match=r"a\.de has 3 lines, .*a\.en has 4"):
        list(iter_parallel(str(tmp_path / "a"), "de", "en"))
    write_lines(tmp_path / "b.de", [])
    write_lines(tmp_path / "b.en", [])
    with pytest.raises(CorpusError, match="empty"):
        list(iter_parallel(str(tmp_path / "b"), "de", "en"))


def test_sample_pairs_is_uniform_without_replacement_in_corpus_order(tmp_path):
    lines = [f"line {i}" for i in range(1000)]
    write_lines(tmp_path / "s.de", lines)
    write_lines(tmp_path / "s.en", [x.upper() for x in lines])
    src, tgt = sample_pairs(str(tmp_path / "s"), "de", "en", 2000)
    assert src == lines  # a corpus smaller than the sample: every pair, in order
    src, tgt = sample_pairs(str(tmp_path / "s"), "de", "en", 100, seed=3)
    numbers = [int(s.split()[1]) for s in src]
    assert len(set(numbers)) == 100 and numbers == sorted(numbers)
    assert tgt == [s.upper() for s in src]  # pairs stay pairs
    assert sample_pairs(str(tmp_path / "s"), "de", "en", 100, seed=3)[0] == src
    assert sample_pairs(str(tmp_path / "s"), "de", "en", 100, seed=4)[0] != src
    # Uniform: over many seeds each half of the corpus gets about half the sample
    first_half = sum(int(s.split()[1]) < 500 for seed in range(20)
                     for s in sample_pairs(str(tmp_path / "s"), "de", "en", 50, seed=seed)[0])
    assert 400 < first_half < 600


def test_sentencepiece_trained_from_the_files_equals_training_on_the_lines(toy_dir):
    """Below the sample size every sentence is used, in order: the same model as before streaming."""
    c = read_parallel(str(toy_dir / "train"), "src", "tgt")
    streamed = Tokenizer.train_on_corpus(str(toy_dir / "train"), "src", "tgt", 300, "unigram", joint=True)
    assert streamed.src_proto == Tokenizer.train(c.src, c.tgt, 300, "unigram", joint=True).src_proto


def test_token_arrays_from_lists_round_trip():
    seqs = [[4, 5], [], [6, 7, 8]]
    arrays = TokenArrays.from_lists(seqs)
    assert [arrays[i] for i in range(3)] == seqs and arrays.lens.tolist() == [2, 0, 3]
    corpus = EncodedCorpus(arrays, TokenArrays.from_lists([[9], [10], [11, 12]]))
    assert corpus.batch([2, 1]).src.tolist() == collate([[6, 7, 8], []], [[11, 12], [10]], [2, 1]).src.tolist()


def test_sentencepiece_trains_in_process_where_no_child_can_start(toy_dir, monkeypatch, caplog):
    import subprocess

    def no_processes(*a, **k):
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(subprocess, "run", no_processes)
    tok = Tokenizer.train_on_corpus(str(toy_dir / "train"), "src", "tgt", 300, "unigram", joint=True)
    assert tok.src_vocab_size == 300 and "cannot start a child process" in caplog.text


def test_corpus_errors_from_the_child_process_keep_their_message(tmp_path):
    write_lines(tmp_path / "bad.src", ["a", "b"])
    write_lines(tmp_path / "bad.tgt", ["a"])
    with pytest.raises(CorpusError, match="line counts differ"):
        Tokenizer.train_on_corpus(str(tmp_path / "bad"), "src", "tgt", 300, "unigram", joint=True)


def test_cleaning_drops_length_ratio_outliers_and_duplicates_across_chunks(corpus, tok, tmp_path, monkeypatch):
    from nmt.data.corpus import Cleaning
    prefix, src, tgt = corpus
    src, tgt = src + src[:30] + ["a"], tgt + tgt[:30] + [" ".join(["word"] * 5)]  # 30 repeats, one ratio outlier
    write_lines(tmp_path / "d.src", src)
    write_lines(tmp_path / "d.tgt", tgt)
    monkeypatch.setattr(dataset, "_CHUNK", 70)  # repeats in other chunks than their first
    cache = str(tmp_path / "cache")
    plain = encode_cached(str(tmp_path / "d"), "src", "tgt", tok, 50, cache)
    clean = encode_cached(str(tmp_path / "d"), "src", "tgt", tok, 50, cache, cleaning=Cleaning(3.0, True))
    assert len(os.listdir(cache)) == 2  # filters are part of the cache key
    src_ids, tgt_ids = tok.encode_src(src), tok.encode_tgt(tgt)
    pairs = [(tuple(src_ids[i]), tuple(tgt_ids[i])) for i in range(len(src))]
    kept = [(tuple(clean.src[i]), tuple(clean.tgt[i])) for i in range(len(clean))]
    assert len(set(kept)) == len(kept) and len(kept) < len(plain)
    for s, t in kept:
        assert max(len(s), len(t)) <= 3 * max(1, min(len(s), len(t)))
    assert set(kept) == {p for p in pairs if 0 < len(p[0]) <= 50 and 0 < len(p[1]) <= 50
                         and max(len(p[0]), len(p[1])) <= 3 * max(1, min(len(p[0]), len(p[1])))}
    import json
    metas = [json.load(open(os.path.join(cache, e, "meta.json"))) for e in os.listdir(cache)]
    repeats = sum(1 for p in pairs[:30] if 0 < len(p[0]) <= 50 and 0 < len(p[1]) <= 50
                  and max(len(p[0]), len(p[1])) <= 3 * max(1, min(len(p[0]), len(p[1]))))
    assert max(m["duplicate"] for m in metas) == repeats > 20 and max(m["ratio"] for m in metas) >= 1
