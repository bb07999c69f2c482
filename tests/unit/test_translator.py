import copy

import pytest
import torch

from nmt.data.spm import Tokenizer, train_spm
from nmt.models.ensemble import Ensemble
from nmt.search import SearchOptions, beam_search
from nmt.translator import Translator, length_sorted_batches

from .helpers import tiny_model

WORDS = "the a dog cat runs sleeps big small red house near under with".split()


@pytest.fixture(scope="module")
def tok():
    import random
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(300)]
    return Tokenizer(train_spm(lines, vocab_size=30))


def model_for(tok, seed=0, **kw):
    return tiny_model(vocab=tok.src_vocab_size, init_scale=0.5, seed=seed, **kw).eval()


def sentences(n=13, seed=1):
    import random
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def test_length_sorted_batches_respect_both_limits_and_cover_everything():
    lengths = [5, 1, 9, 3, 9, 2, 7, 7, 4]
    batches = length_sorted_batches(lengths, batch_size=3, max_tokens=25)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3 and (max(lengths[i] for i in b) + 1) * len(b) <= 25
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    assert length_sorted_batches([30], batch_size=4, max_tokens=10) == [[0]]  # too long: a batch of its own


def test_blank_lines_and_input_order_and_batch_size_invariance(tok):
    model = model_for(tok)
    lines = sentences()
    lines[3], lines[7] = "", "   "
    big = Translator(model, tok, SearchOptions(beam_size=3, nbest=2), batch_size=64).translate(lines)
    small = Translator(model, tok, SearchOptions(beam_size=3, nbest=2), batch_size=2, max_tokens=20).translate(lines)
    assert len(big) == len(lines) and big[3] == [("", 0.0)] and big[7] == [("", 0.0)]
    for a, b in zip(big, small):
        assert [t for t, _ in a] == [t for t, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)
    alone = [Translator(model, tok, SearchOptions(beam_size=3, nbest=2)).translate([line])[0] for line in lines]
    assert [[t for t, _ in x] for x in alone] == [[t for t, _ in x] for x in big]  # order restored


def test_scores_of_beam_outputs_equal_what_search_reported(tok):
    model = model_for(tok, cell="lstm")
    tr = Translator(model, tok, SearchOptions(beam_size=4, nbest=3, alpha=1.0))
    ids = tr.encode_lines(sentences(8))
    from nmt.data.batching import source_tensor
    src, lens = source_tensor(ids)
    hyps = beam_search(model, src, lens, tr.options)
    for i, nbest in enumerate(hyps):
        scored = tr.score_ids([ids[i]] * len(nbest), [h.tokens for h in nbest])
        for h, (logprob, count) in zip(nbest, scored):
            assert count == len(h.tokens) + 1
            assert logprob == pytest.approx(h.logprob, abs=1e-4)  # before the length penalty
            assert h.score == pytest.approx(h.logprob / ((5 + count) / 6), abs=1e-4)


def test_ensemble_of_one_equals_the_model_and_two_differ(tok):
    model = model_for(tok)
    lines = sentences(10)
    for options in (SearchOptions(beam_size=4, nbest=2), SearchOptions(strategy="greedy")):
        single = Translator(model, tok, options).translate(lines)
        one = Translator(Ensemble([model]).eval(), tok, options).translate(lines)
        assert [[t for t, _ in x] for x in single] == [[t for t, _ in x] for x in one]
        assert [s for x in single for _, s in x] == pytest.approx([s for x in one for _, s in x], rel=1e-6)
    other = model_for(tok, seed=3, cell="lstm", attention="luong_general", input_feeding=False)
    pair = Ensemble([model, other]).eval()
    src_scores = Translator(pair, tok).score(lines, ["the dog runs"] * len(lines))
    a = Translator(model, tok).score(lines, ["the dog runs"] * len(lines))
    b = Translator(other, tok).score(lines, ["the dog runs"] * len(lines))
    # each step's distribution is the renormalised geometric mean of the members': its normaliser is
    # at most 1 (geometric <= arithmetic mean), so a sentence scores at least the mean of the members'
    for (e, _), (x, _), (y, _) in zip(src_scores, a, b):
        assert e >= (x + y) / 2 - 1e-4 and e != pytest.approx(x)
    # the ensemble's own search result scores, under forced decoding with the ensemble, what search said
    search = Translator(pair, tok, SearchOptions(strategy="greedy"))
    ids = search.encode_lines(lines[:3])
    greedy = search.translate_ids(ids)
    assert len(greedy) == 3 and all(len(n) == 1 and n[0].tokens for n in greedy)
    forced = Translator(pair, tok).score_ids(ids, [n[0].tokens for n in greedy])
    for n, (logprob, count) in zip(greedy, forced):
        assert n[0].score == pytest.approx(logprob, abs=1e-3) and count == len(n[0].tokens) + 1


def test_options_are_checked_once_and_named():
    with pytest.raises(ValueError, match="nbest"):
        SearchOptions(strategy="greedy", nbest=2)
    with pytest.raises(ValueError, match="strategy"):
        SearchOptions(strategy="viterbi")
    with pytest.raises(ValueError, match="length penalty"):
        SearchOptions(penalty="cubic")
    assert __import__("dataclasses").replace(SearchOptions(), beam_size=2).beam_size == 2


def test_a_source_tag_is_kept_whole_put_before_every_line_and_left_out_of_alignments():
    import random
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(300)]
    tagged = Tokenizer(train_spm(lines, vocab_size=40, user_symbols=["<2xx>"]))
    assert "<2xx>" in tagged.src_pieces("<2xx> the dog runs")  # one piece, never split
    model = model_for(tagged)
    translator = Translator(model, tagged, SearchOptions(beam_size=2, nbest=2), src_prefix="<2xx>")
    src = ["the dog runs", "", "a cat"]
    ids = translator.encode_lines(src)
    assert ids[0] == tagged.encode_src(["<2xx> the dog runs"])[0] and ids[1] == []
    hyps = translator.translate_ids(ids)
    for n, line, aligned in zip(hyps, src, translator.alignments(ids, hyps, weights=True)):
        for h, a in zip(n, aligned):
            words = len(line.split())
            assert all(0 <= int(link.split("-")[0]) < words for link in a["alignment"].split())
            if h.tokens and words:
                assert a["attention"]["source"] == line.split()  # the tag is not a source word
                assert all(len(row) == words for row in a["attention"]["weights"])


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_fp16_weights_translate_as_fp32(cell):
    """--fp16-weights: weights rounded to fp16, products in fp32: every hypothesis scores within 1e-3
    of fp32 (forced scoring of the fp32 search's output; the search itself on an untrained model is
    all near-ties, so its choices are compared on a trained one, tests/e2e/test_cli.py)."""
    from nmt.precision import fp16_weights

    class Tok:
        pass
    model = tiny_model(cell, attention="bahdanau").eval()
    g = torch.Generator().manual_seed(4)
    src = [torch.randint(4, 30, (n,), generator=g).tolist() for n in (5, 3, 8, 2, 7)]
    options = SearchOptions(beam_size=3, nbest=2)
    exact = Translator(model, Tok(), options)
    half = Translator(fp16_weights(copy.deepcopy(model)), Tok(), options)
    pairs = [(s, h.tokens) for s, n in zip(src, exact.translate_ids(src)) for h in n]
    sources, hyps = [p[0] for p in pairs], [p[1] for p in pairs]
    a, b = exact.score_ids(sources, hyps), half.score_ids(sources, hyps)
    assert [x[1] for x in a] == [x[1] for x in b]
    assert [x[0] for x in a] == pytest.approx([x[0] for x in b], abs=1e-3)
    assert [x[0] for x in a] != [x[0] for x in b]  # the weights did change


def test_int8_and_fp16_weights_exclude_each_other_and_need_the_cpu():
    from nmt.errors import ConfigError
    from nmt.precision import compress_weights
    model = tiny_model("gru")
    assert compress_weights(model, False, False, torch.device("cpu")) is model
    with pytest.raises(ConfigError, match="choose one"):
        compress_weights(model, True, True, torch.device("cpu"))
    with pytest.raises(ConfigError, match="--fp16-weights runs on the CPU only"):
        compress_weights(model, False, True, torch.device("cuda"))


def test_a_stream_in_chunks_translates_as_one_call_and_pairs_prefixes_line_by_line(tok):
    from nmt.errors import ConfigError
    tr = Translator(model_for(tok), tok, SearchOptions(beam_size=3))
    lines = sentences(11)
    lines[4] = ""
    prefixes = ["" if k % 3 else "the" for k in range(len(lines))]
    whole = tr.translate(lines, prefixes)
    chunks = list(tr.translate_stream(iter(lines), chunk_size=4, prefixes=iter(prefixes), alignment=True))
    assert [c.first for c in chunks] == [0, 4, 8] and sum((c.lines for c in chunks), []) == lines
    streamed = [tok.decode_tgt([hyps[0].tokens])[0] for c in chunks for hyps in c.results]
    assert streamed == [n[0][0] for n in whole]
    assert all(text.startswith("the") for text, p in zip(streamed, prefixes) if p)
    assert all(len(c.aligned) == len(c.lines) for c in chunks)
    with pytest.raises(ConfigError, match="--prefix-file p has 10 lines, fewer than the input"):
        list(tr.translate_stream(lines, 4, prefixes[:-1], "--prefix-file p"))
    with pytest.raises(ConfigError, match="more lines than the input \\(11\\)"):
        list(tr.translate_stream(lines, 4, prefixes + ["x"]))


def test_attention_maps_cover_each_piece_and_sum_to_one_per_target_row(tok):
    tr = Translator(model_for(tok), tok, SearchOptions(beam_size=2))
    lines = ["the big dog runs", "", "a cat sleeps"]
    ids = tr.encode_lines(lines)
    maps = tr.attention_maps(ids, [n[0] for n in tr.translate_ids(ids)])
    assert maps[1] is None  # a blank line
    for k in (0, 2):
        src, tgt, weights = maps[k]
        assert src == tok.src_id_pieces(ids[k]) + ["</s>"] and tgt[-1] == "</s>"
        assert weights.shape == (len(tgt), len(src))
        assert torch.allclose(weights.sum(-1), torch.ones(len(tgt)), atol=1e-5)
    plain = Translator(model_for(tok, attention="none"), tok, SearchOptions(beam_size=2))
    assert plain.attention_maps(ids, [n[0] for n in plain.translate_ids(ids)]) is None
