import math
from typing import NamedTuple

import pytest
import torch

from nmt.data.batching import source_tensor
from nmt.data.spm import BOS, EOS
from nmt.search import SearchOptions, beam_search, greedy_search, sample_search
from nmt.search.beam import topk_step

from .helpers import tiny_model

A, B = 4, 5
EPS = 1e-9


class ScriptedState(NamedTuple):
    prev: torch.Tensor  # (rows,)
    t: torch.Tensor  # (rows,)


class ScriptedModel:
    """Next-token probabilities from a hand-written table keyed by (step, previous token)."""

    vocab = 6

    def __init__(self, table):
        self.table = table
        self.calls = 0

    def encode(self, src, src_lens):
        n = src.size(0)
        return torch.zeros(n, 1), ScriptedState(torch.full((n,), BOS), torch.zeros(n, dtype=torch.long))

    def step(self, prev, state, memory):
        self.calls += 1
        rows = []
        for p, t in zip(prev.tolist(), state.t.tolist()):
            probs = torch.full((self.vocab,), EPS)
            for tok, pr in self.table.get((t, p), {EOS: 1.0}).items():
                probs[tok] = pr
            rows.append(probs.log())
        return torch.stack(rows), ScriptedState(prev, state.t + 1), None

    @staticmethod
    def reorder(state, memory, index):
        if state is not None:
            state = ScriptedState(state.prev.index_select(0, index), state.t.index_select(0, index))
        return state, None if memory is None else memory.index_select(0, index)


# Greedy takes A (0.6) and then ends (0.4): p = 0.24. The best sequence is B EOS: p = 0.4 * 0.9 = 0.36.
TABLE = {
    (0, BOS): {A: 0.6, B: 0.4},
    (1, A): {EOS: 0.4, A: 0.3, B: 0.3},
    (1, B): {EOS: 0.9, A: 0.05, B: 0.05},
}


def src_of(n):
    return source_tensor([[7, 8, 9]] * n)


def test_scripted_greedy_and_beam_differ_as_expected():
    src, lens = src_of(2)
    greedy = greedy_search(ScriptedModel(TABLE), src, lens, SearchOptions(strategy="greedy", max_len_a=0, max_len_b=5))
    assert [h[0].tokens for h in greedy] == [[A], [A]]
    assert greedy[0][0].score == pytest.approx(math.log(0.24), abs=1e-5)
    beam = beam_search(ScriptedModel(TABLE), src, lens, SearchOptions(beam_size=2, nbest=2, penalty="none", max_len_a=0, max_len_b=5))
    for hyps in beam:
        assert [h.tokens for h in hyps] == [[B], [A]]
        assert hyps[0].score == pytest.approx(math.log(0.36), abs=1e-5)
        assert hyps[1].score == pytest.approx(math.log(0.24), abs=1e-5)
    gnmt = beam_search(ScriptedModel(TABLE), src, lens, SearchOptions(beam_size=2, alpha=1.0, penalty="gnmt", max_len_a=0, max_len_b=5))
    assert gnmt[0][0].score == pytest.approx(math.log(0.36) / ((5 + 2) / 6), abs=1e-5)


def test_scripted_beam_one_is_greedy():
    src, lens = src_of(1)
    beam = beam_search(ScriptedModel(TABLE), src, lens, SearchOptions(beam_size=1, penalty="none", max_len_a=0, max_len_b=5))
    assert beam[0][0].tokens == [A] and beam[0][0].score == pytest.approx(math.log(0.24), abs=1e-5)


def test_min_and_max_length():
    src, lens = src_of(1)
    long = beam_search(ScriptedModel(TABLE), src, lens, SearchOptions(beam_size=2, min_len=3, penalty="none", max_len_a=0, max_len_b=5))
    assert len(long[0][0].tokens) >= 3
    capped = greedy_search(ScriptedModel({(t, p): {A: 1.0} for t in range(20) for p in (BOS, A)}), src, lens, SearchOptions(strategy="greedy", max_len_a=0, max_len_b=4))
    assert capped[0][0].tokens == [A] * 4
    capped_beam = beam_search(ScriptedModel({(t, p): {A: 0.5, B: 0.5} for t in range(20) for p in (BOS, A, B)}), src, lens, SearchOptions(beam_size=3, max_len_a=0, max_len_b=4))
    assert len(capped_beam[0][0].tokens) == 4


def test_topk_step_recovers_beams_and_tokens():
    scores = torch.tensor([[0.0, -1.0]])
    logp = torch.log(torch.tensor([[[0.1, 0.9, 0.0], [0.6, 0.4, 0.0]]]))
    s, beams, toks = topk_step(scores, logp, 3)
    # candidates: (0,1) log .9; (1,0) -1 + log .6; (1,1) -1 + log .4; (0,0) log .1 is fourth
    assert beams.tolist() == [[0, 1, 1]] and toks.tolist() == [[1, 0, 1]]
    torch.testing.assert_close(s, torch.tensor([[math.log(0.9), -1 + math.log(0.6), -1 + math.log(0.4)]]))


@pytest.mark.parametrize("kwargs,match", [
    (dict(beam_size=0), "beam size must be >= 1"), (dict(beam_size=2, nbest=3), "nbest"), (dict(nbest=0), "nbest"),
    (dict(min_len=10, max_len_a=0, max_len_b=5), "min length"), (dict(penalty="cubic"), "length penalty")])
def test_invalid_options_fail_before_decoding(kwargs, match):
    """Options are checked when they are made: no search ever sees an invalid one."""
    with pytest.raises(ValueError, match=match):
        SearchOptions(**kwargs)
    model = ScriptedModel(TABLE)  # the counter counts: a valid search calls the model
    beam_search(model, *src_of(1), SearchOptions(beam_size=2, max_len_a=0, max_len_b=3))
    assert model.calls > 0


def _real_batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, 30, (int(torch.randint(2, 9, (1,), generator=g)),), generator=g).tolist() for _ in range(n)]


@pytest.mark.parametrize("input_feeding,cell", [(True, "gru"), (False, "lstm")])
def test_real_model_beam_one_equals_greedy(input_feeding, cell):
    model = tiny_model(cell=cell, input_feeding=input_feeding, init_scale=0.5).eval()
    src, lens = source_tensor(_real_batch())
    g = greedy_search(model, src, lens, SearchOptions(strategy="greedy"))
    b = beam_search(model, src, lens, SearchOptions(beam_size=1, penalty="none"))
    assert [h[0].tokens for h in g] == [h[0].tokens for h in b]
    for x, y in zip(g, b):
        assert x[0].score == pytest.approx(y[0].score, abs=1e-4)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_batch_size_invariance(search):
    model = tiny_model(cell="gru", init_scale=0.5).eval()
    sents = _real_batch(10, seed=2)
    run = (lambda s, l: greedy_search(model, s, l, SearchOptions(strategy="greedy"))) if search == "greedy" else \
        (lambda s, l: beam_search(model, s, l, SearchOptions(beam_size=4, nbest=2)))
    together = run(*source_tensor(sents))
    for i, sent in enumerate(sents):
        alone = run(*source_tensor([sent]))[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]
        for x, y in zip(alone, together[i]):
            assert x.score == pytest.approx(y.score, abs=1e-4)


def test_nbest_sorted_and_distinct():
    model = tiny_model(cell="lstm", init_scale=0.5).eval()
    out = beam_search(model, *source_tensor(_real_batch(6, seed=4)), SearchOptions(beam_size=5, nbest=5))
    for hyps in out:
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True) and len(hyps) == 5
        assert len({tuple(h.tokens) for h in hyps}) == 5


def test_sampling_top1_is_greedy_and_seeded_sampling_repeats():
    model = tiny_model(cell="gru", init_scale=0.5).eval()
    src, lens = source_tensor(_real_batch(5, seed=5))
    g = greedy_search(model, src, lens, SearchOptions(strategy="greedy"))
    s = sample_search(model, src, lens, SearchOptions(strategy="sample", top_k=1))
    assert [h[0].tokens for h in g] == [h[0].tokens for h in s]
    a = sample_search(model, src, lens, SearchOptions(strategy="sample", temperature=1.5), generator=torch.Generator().manual_seed(3))
    b = sample_search(model, src, lens, SearchOptions(strategy="sample", temperature=1.5), generator=torch.Generator().manual_seed(3))
    assert [h[0].tokens for h in a] == [h[0].tokens for h in b]
    with pytest.raises(ValueError, match="temperature"):
        sample_search(model, src, lens, SearchOptions(strategy="sample", temperature=0))


def test_block_repeats_forbids_the_tokens_that_would_repeat_an_ngram():
    from nmt.search.common import block_repeats
    history = torch.tensor([[5, 6, 7, 5], [8, 8, 9, 9]])
    logp = block_repeats(torch.zeros(2, 12), history, 2)
    assert torch.isinf(logp[0, 6]) and int(torch.isinf(logp[0]).sum()) == 1  # "5 6" seen: after 5, not 6
    assert torch.isinf(logp[1, 9]) and int(torch.isinf(logp[1]).sum()) == 1  # "9 9" seen: after 9, not 9
    once = block_repeats(torch.zeros(1, 12), torch.tensor([[5, EOS, 6]]), 1)
    assert torch.isinf(once[0, 5]) and torch.isinf(once[0, 6]) and not torch.isinf(once[0, EOS])
    untouched = block_repeats(torch.zeros(1, 12), torch.tensor([[5, 6]]), 3)  # no complete trigram yet
    assert not torch.isinf(untouched).any()


def _ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_no_output_repeats_an_ngram(search):
    # a model that loves repeating: an untrained one with large weights, long outputs
    model = tiny_model(cell="gru", init_scale=0.8).eval()
    src, lens = source_tensor(_real_batch(12, seed=7))
    kw = dict(max_len_a=3.0, max_len_b=10, min_len=12)
    opts = (lambda **o: SearchOptions(strategy="greedy", **kw, **o)) if search == "greedy" else \
        (lambda **o: SearchOptions(beam_size=4, nbest=2, **kw, **o))
    run = greedy_search if search == "greedy" else beam_search
    free = run(model, src, lens, opts())
    assert any(len(set(_ngrams(h[0].tokens, 2))) < len(_ngrams(h[0].tokens, 2)) for h in free)  # it does repeat
    for n in (1, 2, 3):
        for hyps in run(model, src, lens, opts(no_repeat_ngram=n)):
            for h in hyps:
                grams = _ngrams(h.tokens, n)
                assert len(set(grams)) == len(grams), (n, h.tokens)


def test_nucleus_sampling():
    model = tiny_model(cell="gru", init_scale=0.5).eval()
    src, lens = source_tensor(_real_batch(8, seed=6))
    g = greedy_search(model, src, lens, SearchOptions(strategy="greedy"))
    tiny = sample_search(model, src, lens, SearchOptions(strategy="sample", top_p=1e-6))  # the nucleus is one token
    assert [h[0].tokens for h in g] == [h[0].tokens for h in tiny]
    seeded = [sample_search(model, src, lens, SearchOptions(strategy="sample", top_p=p),
                            generator=torch.Generator().manual_seed(4)) for p in (1.0, 1.0)]
    assert [h[0].tokens for h in seeded[0]] == [h[0].tokens for h in seeded[1]]
    with pytest.raises(ValueError, match="top-p"):
        SearchOptions(strategy="sample", top_p=0)


@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_a_prefix_is_forced_and_scored_and_an_empty_one_changes_nothing(search):
    from nmt.data.batching import pad
    from nmt.search.arrays import ops_for
    from nmt.search.common import Prefix
    from nmt.search.score import forced_logprobs
    model = tiny_model(cell="gru", init_scale=0.5).eval()
    sents = _real_batch(6, seed=8)
    src, lens = source_tensor(sents)
    prefixes = [[7, 9, 11], [], [5], [12, 12], [], [20, 21, 22, 23]]
    options = {"greedy": SearchOptions(strategy="greedy"), "beam": SearchOptions(beam_size=3, nbest=2, penalty="none"),
               "sample": SearchOptions(strategy="sample", top_k=1)}[search]
    run = {"greedy": greedy_search, "beam": beam_search, "sample": sample_search}[search]
    free = run(model, src, lens, options)
    forced = run(model, src, lens, options, prefix=Prefix.of(prefixes, ops_for(src)))
    for p, f, g in zip(prefixes, free, forced):
        for h in g:
            assert h.tokens[:len(p)] == p
        if not p:
            assert [h.tokens for h in f] == [h.tokens for h in g]
    best = [g[0].tokens for g in forced]  # the score counts the prefix: it is the forced log-probability
    scores = forced_logprobs(model, src, lens, pad(best, bos=True), pad(best, eos=True))
    for g, (logprob, _) in zip(forced, scores):
        assert g[0].logprob == pytest.approx(logprob, abs=1e-3)
    # the free search's own first tokens as prefix: the same output
    own = [f[0].tokens[:2] for f in free]
    again = run(model, src, lens, options, prefix=Prefix.of(own, ops_for(src)))
    assert [h[0].tokens for h in again] == [h[0].tokens for h in free]


def test_coverage_penalty_is_the_hand_computed_sum_over_real_source_positions():
    from nmt.search.alignment import forced_attention
    from nmt.search.beam import length_penalty
    from nmt.search.options import Penalty
    model = tiny_model(cell="gru", init_scale=0.5).eval()
    sents = _real_batch(6, seed=7)
    src, lens = source_tensor(sents)  # padded: the longest sentence sets the width
    beta, alpha = 0.4, 0.8
    short = dict(max_len_a=0, max_len_b=3)  # at most 4 steps of attention: longer sources cannot all be covered
    out = beam_search(model, src, lens, SearchOptions(beam_size=3, nbest=3, alpha=alpha, coverage_penalty=beta,
                                                      **short))
    assert sum(len(hyps) for hyps in out) == 3 * len(sents)
    penalties = []
    for i, hyps in enumerate(out):
        for h in hyps:
            n = int(lens[i])
            tgt_in = torch.tensor([[BOS] + h.tokens])
            with torch.no_grad():
                att = forced_attention(model, src[i:i + 1, :n], lens[i:i + 1], tgt_in)[0]  # (len + 1, n)
            mass = att.sum(0)  # attention each source position received, EOS step included
            penalty = beta * float(torch.log(torch.clamp(mass, max=1.0)).sum())
            expected = h.logprob / length_penalty(len(h.tokens) + 1, alpha, Penalty.gnmt) + penalty
            assert h.score == pytest.approx(expected, abs=1e-4)
            penalties.append(penalty)
    assert max(penalties) <= 0 and min(penalties) < 0  # 0 where every source piece got a full unit of attention
    for hyps in beam_search(model, src, lens, SearchOptions(beam_size=3, alpha=alpha, **short)):  # beta 0: off
        h = hyps[0]
        assert h.score == pytest.approx(h.logprob / length_penalty(len(h.tokens) + 1, alpha, Penalty.gnmt), abs=1e-5)


def test_coverage_penalty_needs_beam_search_and_attention():
    with pytest.raises(ValueError, match="needs beam search"):
        SearchOptions(strategy="greedy", coverage_penalty=0.2)
    with pytest.raises(ValueError, match="coverage penalty must be >= 0"):
        SearchOptions(coverage_penalty=-1)
    model = tiny_model(attention="none").eval()
    with pytest.raises(ValueError, match="needs a model with attention"):
        beam_search(model, *source_tensor(_real_batch(2)), SearchOptions(beam_size=2, coverage_penalty=0.2))


@pytest.mark.parametrize("attention", ["bahdanau", "luong_general", "none", "final"])
@pytest.mark.parametrize("input_feeding", [True, False])
def test_beams_sharing_one_memory_row_step_as_with_the_memory_repeated(attention, input_feeding):
    """Beam search keeps one memory row per sentence for its k beams; a decoder step over it equals
    the step over the memory repeated k times, beam by beam."""
    model = tiny_model(attention=attention, input_feeding=input_feeding, init_scale=0.5).eval()
    src, lens = source_tensor(_real_batch(5, seed=3))
    k = 3
    with torch.no_grad():
        memory, state = model.encode(src, lens)
        rows = torch.arange(src.size(0)).repeat_interleave(k)
        state, repeated = model.reorder(state, memory, rows)
        prev = torch.randint(4, 30, (rows.numel(),))
        shared_logits, shared_state, shared_w = model.step(prev, state, memory)
        logits, new_state, w = model.step(prev, state, repeated)
    torch.testing.assert_close(shared_logits, logits)
    torch.testing.assert_close(shared_state.h, new_state.h)
    assert (shared_w is None) == (w is None)
    if w is not None:
        torch.testing.assert_close(shared_w, w)
