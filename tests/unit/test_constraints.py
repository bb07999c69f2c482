"""Lexical constraints: state tracking, and a beam search whose every hypothesis flagged met holds
every phrase (random, multi-piece, repeated and overlapping ones), or is flagged not met."""
import random

import pytest
import torch

from nmt.data.batching import source_tensor
from nmt.data.spm import UNK
from nmt.search import SearchOptions, beam_search
from nmt.search.arrays import TorchOps
from nmt.search.common import Guide, Prefix
from nmt.search.constraints import Constraints, Progress, advance, bank, next_pieces

from .helpers import tiny_model

XP = TorchOps(torch.device("cpu"))


def _occurrences(tokens, phrase):
    """Non-overlapping occurrences of ``phrase`` in ``tokens``, left to right."""
    count, i = 0, 0
    while i + len(phrase) <= len(tokens):
        if tokens[i:i + len(phrase)] == list(phrase):
            count, i = count + 1, i + len(phrase)
        else:
            i += 1
    return count


def _holds(tokens, phrases):
    return all(_occurrences(tokens, p) >= sum(q == p for q in phrases) for p in phrases)


def _walk(phrases, tokens):
    """The state of one hypothesis after emitting ``tokens``."""
    cons = Constraints.of([phrases], XP)
    state = Progress.start(XP, 1, 1, cons.lens.shape[1])
    sentence = torch.tensor([0])
    for t in tokens:
        state = advance(cons, sentence, state, torch.tensor([[t]]), XP)
    return cons, sentence, state


def test_a_run_extends_breaks_and_restarts_at_the_first_piece():
    cons, sentence, state = _walk([[5, 6, 7]], [5, 6])
    assert state.run.tolist() == [[[2]]] and not state.met.any()
    assert next_pieces(cons, sentence, state, XP).tolist() == [[[7]]]
    assert bank(cons, sentence, state, XP).tolist() == [[2]]
    _, _, state = _walk([[5, 6, 7]], [5, 6, 5])  # broken by the first piece: a new run of 1
    assert state.run.tolist() == [[[1]]]
    _, _, state = _walk([[5, 6, 7]], [5, 6, 9])
    assert state.run.tolist() == [[[0]]]
    cons, sentence, state = _walk([[5, 6, 7]], [5, 6, 7])
    assert state.met.tolist() == [[[True]]] and state.run.tolist() == [[[0]]]
    assert bank(cons, sentence, state, XP).tolist() == [[3]]
    assert next_pieces(cons, sentence, state, XP).tolist() == [[[0]]]  # PAD: nothing more wanted


def test_a_repeated_phrase_is_met_once_per_mention_and_others_independently():
    _, _, state = _walk([[5], [5], [8, 9]], [5])
    assert state.met.tolist() == [[[True, False, False]]]  # the earlier mention first
    _, _, state = _walk([[5], [5], [8, 9]], [5, 8, 5, 9])
    assert state.met.tolist() == [[[True, True, False]]]
    _, _, state = _walk([[8, 9], [9]], [8, 9])  # one piece may finish two different phrases
    assert state.met.tolist() == [[[True, True]]]


def _random_phrases(rng, n, vocab=30):
    out = []
    for _ in range(n):
        phrases = [[rng.randrange(4, vocab) for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(0, 3))]
        if phrases and rng.random() < 0.3:
            phrases.append(list(phrases[0]))  # a repeated phrase
        out.append(phrases)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_every_hypothesis_holds_every_phrase(seed):
    rng = random.Random(seed)
    model = tiny_model(cell=("gru", "lstm")[seed % 2], attention=("bahdanau", "luong_general")[seed % 2],
                       init_scale=0.5, seed=seed).eval()
    g = torch.Generator().manual_seed(seed)
    src, lens = source_tensor([torch.randint(4, 30, (rng.randint(2, 9),), generator=g).tolist() for _ in range(10)])
    phrases = _random_phrases(rng, 10)
    options = SearchOptions(beam_size=rng.choice([2, 4, 6]), nbest=2)
    out = beam_search(model, src, lens, options, constraints=Constraints.of(phrases, XP))
    for hyps, p in zip(out, phrases):
        assert hyps
        for h in hyps:
            assert h.constraints_met is (True if p else None)
            assert _holds(h.tokens, p)


def test_sentences_without_constraints_in_a_constrained_batch_are_searched_as_without():
    model = tiny_model(init_scale=0.5, seed=2).eval()
    src, lens = source_tensor([[5, 6, 7, 8], [9, 10], [11, 12, 13]])
    options = SearchOptions(beam_size=4, nbest=2)
    free = beam_search(model, src, lens, options)
    mixed = beam_search(model, src, lens, options, constraints=Constraints.of([[], [[20, 21]], []], XP))
    for k in (0, 2):
        assert [h.tokens for h in mixed[k]] == [h.tokens for h in free[k]]
        assert [h.score for h in mixed[k]] == pytest.approx([h.score for h in free[k]], abs=1e-5)
    assert _holds(mixed[1][0].tokens, [[20, 21]])


def test_phrases_no_hypothesis_can_hold_are_reported_not_dropped():
    """No 1-gram may repeat, so a phrase that repeats a piece cannot be met: the sentence still gets
    its best translations, flagged."""
    model = tiny_model(init_scale=0.5).eval()
    src, lens = source_tensor([[5, 6, 7], [8, 9]])
    out = beam_search(model, src, lens, SearchOptions(beam_size=3, nbest=2, no_repeat_ngram=1),
                      constraints=Constraints.of([[[12, 12]], [[13]]], XP))
    assert out[0] and all(h.constraints_met is False for h in out[0])
    assert out[0][0].tokens and len(set(out[0][0].tokens)) == len(out[0][0].tokens)
    assert out[1][0].constraints_met is True and 13 in out[1][0].tokens


def test_constraints_after_a_forced_prefix_and_with_a_beam_of_one():
    model = tiny_model(init_scale=0.5, seed=1).eval()
    src, lens = source_tensor([[5, 6, 7], [8, 9, 10, 11]])
    prefix = Prefix.of([[14, 15], []], XP)
    for k in (1, 5):
        out = beam_search(model, src, lens, SearchOptions(beam_size=k), prefix,
                          Constraints.of([[[22], [23, 24]], [[25, 26, 27]]], XP))
        assert out[0][0].tokens[:2] == [14, 15]
        assert _holds(out[0][0].tokens, [[22], [23, 24]]) and _holds(out[1][0].tokens, [[25, 26, 27]])


def test_the_translator_meets_constraints_with_a_shortlist_that_lacks_their_pieces():
    from nmt.translator import Translator

    class Tok:  # only ids are used here
        pass
    model = tiny_model("gru", attention="bahdanau", init_scale=0.5).eval()
    narrow = {"table": torch.full((30, 1), -1, dtype=torch.int32), "frequent": torch.tensor([9, 13], dtype=torch.int32)}
    tr = Translator(model, Tok(), SearchOptions(beam_size=3, max_len_a=0, max_len_b=8), shortlist=narrow)
    out = tr.translate_ids([[5, 6, 7], [8]], guides=[Guide((), [[20, 21]]), Guide()])
    assert out[0][0].constraints_met and _holds(out[0][0].tokens, [[20, 21]])
    assert set(out[0][0].tokens) <= {9, 13, 20, 21, UNK}  # candidates, the phrase and the specials search emits
    assert set(out[1][0].tokens) <= {9, 13, UNK} and out[1][0].constraints_met is None


def test_greedy_and_sampling_refuse_constraints():
    from nmt.errors import ConfigError
    from nmt.translator import Translator

    class Tok:
        pass
    for strategy in ("greedy", "sample"):
        tr = Translator(tiny_model().eval(), Tok(), SearchOptions(strategy=strategy))
        with pytest.raises(ConfigError, match="need beam search"):
            tr.translate_ids([[5, 6]], guides=[Guide((), [[7]])])


def test_the_piece_after_a_met_phrase_never_continues_its_last_word():
    """Pieces that continue a word (here 7-29) may not follow a met phrase: "bicycle" is not met by
    "bicycles". Without the rule, this model does continue some."""
    model = tiny_model(init_scale=0.5, seed=5).eval()
    g = torch.Generator().manual_seed(5)
    src, lens = source_tensor([torch.randint(4, 30, (n,), generator=g).tolist() for n in (4, 7, 2, 5, 6)])
    continuing = list(range(7, 30))
    phrases = [[[5]], [[6, 7]], [[8]], [[9], [4]], [[5, 11]]]

    def continued(words):
        out = beam_search(model, src, lens, SearchOptions(beam_size=4), constraints=Constraints.of(phrases, XP, words))
        count = 0
        for h, mine in zip([n[0] for n in out], phrases):
            assert h.constraints_met
            for phrase in mine:
                end = next(i + len(phrase) for i in range(len(h.tokens)) if h.tokens[i:i + len(phrase)] == phrase)
                count += end < len(h.tokens) and h.tokens[end] in continuing
        return count
    assert continued(continuing) == 0
    assert continued(None) > 0


def test_an_ensemble_meets_constraints_as_a_single_model_does():
    from nmt.models.ensemble import Ensemble
    model = tiny_model(init_scale=0.5, seed=7).eval()
    src, lens = source_tensor([[5, 6, 7], [8, 9, 10, 11]])
    cons = Constraints.of([[[20], [21, 22]], [[23]]], XP)
    options = SearchOptions(beam_size=3, nbest=2)
    alone = beam_search(model, src, lens, options, constraints=cons)
    twice = beam_search(Ensemble([model, model]), src, lens, options, constraints=cons)
    assert [[h.tokens for h in n] for n in twice] == [[h.tokens for h in n] for n in alone]
    assert all(h.constraints_met for n in twice for h in n)


@pytest.fixture(scope="module")
def tok():
    from nmt.data.spm import Tokenizer, train_spm
    rng = random.Random(0)
    words = "the a dog cat runs sleeps big small red house near under with".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(300)]
    return Tokenizer(train_spm(lines, vocab_size=40))  # each word one piece, and single letters


def test_constraint_text_becomes_ids_and_bad_phrases_name_their_line(tok):
    from nmt.errors import ConfigError
    from nmt.guides import encode_constraints, guides_of, split_phrases
    from nmt.search.constraints import MAX_PHRASES
    assert split_phrases("dog\t\t big cat \t") == ["dog", "big cat"] and split_phrases("  ") == []
    ids = encode_constraints(tok, [["dog", " ", "big cat"], []])
    assert ids == [tok.encode_tgt(["dog", "big cat"]), []]
    with pytest.raises(ConfigError, match=r"constraints of line 12: .*no piece for '\u4e2d'"):
        encode_constraints(tok, [["dog"], ["\u4e2d"]], first=11)
    with pytest.raises(ConfigError, match=f"{MAX_PHRASES + 1} phrases; at most {MAX_PHRASES}"):
        encode_constraints(tok, [["dog"] * (MAX_PHRASES + 1)])
    with pytest.raises(ConfigError, match="longer than any output"):
        encode_constraints(tok, [["dog " * 1100]])
    assert guides_of(tok, 2) is None
    guides = guides_of(tok, 2, prefixes=["the", ""], constraints=[[], ["red house"]])
    assert [g.prefix for g in guides] == tok.encode_prefixes(["the", ""])
    assert [list(g.constraints) for g in guides] == [[], tok.encode_tgt(["red house"])]


def test_word_continuations_are_the_pieces_inside_a_word(tok):
    from nmt.data.spm import WORD_START
    inside = set(tok.tgt_word_continuations())
    assert inside
    for i in range(tok.tgt_vocab_size):
        piece = tok.tgt.id_to_piece(i)
        expected = i > 3 and not piece.startswith(WORD_START) and any(c.isalnum() for c in piece)
        assert (i in inside) == expected, piece


def test_the_translator_puts_each_phrase_as_words_and_warns_about_a_line_it_cannot_satisfy(tok):
    from nmt.translator import Translator
    warnings = []
    model = tiny_model(vocab=tok.src_vocab_size, init_scale=0.5, seed=3).eval()
    tr = Translator(model, tok, SearchOptions(beam_size=4, no_repeat_ngram=1), warn=warnings.append)
    out = tr.translate(["the dog runs", "a cat", "big red house"], constraints=[["small cat"], [], ["red red"]])
    assert " small cat " in f" {out[0][0][0]} " and not warnings[1:]
    assert len(warnings) == 1 and warnings[0].startswith("line 3: search found no translation holding all")


@pytest.mark.parametrize("seed", range(8))
def test_random_settings_keep_prefixes_flag_truthfully_and_decode_alike_on_numpy(seed):
    """Random models, batches, phrases (repeated ones too), prefixes, n-gram blocking, min length,
    coverage penalty and word continuations: every hypothesis starts with its prefix, one flagged met
    holds its phrases, and search over numpy arrays finds the same hypotheses."""
    import numpy as np

    from nmt.search.arrays import NumpyOps

    from .test_export import _NumpyView
    rng = random.Random(seed)
    model = tiny_model(cell=rng.choice(["gru", "lstm", "rnn"]), attention=rng.choice(["bahdanau", "luong_dot"]),
                       init_scale=rng.choice([0.3, 1.0]), seed=seed).eval()
    n = rng.randint(1, 6)
    src, lens = source_tensor([[rng.randrange(4, 30) for _ in range(rng.randint(1, 10))] for _ in range(n)])
    phrases = _random_phrases(rng, n)
    prefixes = [[rng.randrange(4, 30) for _ in range(rng.randint(1, 3))] if rng.random() < 0.3 else [] for _ in range(n)]
    k = rng.randint(1, 5)
    options = SearchOptions(beam_size=k, nbest=rng.randint(1, k), no_repeat_ngram=rng.choice([0, 2]),
                            min_len=rng.choice([0, 3]), coverage_penalty=rng.choice([0.0, 0.2]), max_len_b=5)
    continuing = list(range(20, 30)) if seed % 2 else None
    with torch.no_grad():
        out = beam_search(model, src, lens, options, Prefix.of(prefixes, XP), Constraints.of(phrases, XP, continuing))
        alike = beam_search(_NumpyView(model), src.numpy(), lens.numpy(), options, Prefix.of(prefixes, NumpyOps()),
                            Constraints.of(phrases, NumpyOps(), continuing))
    for hyps, other, p, start in zip(out, alike, phrases, prefixes):
        assert hyps and [h.tokens for h in hyps] == [h.tokens for h in other]
        assert np.allclose([h.score for h in hyps], [h.score for h in other], atol=1e-4)
        for h in hyps:
            assert h.tokens[:len(start)] == start
            assert h.constraints_met is not True or _holds(h.tokens, p)
            assert (h.constraints_met is None) == (not p)
