"""The exported graphs equal the PyTorch model, and search over numpy arrays equals search over
torch tensors: every cell x attention x input feeding, ONNX Runtime against PyTorch."""
import itertools
import json

import numpy as np
import pytest
import torch

from nmt.data.batching import source_tensor
from nmt.search import SearchOptions, beam_search, greedy_search
from nmt.search.arrays import NumpyOps, TorchOps
from nmt.search.common import Prefix

from .helpers import tiny_model

pytest.importorskip("onnxruntime")

COMBOS = list(itertools.product(["rnn", "gru", "lstm"], ["final", "none", "bahdanau", "luong_dot", "luong_general"],
                                [True, False]))


def _bundle(model, directory):
    from nmt.deploy.bundle import Manifest, sha256
    from nmt.deploy.export import export_graphs, write_topk
    from nmt.deploy.runtime import OnnxModel
    names, weights = export_graphs(model, str(directory))
    write_topk(str(directory))
    files = {p.name: sha256(str(p)) for p in directory.iterdir()}
    Manifest("test", "", {}, 30, 30, names, weights, [], files=files).write(str(directory))
    return OnnxModel(str(directory), threads=1)


def _sources(seed=1, lengths=(7, 3, 12, 1)):
    g = torch.Generator().manual_seed(seed)
    return source_tensor([torch.randint(4, 30, (n,), generator=g).tolist() for n in lengths])


@pytest.mark.parametrize("cell,attention,feed", COMBOS)
def test_exported_steps_give_pytorchs_log_probabilities_within_1e_4(cell, attention, feed, tmp_path):
    model = tiny_model(cell=cell, attention=attention, input_feeding=feed, layers=2, dec_layers=2).eval()
    onnx = _bundle(model, tmp_path)
    src, lens = _sources()
    beams = torch.arange(4).repeat_interleave(3)  # 3 beams per sentence over one memory row each
    with torch.no_grad():
        memory, state = model.encode(src, lens)
        state, _ = model.reorder(state, None, beams)
        o_memory, o_state = onnx.encode(src.numpy(), lens.numpy())
        assert np.abs(o_memory["values"] - memory.values.numpy()).max() < 1e-5
        assert (o_memory["mask"] == memory.mask.numpy()).all()
        o_state, _ = onnx.reorder(o_state, None, beams.numpy())
        prev = torch.randint(4, 30, (12,), generator=torch.Generator().manual_seed(2))
        for _ in range(3):
            logits, state, weights = model.step(prev, state, memory)
            logp, o_state, o_weights = onnx.step(prev.numpy(), o_state, o_memory)
            assert np.abs(logp - torch.log_softmax(logits, -1).numpy()).max() < 1e-4
            assert (weights is None) == (o_weights is None)
            if weights is not None:
                assert np.abs(o_weights - weights.numpy()).max() < 1e-5
            prev = logits.argmax(-1)


def _built(enc: dict, dec: dict, factors=()):
    from nmt.config import AttentionConfig, DecoderConfig, EncoderConfig
    from nmt.models import build_model
    torch.manual_seed(0)
    dec = {"embed_size": 8, "hidden_size": 12, "attentional_size": 12, "init": "uniform", "init_scale": 0.3, **dec}
    return build_model(EncoderConfig(embed_size=8, **enc), AttentionConfig(kind="luong_general"),
                       DecoderConfig(**dec), 30, 30, src_factor_sizes=factors).eval()


ARCHITECTURES = {  # beyond cell x attention x feeding: layers, residual, directions, bridges, sizes, tying, dropout
    "residual 3-layer LSTM encoder, GRU decoder": ({"cell": "lstm", "hidden_size": 6, "num_layers": 3,
                                                    "residual": True, "dropout": 0.3}, {"cell": "gru"}),
    "unidirectional encoder, 2-layer LSTM decoder, tanh bridge": ({"cell": "gru", "hidden_size": 12,
                                                                   "bidirectional": False},
                                                                  {"cell": "lstm", "num_layers": 2, "bridge": "bridge",
                                                                   "dropout": 0.3}),
    "LSTM to LSTM, zero bridge": ({"cell": "lstm", "hidden_size": 6}, {"cell": "lstm", "bridge": "zeros"}),
    "tied embeddings": ({"cell": "gru", "hidden_size": 6}, {"tie_embeddings": True, "embed_size": 12}),
    "no attentional layer": ({"cell": "rnn", "hidden_size": 6}, {"attentional_size": 0}),
    "two source factors, concatenated": ({"cell": "gru", "hidden_size": 6, "factor_embed_size": 3}, {}, (6, 9)),
    "a source factor, summed": ({"cell": "lstm", "hidden_size": 6, "factor_combine": "sum"}, {}, (7,)),
}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_exports_equal_and_stays_in_eval_mode(name, tmp_path):
    from nmt.deploy.export import with_factors
    model = _built(*ARCHITECTURES[name])
    onnx = _bundle(model, tmp_path)
    assert not any(m.training for m in model.modules())  # exporting leaves the model as it was
    src, lens = _sources()
    src = with_factors(model, src, torch.Generator().manual_seed(3))  # (batch, src_len[, 1 + factors])
    with torch.no_grad():
        ours, packed = model.encoder.padded_forward(src, lens), model.encoder(src, lens)
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(ours, packed))
        memory, state = model.encode(src, lens)
        o_memory, o_state = onnx.encode(src.numpy(), lens.numpy())
        prev = torch.randint(4, 30, (4,), generator=torch.Generator().manual_seed(2))
        for _ in range(3):
            logits, state, _ = model.step(prev, state, memory)
            logp, o_state, _ = onnx.step(prev.numpy(), o_state, o_memory)
            assert np.abs(logp - torch.log_softmax(logits, -1).numpy()).max() < 1e-4
            prev = logits.argmax(-1)


@pytest.mark.parametrize("cell,attention,feed", [("gru", "bahdanau", True), ("lstm", "luong_general", False),
                                                 ("rnn", "none", True)])
def test_search_over_an_exported_model_finds_what_pytorch_finds(cell, attention, feed, tmp_path):
    model = tiny_model(cell=cell, attention=attention, input_feeding=feed, init_scale=0.5, seed=3).eval()
    onnx = _bundle(model, tmp_path)
    src, lens = _sources(seed=5)
    for options in (SearchOptions(beam_size=5, nbest=3), SearchOptions(strategy="greedy"),
                    SearchOptions(beam_size=4, min_len=3, no_repeat_ngram=2)):
        run = greedy_search if options.strategy.value == "greedy" else beam_search
        ours, theirs = run(model, src, lens, options), run(onnx, src.numpy(), lens.numpy(), options)
        assert [[h.tokens for h in n] for n in ours] == [[h.tokens for h in n] for n in theirs]
        assert np.allclose([h.score for n in ours for h in n], [h.score for n in theirs for h in n], atol=1e-4)


class _NumpyView:
    """A torch model behind the search contract with numpy inputs and outputs: the search's own
    operations are then the only difference between the two runs."""

    def __init__(self, model):
        self.model = model

    def encode(self, src, lens):
        return self.model.encode(torch.from_numpy(src), torch.from_numpy(lens))

    def step(self, prev, state, memory):
        logits, state, weights = self.model.step(torch.from_numpy(prev), state, memory)
        return torch.log_softmax(logits, -1).numpy(), state, None if weights is None else weights.numpy()

    def reorder(self, state, memory, index):
        return self.model.reorder(state, memory, torch.from_numpy(np.asarray(index)))


@pytest.mark.parametrize("seed", range(6))
def test_search_over_numpy_arrays_equals_search_over_torch_tensors(seed):
    model = tiny_model(cell="lstm", seed=seed, init_scale=0.5).eval()
    src, lens = _sources(seed=seed)
    prefixes = [[5, 6], [], [7], []]
    for options in (SearchOptions(beam_size=3, nbest=2), SearchOptions(beam_size=5, nbest=5, coverage_penalty=0.2,
                                                                        no_repeat_ngram=2),
                    SearchOptions(beam_size=4, min_len=3, penalty="average", max_len_a=0, max_len_b=6)):
        with torch.no_grad():
            ours = beam_search(model, src, lens, options, Prefix.of(prefixes, TorchOps(src.device)))
            theirs = beam_search(_NumpyView(model), src.numpy(), lens.numpy(), options,
                                 Prefix.of(prefixes, NumpyOps()))
        assert [[h.tokens for h in n] for n in ours] == [[h.tokens for h in n] for n in theirs]
        assert np.allclose([[h.score for h in n] for n in ours], [[h.score for h in n] for n in theirs], atol=1e-5)
    with torch.no_grad():
        g1 = greedy_search(model, src, lens, SearchOptions(strategy="greedy", no_repeat_ngram=1))
        g2 = greedy_search(_NumpyView(model), src.numpy(), lens.numpy(), SearchOptions(strategy="greedy",
                                                                                       no_repeat_ngram=1))
    assert [n[0].tokens for n in g1] == [n[0].tokens for n in g2]


def test_numpy_operations_match_torchs(tmp_path):
    from nmt.deploy.export import write_topk
    from nmt.deploy.runtime import _session
    x = torch.randn(6, 40, generator=torch.Generator().manual_seed(0))
    x[0, 3] = float("-inf")
    # no ties: torch orders equal values as its selection happens to meet them, ONNX Runtime lowest index first
    write_topk(str(tmp_path))
    t, n, ort = TorchOps(x.device), NumpyOps(), NumpyOps(_session(str(tmp_path / "topk.onnx"), 1))
    for k in (1, 5, 40):
        tv, ti = t.topk(x, k)
        for ops in (n, ort):
            nv, ni = ops.topk(x.numpy(), k)
            assert np.array_equal(tv.numpy(), nv) and np.array_equal(ti.numpy(), ni)
    tv, ti = t.topk(x.view(2, 3, 40), 4)  # any leading shape
    nv, ni = ort.topk(x.view(2, 3, 40).numpy(), 4)
    assert np.array_equal(tv.numpy(), nv) and np.array_equal(ti.numpy(), ni)
    assert np.allclose(t.logsumexp(x).numpy(), n.logsumexp(x.numpy()), atol=1e-6)
    assert np.isneginf(n.logsumexp(np.full((1, 3), -np.inf, dtype=np.float32))).all()
    idx = torch.tensor([[[1], [0], [1]], [[0], [0], [1]]])  # (2, 3, 1) against (2, 2, 5): broadcasts the last axis
    arr = torch.arange(20).view(2, 2, 5)
    assert np.array_equal(t.take_along(arr, idx, 1).numpy(), n.take_along(arr.numpy(), idx.numpy(), 1))
    h = torch.tensor([[5, 6, 5, 6, 7]])
    assert np.array_equal(t.windows(h, 2).numpy(), n.windows(h.numpy(), 2))
    assert np.array_equal(t.cummax(h, 1).numpy(), n.cummax(h.numpy(), 1))
    assert np.array_equal(t.amax(arr, -1).numpy(), n.amax(arr.numpy(), -1))


def test_sampling_over_an_exported_model_draws_from_its_nucleus(tmp_path):
    from nmt.search import sample_search
    model = tiny_model(init_scale=0.5, seed=2).eval()
    onnx = _bundle(model, tmp_path)
    src, lens = _sources(seed=4)
    greedy = greedy_search(onnx, src.numpy(), lens.numpy(), SearchOptions(strategy="greedy"))
    tiny = sample_search(onnx, src.numpy(), lens.numpy(), SearchOptions(strategy="sample", top_p=1e-6))
    assert [n[0].tokens for n in tiny] == [n[0].tokens for n in greedy]  # a nucleus of one token is greedy
    seeded = [sample_search(onnx, src.numpy(), lens.numpy(), SearchOptions(strategy="sample", temperature=2.0),
                            generator=np.random.default_rng(7)) for _ in range(2)]
    assert [n[0].tokens for n in seeded[0]] == [n[0].tokens for n in seeded[1]]


def test_a_bundle_is_checked_when_loaded_and_never_written_over_user_files(tmp_path):
    from nmt.deploy.bundle import BundleError, sha256
    from nmt.deploy.export import export_bundle
    from nmt.deploy.runtime import OnnxModel
    model = tiny_model().eval()
    (tmp_path / "b").mkdir()
    _bundle(model, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    (tmp_path / "b" / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(BundleError, match="bundle format 99"):
        OnnxModel(str(tmp_path / "b"))
    (tmp_path / "b" / "manifest.json").write_text(json.dumps({**manifest, "spm": ["../../etc/passwd"]}))
    with pytest.raises(BundleError, match="not a file of the bundle's directory"):
        OnnxModel(str(tmp_path / "b"))
    (tmp_path / "b" / "manifest.json").write_text(json.dumps({**manifest, "state": ["h", "c"]}))
    with pytest.raises(BundleError, match="encoder.onnx: takes .* not what .*manifest.json describes"):
        OnnxModel(str(tmp_path / "b"))  # a GRU's graphs under an LSTM's manifest
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    graph = (tmp_path / "b" / "step.onnx").read_bytes()
    (tmp_path / "b" / "step.onnx").write_bytes(graph[:-100] + bytes(100))  # damaged in place
    with pytest.raises(BundleError, match="step.onnx: differs from what was exported"):
        OnnxModel(str(tmp_path / "b"))
    (tmp_path / "b" / "step.onnx").write_bytes(b"not a graph")
    with_sum = {**manifest, "files": {**manifest["files"], "step.onnx": sha256(str(tmp_path / "b" / "step.onnx"))}}
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(with_sum))
    with pytest.raises(BundleError, match="step.onnx: not a loadable ONNX graph"):
        OnnxModel(str(tmp_path / "b"))
    (tmp_path / "b" / "step.onnx").unlink()
    with pytest.raises(BundleError, match="has no step.onnx"):
        OnnxModel(str(tmp_path / "b"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(BundleError, match="exists and is not an exported model"):
        export_bundle(str(tmp_path / "no-such.pt"), str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_an_ensemble_of_bundles_averages_its_members_and_needs_one_vocabulary(tmp_path):
    from nmt.deploy.bundle import BundleError, Manifest, sha256
    from nmt.deploy.runtime import OnnxEnsemble, OnnxModel
    models, members = [tiny_model(seed=s, init_scale=0.5).eval() for s in (1, 2)], []
    for k, model in enumerate(models):
        d = tmp_path / str(k)
        d.mkdir()
        _bundle(model, d)
        (d / "spm.model").write_bytes(b"vocabulary %d" % k)  # two different vocabularies
        manifest = Manifest.read(str(d))
        manifest.spm, manifest.files["spm.model"] = ["spm.model"], sha256(str(d / "spm.model"))
        manifest.write(str(d))
        members.append(OnnxModel(str(d), threads=1))
    with pytest.raises(BundleError, match="vocabulary .* differs"):
        OnnxEnsemble(members)
    ensemble = OnnxEnsemble([members[0], members[0].__class__(str(tmp_path / "0"), threads=1)])  # one model twice
    src, lens = _sources()
    one = beam_search(members[0], src.numpy(), lens.numpy(), SearchOptions(beam_size=3, nbest=2))
    twice = beam_search(ensemble, src.numpy(), lens.numpy(), SearchOptions(beam_size=3, nbest=2))
    assert [[h.tokens for h in n] for n in one] == [[h.tokens for h in n] for n in twice]


def test_constrained_search_over_numpy_arrays_and_over_a_bundle_finds_what_pytorch_finds(tmp_path):
    from nmt.search.constraints import Constraints
    model = tiny_model(cell="gru", seed=4, init_scale=0.5).eval()
    onnx = _bundle(model, tmp_path)
    src, lens = _sources(seed=4)
    phrases = [[[5, 6], [9]], [], [[7, 7, 8], [7, 7, 8]], [[11]]]
    prefixes = [[], [12], [], [13]]
    options = SearchOptions(beam_size=4, nbest=2)
    with torch.no_grad():
        ours = beam_search(model, src, lens, options, Prefix.of(prefixes, TorchOps(src.device)),
                           Constraints.of(phrases, TorchOps(src.device), range(20, 30)))
    for other in (_NumpyView(model), onnx):
        with torch.no_grad():
            theirs = beam_search(other, src.numpy(), lens.numpy(), options, Prefix.of(prefixes, NumpyOps()),
                                 Constraints.of(phrases, NumpyOps(), range(20, 30)))
        assert [[(h.tokens, h.constraints_met) for h in n] for n in ours] == \
            [[(h.tokens, h.constraints_met) for h in n] for n in theirs]
        assert np.allclose([h.score for n in ours for h in n], [h.score for n in theirs for h in n], atol=1e-4)


def test_beam_search_over_a_bundle_selects_from_the_vocabulary_with_onnx_runtimes_top_k(tmp_path):
    onnx = _bundle(tiny_model(seed=1).eval(), tmp_path)
    session, widths = onnx.ops.topk_session, []

    class Counting:  # the bundle's top-k session, recording the width of what it selects from
        def run(self, outputs, feeds):
            widths.append(feeds["x"].shape[-1])
            return session.run(outputs, feeds)
    onnx.ops.topk_session = Counting()
    src, lens = _sources(seed=2)
    beam_search(onnx, src.numpy(), lens.numpy(), SearchOptions(beam_size=3))
    assert 30 in widths  # each beam's best pieces among the whole vocabulary
