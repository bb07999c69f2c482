"""Guided alignment: Pharaoh files read and checked, links turned into attention targets over
pieces, the loss and its gradient, the weight's schedule, the settings' rules, alignment error rate."""
import numpy as np
import pytest
import torch

from nmt.config import CorpusSpec, compose, validate
from nmt.data import toy
from nmt.data.alignments import (
    Guide,
    Links,
    alignment_error_rate,
    links_of,
    parse_links,
    piece_words,
    read_links,
    reference_links,
)
from nmt.data.batching import TokenArrays
from nmt.data.corpus import CorpusError
from nmt.data.dataset import EncodedCorpus
from nmt.data.mixture import TrainingData
from nmt.data.spm import EOS, PAD
from nmt.errors import ConfigError
from nmt.training.loss import Objective, guided_alignment_loss
from nmt.training.schedules import guided_alignment_weight

from .helpers import collate, tiny_model, write_lines


def test_pharaoh_links_parse_and_a_bad_item_names_file_and_line():
    assert parse_links("0-0 2-1 1?3", "f:1") == [(0, 0, True), (2, 1, True), (1, 3, False)]
    assert parse_links("   ", "f:2") == []
    for bad in ("0-0 1:2", "a-b", "0-", "-1-2"):
        with pytest.raises(CorpusError, match=r"train\.align:7: .* is not an alignment link"):
            parse_links(bad, "train.align:7")


@pytest.fixture
def corpus(tmp_path):
    write_lines(tmp_path / "c.de", ["ein Haus", "der große Mann läuft", "ja"])
    write_lines(tmp_path / "c.en", ["a house", "the tall man runs", "yes"])
    return str(tmp_path / "c")


def test_links_are_read_flat_with_one_line_per_pair(corpus, tmp_path):
    write_lines(tmp_path / "a", ["0-0 1-1", "0-0 1-1 2-2 3?3", ""])
    links = read_links(str(tmp_path / "a"), corpus, "de", "en")
    assert len(links) == 3 and links.starts.tolist() == [0, 2, 6, 6]
    assert links.src.tolist() == [0, 1, 0, 1, 2, 3] and links.tgt.tolist() == [0, 1, 0, 1, 2, 3]


@pytest.mark.parametrize("lines, message", [
    (["0-0", "0-0"], r"a: 2 lines of alignments for 3 pairs in .*c\.de"),
    (["0-0", "0-0", "0-0", "0-0"], r"a: more than 3 lines of alignments for 3 pairs"),
    (["0-0", "4-0", "0-0"], r"a:2: link 4-0 points past the source sentence, which has 4 words \(.*c\.de:2\)"),
    (["0-2", "0-0", "0-0"], r"a:1: link 0-2 points past the target sentence, which has 2 words \(.*c\.en:1\)"),
])
def test_alignments_that_do_not_fit_the_corpus_are_refused_naming_the_line(corpus, tmp_path, lines, message):
    write_lines(tmp_path / "a", lines)
    with pytest.raises(CorpusError, match=message):
        read_links(str(tmp_path / "a"), corpus, "de", "en")


def test_pieces_map_to_words_by_the_word_start_marker_after_a_tag():
    # vocab: 4 "▁<2en>"-like tag piece (starts a word), 5 "▁Ha" (start), 6 "us" (continues), 7 "▁ein" (start)
    starts = np.array([False, False, False, False, True, True, False, True])
    ids = np.array([[4, 7, 5, 6, EOS, PAD], [5, 6, 6, EOS, PAD, PAD]])
    assert piece_words(ids, starts, skip_words=1).tolist() == [[-1, 0, 1, 1, -1, -1], [-1, -1, -1, -1, -1, -1]]
    assert piece_words(ids, starts).tolist() == [[0, 1, 2, 2, -1, -1], [0, 0, 0, -1, -1, -1]]
    # a first piece without the marker still begins the sentence's first word
    assert piece_words(np.array([[6, 5, EOS]]), starts).tolist() == [[0, 1, -1]]


def test_attention_targets_spread_each_target_piece_over_its_linked_source_pieces():
    starts = np.array([False] * 4 + [True, False, True, False, True])  # 4, 6, 8 start words; 5, 7 continue
    # corpus line 0: source words [4 5] [6], target words [8] [6 7], links 0-1, 1-1, 1-0; line 1: none
    links = Links(np.array([0, 1, 1], dtype=np.int32), np.array([1, 1, 0], dtype=np.int32), np.array([0, 3, 3]))
    guide = Guide(links, lines=np.array([1, 0]), src_word_start=starts, tgt_word_start=starts)
    # the cache kept the corpus lines in another order: pair k is corpus line lines[k]
    src = np.array([[4, 5, 6, EOS], [8, EOS, PAD, PAD]])
    tgt = np.array([[8, 6, 7], [4, EOS, PAD]])
    out = guide.targets_array(np.array([1, 0]), src, tgt)
    assert out.shape == (2, 3, 4)
    assert np.all(out[1] == 0)  # pair 0 is corpus line 1, which has no links
    third = 1 / 3
    assert np.allclose(out[0], [[0, 0, 1, 0],  # target word 0 <- source word 1 (piece 2)
                                [third, third, third, 0],  # target word 1 <- source words 0 and 1
                                [third, third, third, 0]])
    assert np.allclose(guide.targets(np.array([0]), torch.tensor(src[1:]), torch.tensor(tgt[1:])).numpy(), out[1:2])


def test_the_guided_loss_is_the_cross_entropy_over_linked_pieces_and_its_gradient_checks():
    weights = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]])
    align = torch.tensor([[[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]])  # the second piece has no link
    expected = -(0.5 * np.log(0.5) + 0.5 * np.log(0.25))  # one linked piece
    assert guided_alignment_loss(weights, align).item() == pytest.approx(expected)
    assert guided_alignment_loss(weights, torch.zeros_like(align)).item() == 0.0
    logits = torch.randn(2, 3, 4, dtype=torch.double, requires_grad=True)
    target = torch.rand(2, 3, 4, dtype=torch.double)
    target = target / target.sum(-1, keepdim=True)
    target[1, 2] = 0
    assert torch.autograd.gradcheck(lambda z: guided_alignment_loss(torch.softmax(z, -1), target), (logits,))


@pytest.mark.parametrize("attention, input_feeding", [("luong_general", False), ("bahdanau", True)])
def test_the_objective_adds_the_weighted_guided_loss_and_reports_it_apart(attention, input_feeding):
    model = tiny_model(attention=attention, input_feeding=input_feeding)  # the fast path and the step loop
    b = collate([[5, 6, 7], [8, 9]], [[10, 11], [12, 13, 14]])
    align = torch.zeros(2, 4, 4)
    align[0, 0, 1] = align[0, 1, 0] = align[1, 0, 0] = 1.0
    objective = Objective(model, 0.1).eval()
    plain, nll, none = objective(b.src, b.src_lens, b.tgt_in, b.tgt_out)
    guided_total, nll2, guided = objective(b.src, b.src_lens, b.tgt_in, b.tgt_out, align=align, align_weight=0.5)
    assert none.item() == 0.0 and guided.item() > 0 and not guided.requires_grad
    torch.testing.assert_close(guided_total, plain + 0.5 * guided)
    torch.testing.assert_close(nll, nll2)
    # the guided term's gradient reaches the attention's own parameters
    attention = [p for n, p in model.named_parameters() if "attention" in n]
    grads = torch.autograd.grad(guided_total - plain, attention, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_the_guided_weight_is_constant_or_falls_linearly_to_zero():
    assert guided_alignment_weight(5000, 0.1) == 0.1
    assert [guided_alignment_weight(s, 0.2, 100) for s in (0, 50, 100, 150)] == pytest.approx([0.2, 0.1, 0.0, 0.0])


def test_a_mixture_batch_gives_corpora_without_alignments_rows_of_zeros():
    starts = np.array([False] * 4 + [True] * 6)

    def part(n, guided):
        src = TokenArrays.from_lists([[4 + (k % 5), 5] for k in range(n)])
        tgt = TokenArrays.from_lists([[6, 7, 8][: 1 + k % 3] for k in range(n)])
        corpus = EncodedCorpus(src, tgt)
        if guided:
            links = Links(np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int32), np.arange(n + 1))
            corpus.guide = Guide(links, np.arange(n), starts, starts)
        return corpus
    data = TrainingData([part(6, True), part(5, False)], [CorpusSpec("a"), CorpusSpec("b")])
    batch = data.batch([7, 2, 9, 0])
    assert batch.align.shape == (4, batch.tgt_out.size(1), batch.src.size(1))
    assert batch.align[[0, 2]].abs().sum() == 0  # corpus b
    assert torch.allclose(batch.align[[1, 3], 0, 0], torch.ones(2))  # corpus a: target word 0 <- source word 0
    assert data.batch([7, 9]).align is None


@pytest.mark.parametrize("overrides, message", [
    (["train.guided_alignment_weight=0.1"], "needs word alignments of the training data"),
    (["data.alignments=a.align"], r"only with train.guided_alignment_weight > 0"),
    (["data.alignments=a.align", "train.guided_alignment_weight=0.1", "attention=none"], "no weights over the source"),
    (["data.alignments=a.align", "train.guided_alignment_weight=-1"], "train.guided_alignment_weight"),
    (["data.alignments=a.align", "train.guided_alignment_weight=0.1", "data.train=[a,b]"],
     "give each corpus its own"),
    (["train.guided_alignment_weight=0.1", "data.train=[{path: a, alignments: 3}]"],
     r"data.train\[0\].alignments=3: must be the path"),
])
def test_guided_alignment_settings_are_checked_together(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose(overrides))


def test_guided_alignment_settings_accept_one_file_or_one_per_corpus():
    validate(compose(["data.alignments=a.align", "train.guided_alignment_weight=0.1"]))
    validate(compose(["train.guided_alignment_weight=0.1", "data.train=[{path: a, alignments: a.align}, b]"]))


def test_the_toy_corpus_comes_with_gold_alignments_inside_its_sentences(tmp_path):
    toy.generate(str(tmp_path), sizes={"train": 200, "valid": 5, "test": 5})
    links = read_links(str(tmp_path / "train.align"), str(tmp_path / "train"), "src", "tgt")  # in range
    tgt = (tmp_path / "train.tgt").read_text().splitlines()
    for k, line in enumerate(tgt):
        linked = set(links.tgt[links.starts[k]:links.starts[k + 1]].tolist())
        assert linked == set(range(len(line.split()))), k  # every target word translates a source word
    sure, possible = reference_links(str(tmp_path / "train.align"))[0]
    assert sure and sure.isdisjoint(possible)


def test_alignment_error_rate_counts_sure_and_possible_links():
    refs = [({(0, 0), (1, 1)}, {(2, 1)})]
    assert alignment_error_rate([{(0, 0), (1, 1)}], refs) == 0.0
    assert alignment_error_rate([{(0, 0), (1, 1), (2, 1)}], refs) == 0.0  # a possible link costs nothing
    # A = {0-0, 2-2}: |A&S| = 1, |A&P| = 1, |A| = 2, |S| = 2: 1 - 2/4
    assert alignment_error_rate([{(0, 0), (2, 2)}], refs) == pytest.approx(50.0)
    assert alignment_error_rate([links_of("0-0 1-1")], refs) == 0.0


def test_the_eflomal_recipe_writes_alignments_training_accepts_and_near_gold(tmp_path, monkeypatch):
    """scripts/align_corpus.py (only where the optional extra nmt[align] is installed): its output
    passes training's checks and agrees with the toy corpus's gold alignments."""
    pytest.importorskip("eflomal")
    pytest.importorskip("nltk")
    import importlib.util
    import sys

    from ..conftest import ROOT
    toy.generate(str(tmp_path / "toy"), sizes={"train": 2000, "valid": 5, "test": 5})
    spec = importlib.util.spec_from_file_location("align_corpus", ROOT / "scripts" / "align_corpus.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(sys, "argv", ["align_corpus.py", "--src-lang", "src", "--tgt-lang", "tgt", "--out",
                                      str(tmp_path / "out"), str(tmp_path / "toy" / "train")])
    script.main()
    out = str(tmp_path / "out" / "train.align")
    read_links(out, str(tmp_path / "toy" / "train"), "src", "tgt")  # every line fits its pair
    hyps = [links_of(line) for line in (tmp_path / "out" / "train.align").read_text().splitlines()]
    assert alignment_error_rate(hyps, reference_links(str(tmp_path / "toy" / "train.align"))) < 30
    with pytest.raises(SystemExit, match="exists; not overwriting"):
        script.main()
