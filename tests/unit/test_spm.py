import pytest

from nmt.data.corpus import read_parallel
from nmt.data.spm import BOS, EOS, PAD, UNK, Tokenizer


@pytest.fixture(scope="module")
def corpus(toy_dir):
    return read_parallel(str(toy_dir / "train"), "src", "tgt")


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_joint_model_fixed_ids_and_roundtrip(corpus, model_type):
    tok = Tokenizer.train(corpus.src, corpus.tgt, 300, model_type, joint=True)
    assert tok.joint and tok.src_vocab_size == tok.tgt_vocab_size
    for sp in (tok.src, tok.tgt):
        assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD, UNK, BOS, EOS)
    ids = tok.encode_tgt(corpus.tgt[:20])
    assert tok.decode_tgt(ids) == corpus.tgt[:20]  # raw text in, detokenized text out


def test_separate_models_and_save(corpus, tmp_path):
    tok = Tokenizer.train(corpus.src, corpus.tgt, 250, "unigram", joint=False)
    assert not tok.joint
    tok.save(str(tmp_path))
    assert (tmp_path / "spm.src.model").exists() and (tmp_path / "spm.tgt.model").exists()
    again = Tokenizer(tok.src_proto, tok.tgt_proto)
    assert again.encode_src(corpus.src[:5]) == tok.encode_src(corpus.src[:5])


def test_unknown_model_type_is_refused(corpus):
    with pytest.raises(ValueError, match="not a valid SpmType"):
        Tokenizer.train(corpus.src, corpus.tgt, 200, "word", joint=True)
