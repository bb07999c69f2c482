import random

import pytest
import torch

from nmt.data.batching import collate, make_batches, padding_fraction
from nmt.data.spm import BOS, EOS, PAD


@pytest.fixture(scope="module")
def lengths():
    rng = random.Random(0)
    src = [rng.randint(1, 40) for _ in range(2000)]
    tgt = [max(1, s + rng.randint(-5, 5)) for s in src]
    return src, tgt


def test_every_pair_once_and_token_budget(lengths):
    src, tgt = lengths
    batches = make_batches(src, tgt, max_tokens=500, seed=3, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(src)))
    for b in batches:
        width = max(max(src[i], tgt[i]) + 1 for i in b)
        assert len(b) == 1 or width * len(b) <= 500


def test_max_sentences(lengths):
    src, tgt = lengths
    assert max(len(b) for b in make_batches(src, tgt, max_tokens=10**6, max_sentences=64)) == 64


def test_order_fixed_by_seed_and_epoch(lengths):
    src, tgt = lengths
    a = make_batches(src, tgt, 500, seed=1, epoch=2)
    assert a == make_batches(src, tgt, 500, seed=1, epoch=2)
    assert a != make_batches(src, tgt, 500, seed=1, epoch=3)
    assert a != make_batches(src, tgt, 500, seed=2, epoch=2)


def test_length_bucketing_keeps_padding_low(lengths):
    src, tgt = lengths
    assert padding_fraction(make_batches(src, tgt, 2000), src, tgt) < 0.15


def test_collate_adds_bos_eos_and_pads():
    b = collate([[5, 6, 7], [8]], [[9], [10, 11]], [0, 1])
    assert b.src.tolist() == [[5, 6, 7, EOS], [8, EOS, PAD, PAD]]
    assert b.src_lens.tolist() == [4, 2]
    assert b.tgt_in.tolist() == [[BOS, 9, PAD], [BOS, 10, 11]]
    assert b.tgt_out.tolist() == [[9, EOS, PAD], [10, 11, EOS]]
    assert b.num_tgt_tokens == 5


def test_multi30k_padding_under_15_percent(multi30k_dir):
    from nmt.data.corpus import read_parallel
    from nmt.data.spm import Tokenizer
    corpus = read_parallel(str(multi30k_dir / "train"), "de", "en")
    tok = Tokenizer.train(corpus.src[:10000], corpus.tgt[:10000], 8000, "unigram", joint=True)
    src = [len(s) for s in tok.encode_src(corpus.src)]
    tgt = [len(t) for t in tok.encode_tgt(corpus.tgt)]
    for kwargs in ({"max_tokens": 4096}, {"max_tokens": 10**6, "max_sentences": 64}):
        frac = padding_fraction(make_batches(src, tgt, seed=1, epoch=0, **kwargs), src, tgt)
        assert frac < 0.15, (kwargs, frac)
