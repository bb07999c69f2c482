import pytest
import sacrebleu

from nmt.errors import NmtError
from nmt.eval.bleu import LineCountError, score, sentence_scores

HYP = ["the cat sat on the mat", "a dog runs in the park", "hello world"]
REF = ["the cat sat on the mat", "the dog is running in a park", "hello there world"]


def test_corpus_scores_match_sacrebleu_with_signatures():
    out = score(HYP, [REF], metrics=("bleu", "chrf", "ter"))
    assert out["bleu"]["score"] == pytest.approx(sacrebleu.corpus_bleu(HYP, [REF]).score, abs=1e-3)
    assert out["chrf"]["score"] == pytest.approx(sacrebleu.corpus_chrf(HYP, [REF]).score, abs=1e-3)
    assert "tok:13a" in out["bleu"]["signature"] and "BLEU" in out["bleu"]["text"]
    assert score(REF, [REF], metrics=("bleu",))["bleu"]["score"] == pytest.approx(100.0)
    assert 0 < out["bleu"]["score"] < 100


def test_sentence_scores_per_line():
    rows = sentence_scores(HYP, [REF])
    assert len(rows) == 3 and rows[0]["bleu"] == pytest.approx(100.0) and rows[0]["chrf"] == pytest.approx(100.0)
    assert rows[1]["bleu"] < 100 and 0 < rows[2]["chrf"] < 100
    assert rows[1]["bleu"] == pytest.approx(sacrebleu.sentence_bleu(HYP[1], [REF[1]]).score, abs=1e-3)


def test_refusals_name_the_files():
    with pytest.raises(LineCountError, match="hyp.txt has 3 lines, ref.txt has 2"):
        score(HYP, [REF[:2]], names=["hyp.txt", "ref.txt"])
    with pytest.raises(NmtError, match="empty"):
        score([], [[]], names=["a", "b"])
    with pytest.raises(ValueError, match="unknown metric"):
        score(HYP, [REF], metrics=("meteor",))
