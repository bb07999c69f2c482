"""Source factors: files read and checked line by line, vocabularies, the expansion of word values to
pieces (specials outside the words), sources with factor columns through padding, the encoder, the
translator, the checkpoint and mixtures; the toy corpus's part-of-speech factor."""
import random

import numpy as np
import pytest
import torch

from nmt.checkpoint import spm_entry, tokenizer_of
from nmt.config import AttentionConfig, CorpusSpec, DecoderConfig, EncoderConfig, compose, validate
from nmt.data import toy
from nmt.data.batching import TokenArrays, pad_array, source_arrays
from nmt.data.corpus import CorpusError
from nmt.data.dataset import EncodedCorpus
from nmt.data.factors import (
    SPECIALS,
    CorpusFactors,
    FactorVocab,
    WordFactors,
    count_values,
    factor_columns,
    piece_factors,
    read_factor_texts,
    read_word_factors,
)
from nmt.data.mixture import TrainingData
from nmt.data.spm import BOS, EOS, PAD, UNK, Tokenizer, train_spm
from nmt.errors import ConfigError
from nmt.models import build_model
from nmt.search import SearchOptions
from nmt.translator import Translator

from .helpers import write_lines

WORDS = "the a dog cat runs sleeps big small red house near under with".split()


@pytest.fixture(scope="module")
def tok():
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(300)]
    return Tokenizer(train_spm(lines, vocab_size=30, user_symbols=["<2xx>"]))  # words split into several pieces


@pytest.fixture
def corpus(tmp_path):
    write_lines(tmp_path / "c.de", ["Ein Haus", "der große Mann läuft", ""])
    write_lines(tmp_path / "c.de.case", ["C C", "l l C l", ""])
    write_lines(tmp_path / "c.de.pos", ["DET NOUN", "DET ADJ NOUN VERB", ""])
    return str(tmp_path / "c")


def test_vocabularies_count_the_training_values_most_frequent_first_after_the_specials(corpus):
    case, pos = count_values([corpus], "de", ["case", "pos"])
    assert SPECIALS == ("<pad>", "<unk>", "<s>", "</s>") and (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert case.values == ("C", "l") and pos.values == ("DET", "NOUN", "ADJ", "VERB")
    assert len(case) == 6 and case.ids(["l", "C", "never seen"]) == [5, 4, UNK]
    assert FactorVocab.from_dict(case.to_dict()) == case


def test_word_factors_are_flat_with_one_row_per_word(corpus):
    vocabs = count_values([corpus], "de", ["case", "pos"])
    words = read_word_factors(corpus, "de", vocabs)
    assert len(words) == 3 and words.starts.tolist() == [0, 2, 6, 6]
    assert words.ids.shape == (6, 2) and words.ids[:, 0].tolist() == [4, 4, 5, 5, 4, 5]


@pytest.mark.parametrize("lines, message", [
    (["C C", "l l C", ""], r"c\.de\.case:2: 3 factor values for 4 words in .*c\.de:2"),
    (["C C", "l l C l"], r"c\.de\.case has 2 lines, .*c\.de has 3"),
    (["C C", "l l C l", "", "C"], r"c\.de\.case has more lines than .*c\.de \(3\)"),
    (["C C", "l l C l", "x"], r"c\.de\.case:3: 1 factor values for 0 words"),
])
def test_factor_files_that_do_not_fit_the_source_are_refused_naming_the_line(corpus, tmp_path, lines, message):
    write_lines(tmp_path / "c.de.case", lines)
    with pytest.raises(CorpusError, match=message):
        count_values([corpus], "de", ["case"])
    with pytest.raises(CorpusError, match=message):
        read_factor_texts(corpus, "de", ["case"])


def test_a_missing_factor_file_is_refused_before_anything_is_read(tmp_path, corpus):
    with pytest.raises(CorpusError, match=r"missing corpus file: .*c\.de\.lemma"):
        count_values([corpus], "de", ["lemma"])


def test_pieces_take_their_words_value_and_specials_outside_the_words(tok):
    vocab = FactorVocab("case", ("A", "B", "C"))
    lines = ["<2xx> sleeps dog", "<2xx> house"]  # every line of a corpus carries its tag
    ids = [tok.encode_src([line])[0] for line in lines]
    words = WordFactors.of(iter([[["A", "B"]], [["C"]]]), [vocab])  # the tag is not a word of the line
    padded = pad_array(ids, eos=True)  # (2, width)
    out = piece_factors(padded, words, np.array([0, 1]), tok.src_word_start, tag_words=1)[..., 0]  # (2, width)
    sleeps, dog = (len(x) for x in tok.encode_src(["sleeps", "dog"]))
    assert sleeps + dog > 2  # words of several pieces: each piece gets its word's value
    tag = len(ids[0]) - sleeps - dog
    a, b = vocab.ids(["A", "B"])
    assert out[0, :len(ids[0])].tolist() == [BOS] * tag + [a] * sleeps + [b] * dog and out[0, len(ids[0])] == EOS
    n, house = len(ids[1]), len(tok.encode_src(["house"])[0])
    assert out[1, :n].tolist() == [BOS] * tag + vocab.ids(["C"]) * house and out[1, n] == EOS
    assert (out[1, n + 1:] == PAD).all()


def test_sources_with_factor_columns_pad_and_end_alike_in_every_column():
    rows = [np.array([[5, 7], [6, 8]]), np.array([[9, 4]])]
    src, lens = source_arrays(rows)
    assert src.shape == (2, 3, 2) and lens.tolist() == [3, 2]
    assert src[0].tolist() == [[5, 7], [6, 8], [EOS, EOS]] and src[1].tolist() == [[9, 4], [EOS, EOS], [PAD, PAD]]
    assert TokenArrays.from_lists(rows).tokens.shape == (3, 2)


def factor_model(vocab=30, combine="concat", sizes=(6, 5), seed=0):
    torch.manual_seed(seed)
    enc = EncoderConfig(embed_size=8, hidden_size=6, factor_embed_size=3, factor_combine=combine, dropout=0.0)
    dec = DecoderConfig(embed_size=8, hidden_size=12, attentional_size=12, dropout=0.0)
    return build_model(enc, AttentionConfig(hidden_size=7), dec, vocab, vocab, src_factor_sizes=sizes).eval()


@pytest.mark.parametrize("combine, width", [("concat", 8 + 2 * 3), ("sum", 8)])
def test_the_encoder_embeds_each_factor_and_concatenates_or_sums(combine, width):
    model = factor_model(combine=combine)
    assert model.encoder.layers[0].input_size == width
    src = torch.tensor([[[5, 4, 4], [6, 5, 4], [EOS, EOS, EOS]], [[7, 4, 4], [EOS, EOS, EOS], [PAD, PAD, PAD]]])
    lens = torch.tensor([3, 2])
    emb = model.encoder.embed_source(src)
    assert emb.shape == (2, 3, width)
    assert emb[1, 2].abs().sum() == 0  # padding embeds to zero in every column
    out = model.encoder(src, lens).outputs
    changed = src.clone()
    changed[0, 0, 1] = 5  # one word's first factor
    assert not torch.allclose(model.encoder(changed, lens).outputs[0], out[0])
    torch.testing.assert_close(model.encoder(changed, lens).outputs[1], out[1])
    with pytest.raises(ValueError, match="carries 0 factors per piece but the model reads 2"):
        model.encoder(src[..., 0], lens)


def test_the_translator_reads_factors_per_word_and_refuses_a_wrong_count(tok):
    vocabs = (FactorVocab("case", ("l", "C")),)
    tok = Tokenizer(tok.src_proto, factors=vocabs)
    model = factor_model(vocab=tok.src_vocab_size, sizes=tok.factor_sizes)
    tr = Translator(model, tok, SearchOptions(beam_size=3))
    lines = ["the dog sleeps", "", "a cat"]
    ids = tr.encode_lines(lines, factors=[["l C l", "", "C C"]])
    assert [row.shape[1] for row in ids] == [2, 2, 2] and len(ids[1]) == 0
    assert ids[0][:, 0].tolist() == tok.encode_src(lines[:1])[0]
    lowered = tr.translate(lines, factors=[["l l l", "", "l l"]])
    raised = tr.translate(lines, factors=[["C C C", "", "C C"]])
    assert lowered[1] == raised[1] == [("", 0.0)]
    assert [lowered[k][0][1] for k in (0, 2)] != pytest.approx([raised[k][0][1] for k in (0, 2)])
    with pytest.raises(CorpusError, match=r"factor case line 3: 1 factor values for 2 words in input line 3"):
        tr.translate(lines, factors=[["l C l", "", "C"]])
    with pytest.raises(CorpusError, match="reads source factors case, 1 values per source word; 0 given"):
        tr.translate(lines)
    with pytest.raises(CorpusError, match=r"factor case has 2 lines, input has 3"):
        tr.encode_lines(lines, factors=[["l C l", ""]])
    with pytest.raises(CorpusError, match="has no source factor 'pos'.*its factors: case"):
        factor_columns(vocabs, {"case": [], "pos": []}, "factors", "")
    with pytest.raises(CorpusError, match="case not given"):
        factor_columns(vocabs, {}, "--src-factors", "")
    assert factor_columns((), None, "factors", "") is None


def test_the_checkpoint_keeps_the_factor_vocabularies(tok):
    with_factors = Tokenizer(tok.src_proto, factors=[FactorVocab("pos", ("NOUN", "VERB"))])
    assert tokenizer_of({"spm": spm_entry(with_factors)}).factors == with_factors.factors
    assert "factors" not in spm_entry(tok) and tokenizer_of({"spm": spm_entry(tok)}).factors == ()


def test_a_corpus_batch_carries_factor_columns_and_mixtures_pad_them():
    starts = np.array([False] * 4 + [True] * 6)

    def part(n):
        src = TokenArrays.from_lists([[4 + (k % 5), 5, 6][: 1 + k % 3] for k in range(n)])
        tgt = TokenArrays.from_lists([[6, 7] for _ in range(n)])
        corpus = EncodedCorpus(src, tgt)
        words = WordFactors(np.arange(10, 10 + 3 * n, dtype=np.int32)[:, None], np.arange(0, 3 * n + 1, 3))
        corpus.factors = CorpusFactors(words, np.arange(n), starts)
        return corpus
    data = TrainingData([part(6), part(5)], [CorpusSpec("a"), CorpusSpec("b")])
    batch = data.batch([7, 2, 9, 0])
    assert batch.src.shape[0] == 4 and batch.src.shape[2] == 2
    assert batch.src[1, 0].tolist() == [6, 10 + 3 * 2] and batch.src[1, 3, 1] == EOS  # pair 2: 3 pieces, 3 words
    assert batch.src[3, :2].tolist() == [[4, 10], [EOS, EOS]]


@pytest.mark.parametrize("overrides, message", [
    (["data.src_factors=[a,a]"], "data.src_factors"),
    (["data.src_factors=['a b']"], "data.src_factors"),
    (["encoder.factor_embed_size=0"], "encoder.factor_embed_size"),
])
def test_factor_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose(overrides))


def test_the_toy_corpus_tags_each_source_word_with_its_part_of_speech(tmp_path):
    toy.generate(str(tmp_path), sizes={"train": 200, "valid": 5, "test": 5})
    src = (tmp_path / "train.src").read_text().splitlines()
    pos = (tmp_path / f"train.src.{toy.POS}").read_text().splitlines()
    assert len(pos) == len(src) and all(len(p.split()) == len(s.split()) for p, s in zip(pos, src))
    tags = {t for line in pos for t in line.split()}
    assert tags == {"DET", "ADJ", "NOUN", "VERB", "AUX", "NEG", "ADP"}
    for line, tagged in zip(src, pos):
        words = dict(zip(line.split(), tagged.split()))
        assert all(words[w] == "DET" for w in ("the", "a", "some") if w in words)
