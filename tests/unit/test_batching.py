import random

import numpy as np
import pytest
import torch

from nmt.data.batching import make_batches, padding_fraction
from nmt.data.spm import BOS, EOS, PAD

from .helpers import collate


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


def _lists(batches):
    return [b.tolist() for b in batches]


def test_order_fixed_by_seed_and_epoch(lengths):
    src, tgt = lengths
    a = _lists(make_batches(src, tgt, 500, seed=1, epoch=2))
    assert a == _lists(make_batches(src, tgt, 500, seed=1, epoch=2))
    assert a != _lists(make_batches(src, tgt, 500, seed=1, epoch=3))
    assert a != _lists(make_batches(src, tgt, 500, seed=2, epoch=2))


def _reference_batches(src_lens, tgt_lens, max_tokens, max_sentences, seed, epoch):
    """The batching rule written out pair by pair: sort, cut greedily, shuffle the batches."""
    n = len(src_lens)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    tie = torch.randperm(n, generator=gen).tolist()
    order = sorted(range(n), key=lambda i: (tgt_lens[i], src_lens[i], tie[i]))
    batches, current, longest = [], [], 0
    for i in order:
        length = max(src_lens[i], tgt_lens[i]) + 1
        grown = max(longest, length)
        if current and (grown * (len(current) + 1) > max_tokens or (max_sentences and len(current) >= max_sentences)):
            batches.append(current)
            current, grown = [], length
        current.append(i)
        longest = grown
    batches.append(current)
    perm = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[p] for p in perm]


@pytest.mark.parametrize("max_tokens,max_sentences", [(500, 0), (3000, 16), (30, 0)])
def test_vectorised_batching_matches_the_rule_pair_by_pair(lengths, max_tokens, max_sentences):
    """Same batches, in the same order, as the plain rule: resumed runs and old runs see the same data."""
    src, tgt = lengths
    got = _lists(make_batches(src, tgt, max_tokens, max_sentences, seed=5, epoch=1))
    assert got == _reference_batches(src, tgt, max_tokens, max_sentences, seed=5, epoch=1)


def test_length_bucketing_keeps_padding_low(lengths):
    src, tgt = lengths
    assert padding_fraction(make_batches(src, tgt, 2000), src, tgt) < 0.15


def test_pad_flat_matches_pad_and_handles_empty_rows():
    from nmt.data.batching import pad, pad_flat
    seqs = [[5, 6, 7], [], [8]]
    tokens = np.array([5, 6, 7, 8], dtype=np.uint16)
    for bos, eos in ((False, False), (True, False), (False, True)):
        flat = pad_flat(tokens, np.array([0, 3, 3]), np.array([3, 0, 1]), bos, eos)
        assert flat.dtype == torch.int64
        assert flat.tolist() == pad(seqs, bos, eos).tolist()
    assert pad(seqs, eos=True).tolist() == [[5, 6, 7, EOS], [EOS, PAD, PAD, PAD], [8, EOS, PAD, PAD]]


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


def test_take_and_concat_copy_the_sequences_asked_for():
    import numpy as np

    from nmt.data.batching import TokenArrays
    seqs = [[5, 6], [], [7, 8, 9], [10]]
    arrays = TokenArrays(np.array([5, 6, 7, 8, 9, 10], dtype=np.uint16), np.array([2, 0, 3, 1]))
    taken = arrays.take([3, 0, 1, 2, 2])
    assert [taken[i] for i in range(len(taken))] == [seqs[3], seqs[0], seqs[1], seqs[2], seqs[2]]
    both = TokenArrays.concat([taken, arrays.take([0])])
    assert [both[i] for i in range(len(both))] == [seqs[3], seqs[0], seqs[1], seqs[2], seqs[2], seqs[0]]
