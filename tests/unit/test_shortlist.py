"""The lexical shortlist: statistics from training pairs, batch candidates, and search over them."""
import numpy as np
import pytest
import torch

from nmt.data.batching import TokenArrays
from nmt.data.spm import BOS, EOS, PAD, UNK
from nmt.search import SearchOptions
from nmt.search.shortlist import Shortlisted, build_shortlist, candidates, trim

from .helpers import tiny_model


def _build(src, tgt, vocab=30, **kw):
    s, t = TokenArrays.from_lists(src), TokenArrays.from_lists(tgt)
    return build_shortlist(s.tokens, s.offsets, t.tokens, t.offsets, vocab, vocab, **kw)


def test_partners_ranked_by_co_occurrence_and_frequent_targets():
    # source 10 always comes with target 20 and 11 with 21; 22 is in every target
    src = [[10, 11], [10], [11], [12]] * 5
    tgt = [[20, 21, 22], [20, 22], [21, 22], [22, 23]] * 5
    sl = _build(src, tgt, per_token=3, frequent=2)
    table = sl["table"].numpy()
    assert table.shape == (30, 3) and table[10, 0] == 20 and table[12, 0] == 23
    assert table[11, 0] == 21  # Dice prefers the specific partner over the ubiquitous 22
    assert (table[5] == -1).all()  # a token never seen has no partners
    assert sl["frequent"].tolist() == [22, 20]
    assert not set(sl["frequent"].tolist()) & {PAD, UNK, BOS, EOS}


def test_sampled_statistics_are_deterministic():
    rng = np.random.default_rng(0)
    src = [rng.integers(4, 30, 6).tolist() for _ in range(300)]
    tgt = [rng.integers(4, 30, 6).tolist() for _ in range(300)]
    a, b = _build(src, tgt, max_pairs=100, seed=3), _build(src, tgt, max_pairs=100, seed=3)
    assert torch.equal(a["table"], b["table"]) and torch.equal(a["frequent"], b["frequent"])


def test_candidates_keep_special_ids_in_place_and_ignore_padding():
    sl = {"table": torch.full((30, 2), -1, dtype=torch.int32), "frequent": torch.tensor([25, 9], dtype=torch.int32)}
    sl["table"][7] = torch.tensor([12, 5])
    sl["table"][PAD] = torch.tensor([29, 28])  # would be added if padding leaked
    src = torch.tensor([[7, EOS], [PAD, PAD]])
    ids, own = candidates(sl, src)
    assert ids.tolist() == [PAD, UNK, BOS, EOS, 5, 9, 12, 25]
    assert own.tolist() == [[True] * 8, [True] * 4 + [False, True, False, True]]  # each sentence its own


def test_trim_checks_sizes():
    sl = {"table": torch.zeros(30, 4, dtype=torch.int32), "frequent": torch.arange(4, 14, dtype=torch.int32)}
    assert trim(sl, 2, 3)["table"].shape == (30, 2) and trim(sl, 2, 3)["frequent"].tolist() == [4, 5, 6]
    with pytest.raises(ValueError, match="between 1 and 4"):
        trim(sl, 5, 3)


@pytest.mark.parametrize("attention,input_feeding", [("bahdanau", True), ("luong_general", False)])
def test_shortlisted_step_equals_the_full_models_rows(attention, input_feeding):
    model = tiny_model("gru", attention=attention, input_feeding=input_feeding).eval()
    src, lens = torch.tensor([[5, 6, 7, EOS], [8, 9, EOS, PAD]]), torch.tensor([4, 3])
    cand = torch.tensor([0, 1, 2, 3, 6, 11, 17, 29])
    own = torch.tensor([[True] * 8, [True] * 6 + [False, True]])
    sl = Shortlisted(model, cand, own)
    with torch.no_grad():
        memory, state = model.encode(src, lens)
        full, _, _ = model.step(torch.tensor([BOS, 17]), state, memory)
        memory, state = sl.encode(src, lens)
        short, _, _ = sl.step(torch.tensor([BOS, 6]), state, memory)  # position 6 is id 17
    torch.testing.assert_close(short[0], full[0, cand])
    torch.testing.assert_close(short[1, :6], full[1, cand[:6]])
    assert short[1, 6] == float("-inf")  # not one of the second sentence's candidates
    assert sl.to_vocabulary([4, 7, 3]) == [6, 29, 3]


def test_a_shortlist_of_the_whole_vocabulary_changes_nothing():
    from nmt.translator import Translator

    class Tok:  # only ids are used here
        pass
    model = tiny_model("lstm", attention="bahdanau").eval()
    everything = {"table": torch.full((30, 1), -1, dtype=torch.int32), "frequent": torch.arange(4, 30, dtype=torch.int32)}
    g = torch.Generator().manual_seed(1)
    src = [torch.randint(4, 30, (n,), generator=g).tolist() for n in (5, 3, 8, 2)]
    for options in (SearchOptions(beam_size=3, nbest=2), SearchOptions(strategy="greedy")):
        full = Translator(model, Tok(), options).translate_ids(src)
        short = Translator(model, Tok(), options, shortlist=everything).translate_ids(src)
        assert [[h.tokens for h in n] for n in full] == [[h.tokens for h in n] for n in short]
        for a, b in zip(full, short):
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


def test_a_narrow_shortlist_only_emits_candidates_and_works_on_int8_models():
    from nmt.precision import quantize_int8
    from nmt.translator import Translator

    class Tok:
        pass
    model = quantize_int8(tiny_model("gru", attention="bahdanau").eval())
    narrow = {"table": torch.full((30, 1), -1, dtype=torch.int32), "frequent": torch.tensor([9, 13], dtype=torch.int32)}
    out = Translator(model, Tok(), SearchOptions(beam_size=3, max_len_a=0, max_len_b=6),
                     shortlist=narrow).translate_ids([[5, 6, 7], [8]])
    assert all(set(h.tokens) <= {9, 13, PAD, UNK, BOS} for n in out for h in n)  # candidates and specials


@pytest.mark.parametrize("kind", ["int8", "fp16"])
def test_on_a_quantized_model_the_shortlisted_layer_is_the_quantized_layer_s_columns(kind):
    """int8 (or fp16 weights) and the shortlist add up: the candidates' rows stay quantized (packed
    once per batch) and give exactly the columns the whole quantized output layer gives; a
    whole-vocabulary shortlist then translates as the quantized model alone."""
    from nmt.precision import fp16_weights, quantize_int8
    from nmt.translator import Translator

    class Tok:
        pass
    model = (quantize_int8 if kind == "int8" else fp16_weights)(tiny_model("gru", attention="bahdanau").eval())
    src, lens = torch.tensor([[5, 6, 7, EOS], [8, 9, EOS, PAD]]), torch.tensor([4, 3])
    cand = torch.tensor([0, 1, 2, 3, 6, 11, 17, 29])
    sl = Shortlisted(model, cand, torch.ones(2, 8, dtype=torch.bool))
    assert sl.packed is not None  # not dequantized
    with torch.no_grad():
        memory, state = model.encode(src, lens)
        full, _, _ = model.step(torch.tensor([BOS, 17]), state, memory)
        memory, state = sl.encode(src, lens)
        short, _, _ = sl.step(torch.tensor([BOS, 6]), state, memory)
    torch.testing.assert_close(short, full[:, cand], rtol=0, atol=0)
    everything = {"table": torch.full((30, 1), -1, dtype=torch.int32), "frequent": torch.arange(4, 30, dtype=torch.int32)}
    g = torch.Generator().manual_seed(3)
    batch = [torch.randint(4, 30, (n,), generator=g).tolist() for n in (5, 3, 8, 2)]
    options = SearchOptions(beam_size=3, nbest=2)
    alone = Translator(model, Tok(), options).translate_ids(batch)
    short = Translator(model, Tok(), options, shortlist=everything).translate_ids(batch)
    assert [[h.tokens for h in n] for n in alone] == [[h.tokens for h in n] for n in short]


def test_a_sentence_translates_the_same_alone_and_in_any_batch():
    from nmt.translator import Translator

    class Tok:
        pass
    model = tiny_model("gru", attention="bahdanau").eval()
    g = torch.Generator().manual_seed(2)
    table = torch.randint(4, 30, (30, 3), generator=g, dtype=torch.int32)
    sl = {"table": table, "frequent": torch.tensor([5, 6], dtype=torch.int32)}
    src = [torch.randint(4, 30, (n,), generator=g).tolist() for n in (5, 3, 8, 2, 6)]
    options = SearchOptions(beam_size=3, nbest=2)
    together = Translator(model, Tok(), options, shortlist=sl).translate_ids(src)
    for s, want in zip(src, together):
        alone = Translator(model, Tok(), options, shortlist=sl).translate_ids([s])[0]
        assert [h.tokens for h in alone] == [h.tokens for h in want]
        assert [h.score for h in alone] == pytest.approx([h.score for h in want], abs=1e-5)
        allowed = set(table[s].flatten().tolist()) | {5, 6, PAD, UNK, BOS}
        assert all(set(h.tokens) <= allowed for h in want)


def test_ensembles_refuse_a_shortlist():
    from nmt.models.ensemble import Ensemble
    from nmt.translator import Translator
    with pytest.raises(ValueError, match="single model"):
        Translator(Ensemble([tiny_model(), tiny_model()]), None, shortlist={"table": None, "frequent": None})
