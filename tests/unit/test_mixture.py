"""Several training corpora: the spec of data.train, per-epoch quotas and draws, batches across
corpora, and the pairs the loop's updates take from each corpus."""
import types

import numpy as np
import pytest
import torch

from nmt.config import CorpusSpec, compose, train_corpora, validate
from nmt.data.batching import TokenArrays, make_batches
from nmt.data.dataset import EncodedCorpus
from nmt.data.mixture import TrainingData, combined_fingerprint, draw, quotas
from nmt.errors import ConfigError
from nmt.training.distributed import Dist
from nmt.training.loop import epoch_updates
from nmt.training.run import TrainState


def _corpus(n, seed, fingerprint="f"):
    rng = np.random.default_rng(seed)
    src = [list(rng.integers(4, 50, rng.integers(1, 12))) for _ in range(n)]
    tgt = [list(rng.integers(4, 50, rng.integers(1, 12))) for _ in range(n)]
    return EncodedCorpus(TokenArrays.from_lists(src), TokenArrays.from_lists(tgt), fingerprint=fingerprint)


def test_a_prefix_is_one_corpus_of_weight_one():
    assert train_corpora("data/wmt/news", "<2en>") == [CorpusSpec("data/wmt/news", 1.0, "<2en>", "news")]
    assert train_corpora(None) == []


def test_a_list_gives_weights_tags_and_distinct_names():
    specs = train_corpora([{"path": "a/train", "weight": 3}, "b/train", {"path": "c", "src_prefix": "<bt>"},
                           {"path": "d", "src_prefix": None, "name": "mine"}], src_prefix="<2en>")
    assert [s.weight for s in specs] == [3.0, 1.0, 1.0, 1.0]
    assert [s.src_prefix for s in specs] == ["<2en>", "<2en>", "<bt>", None]  # inherited unless given
    assert [s.name for s in specs] == ["train#1", "train#2", "c", "mine"]


@pytest.mark.parametrize("value, message", [
    ([{"path": "a", "weight": 0}], r"data.train\[0\].weight=0: must be a number > 0"),
    ([{"path": "a"}, {"path": "b", "weight": -1.5}], r"data.train\[1\].weight=-1.5"),
    ([{"path": "a", "weight": "x"}], r"data.train\[0\].weight='x'"),
    ([{"path": "a", "weight": float("nan")}], r"data.train\[0\].weight=nan"),
    ([{"path": "a", "weight": True}], r"data.train\[0\].weight=True"),
    ([{"path": "a", "wieght": 2}], r"data.train\[0\]: unknown key 'wieght'; did you mean 'weight'\?"),
    ([{"weight": 2}], r"data.train\[0\].path=None: must be a corpus path prefix"),
    ([{"path": "a", "src_prefix": "two words"}], r"data.train\[0\].src_prefix='two words'"),
    ([], r"data.train=\[\]: must be a path prefix or a non-empty list"),
    ([3], r"data.train\[0\]=3"),
])
def test_bad_corpus_lists_name_the_item_and_key(value, message):
    with pytest.raises(ConfigError, match=message):
        train_corpora(value)


def test_the_config_takes_a_list_from_the_command_line_and_checks_it():
    cfg = compose(["experiment=toy", "data.train=[{path: a/train, weight: 3}, {path: b, src_prefix: '<bt>'}]"])
    assert [(s.path, s.weight, s.src_prefix) for s in train_corpora(cfg.data.train)] == [
        ("a/train", 3.0, None), ("b", 1.0, "<bt>")]
    bad = compose(["experiment=toy", "data.train=[{path: a, weight: 0}]"])
    with pytest.raises(ConfigError, match=r"data.train\[0\].weight=0"):
        validate(bad)


def test_quotas_split_the_total_by_weight_and_add_up():
    q = quotas([1000, 50], [1, 3])
    assert q.tolist() == [263, 787] and q.sum() == 1050
    q = quotas([7, 7, 7], [1, 1, 1])
    assert q.tolist() == [7, 7, 7]
    q = quotas([10, 10, 10], [1, 1, 1.0000001])  # remainders go to the largest fractions
    assert q.sum() == 30
    assert quotas([1_000_000, 1], [1, 1e-9]).tolist()[1] == 1  # every corpus gives at least one pair


def test_a_draw_is_a_subset_below_size_and_whole_passes_above():
    sizes, weights = [1000, 50], [1, 3]
    pairs = draw(sizes, weights, seed=1, epoch=0)
    big, small = pairs[pairs < 1000], pairs[pairs >= 1000] - 1000
    assert len(big) == 263 and len(np.unique(big)) == 263  # without repeats
    assert len(small) == 787
    counts = np.bincount(small, minlength=50)
    assert counts.min() == 787 // 50 and counts.max() == 787 // 50 + 1  # 15 passes + a remainder of 37
    assert np.array_equal(pairs, draw(sizes, weights, seed=1, epoch=0))  # (seed, epoch) fix it
    assert not np.array_equal(pairs, draw(sizes, weights, seed=1, epoch=1))
    assert not np.array_equal(pairs, draw(sizes, weights, seed=2, epoch=0))
    assert len(draw(sizes, weights, seed=-3, epoch=0)) == 1050  # train.seed may be negative


def test_one_corpus_gives_the_batches_of_that_corpus_alone():
    corpus = _corpus(300, 0)
    data = TrainingData([corpus], [CorpusSpec("a")])
    assert np.array_equal(data.epoch_pairs(1, 3), np.arange(300))
    assert data.fingerprint == "f"
    idx = [5, 17, 2]
    for a, b in zip(vars(data.batch(idx)).values(), vars(corpus.batch(idx)).values()):
        assert (a is None and b is None) or torch.equal(a, b)


def test_a_batch_across_corpora_holds_each_pair_as_its_own_corpus_gives_it():
    a, b = _corpus(40, 1, "x"), _corpus(30, 2, "y")
    data = TrainingData([a, b], [CorpusSpec("a"), CorpusSpec("b")])
    assert data.fingerprint == combined_fingerprint(["x", "y"]) != combined_fingerprint(["y", "x"])
    idx = np.array([45, 3, 69, 0, 41, 39])
    batch = data.batch(idx)
    assert data.corpus_of(idx).tolist() == [1, 0, 1, 0, 1, 0]
    for row, i in enumerate(idx):
        part, j = (a, i) if i < 40 else (b, i - 40)
        one = part.batch([j])
        for name in ("src", "tgt_in", "tgt_out"):
            got, want = getattr(batch, name)[row], getattr(one, name)[0]
            assert torch.equal(got[:want.numel()], want) and not got[want.numel():].any(), (name, i)
        assert batch.src_lens[row] == one.src_lens[0]


def test_the_shortlist_sample_follows_the_quotas():
    data = TrainingData([_corpus(400, 1), _corpus(100, 2)], [CorpusSpec("a", 1), CorpusSpec("b", 4)])
    sample = data.sample(50)
    assert len(sample) == 10 + 40


def _run(data, max_tokens=200, world=1, rank=0, accum=1, epoch=0):
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(accum_steps=accum, max_tokens=max_tokens,
                                                            max_sentences=0, seed=7))
    return types.SimpleNamespace(cfg=cfg, state=TrainState(epoch=epoch), dist=Dist(rank, world), train=data, data=data,
                                 subword=None, metrics=None, begin_epoch=lambda: data)


def test_an_epoch_of_updates_takes_each_corpus_by_its_weight():
    data = TrainingData([_corpus(900, 1), _corpus(150, 2)], [CorpusSpec("big", 1), CorpusSpec("small", 2)])
    run = _run(data)
    taken, first = [], []
    for mine in epoch_updates(run):
        corpus = data.corpus_of(np.concatenate(mine))
        taken.append(corpus)
        run.state.position += 1
    every = np.concatenate(taken)
    want = 2 / 3
    share = (every == 1).mean()
    # whole epoch: the quotas, less the pairs of the batches that do not fill a last update (none here)
    assert abs(share - want) < 0.01
    # a part of the epoch is a random draw: its share is within sampling error (4 standard deviations)
    first = np.concatenate(taken[:len(taken) // 5])
    sigma = (want * (1 - want) / len(first)) ** 0.5
    assert abs((first == 1).mean() - want) < 4 * sigma + 0.02  # + the grain of whole batches
    assert run.state.epoch == 1


def test_ranks_split_the_epoch_of_a_mixture_without_overlap():
    data = TrainingData([_corpus(300, 1), _corpus(60, 2)], [CorpusSpec("a", 1), CorpusSpec("b", 1)])
    batches = {}
    for rank in range(2):
        run = _run(data, world=2, rank=rank)
        got = []
        for mine in epoch_updates(run):
            got.append(mine)
            run.state.position += 2
        batches[rank] = got
    one = _run(data, accum=2)
    together = []
    for mine in epoch_updates(one):
        together.append(mine)
        one.state.position += 2
    for u, pair in enumerate(together):  # rank r takes the r-th batch of each update
        for rank in range(2):
            assert np.array_equal(batches[rank][u][0], pair[rank])


def test_make_batches_is_unchanged_for_one_corpus():
    corpus = _corpus(500, 3)
    run = _run(TrainingData([corpus], [CorpusSpec("a")]))
    got = list(epoch_updates(run).__next__())
    want = make_batches(corpus.src_lens, corpus.tgt_lens, 200, 0, 7, 0)[0]
    assert np.array_equal(got[0], want)
