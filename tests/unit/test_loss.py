import math

import pytest
import torch
import torch.nn.functional as F

from nmt.data.spm import PAD
from nmt.precision import resolve_precision
from nmt.training.loss import Objective, loss_and_nll

from .helpers import collate, tiny_model


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_rows", [3, 0])
def test_chunked_loss_and_gradients_equal_plain_cross_entropy(smoothing, chunk_rows):
    torch.manual_seed(0)
    out = torch.nn.Linear(6, 11)
    feats = torch.randn(3, 5, 6, requires_grad=True)
    target = torch.randint(4, 11, (3, 5))
    target[1, 3:] = PAD
    target[2, 1:] = PAD
    loss = loss_and_nll(feats, out, target, smoothing, chunk_rows=chunk_rows)[0]
    loss.backward()
    g_feats, g_w = feats.grad.clone(), out.weight.grad.clone()
    feats.grad = None
    out.weight.grad = None
    ref = F.cross_entropy(out(feats).flatten(0, 1), target.flatten(), ignore_index=PAD, label_smoothing=smoothing)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(g_feats, feats.grad)
    torch.testing.assert_close(g_w, out.weight.grad)
    assert torch.all(g_feats[2, 1:] == 0)  # padding gets no gradient


def test_the_default_chunks_keep_the_logits_under_mallocs_heap_limit(monkeypatch):
    """The default chunking keeps each fp32 logits block under HEAP_BLOCK_MAX (blocks above it are
    mapped fresh by malloc on every update) and still covers every real target once."""
    from nmt.training.loss import HEAP_BLOCK_MAX
    vocab = 40_000  # 160 KB per row: 209 rows per chunk
    out = torch.nn.Linear(4, vocab)
    rows = []
    real = torch.logsumexp
    monkeypatch.setattr(torch, "logsumexp", lambda x, dim: rows.append(x.shape[0]) or real(x, dim))
    target = torch.randint(4, vocab, (50, 12))
    target[:, 10:] = PAD
    loss_and_nll(torch.randn(50, 12, 4), out, target)
    assert sum(rows) == 500 and len(rows) == 3
    assert max(rows) * vocab * 4 < HEAP_BLOCK_MAX


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("bias", [True, False])
def test_the_written_out_gradients_are_the_gradient(smoothing, bias):
    """LinearCrossEntropy's gradients (computed in forward, scaled by the upstream one in backward)
    against finite differences in double precision, over several chunks; the nll carries none."""
    from nmt.training.loss import LinearCrossEntropy
    torch.manual_seed(1)
    feats = torch.randn(7, 5, dtype=torch.double, requires_grad=True)
    weight = torch.randn(13, 5, dtype=torch.double, requires_grad=True)
    b = torch.randn(13, dtype=torch.double, requires_grad=True) if bias else None
    target = torch.randint(0, 13, (7,))
    inputs = (feats, weight, b) if bias else (feats, weight)
    assert torch.autograd.gradcheck(
        lambda f, w, *rest: LinearCrossEntropy.apply(f, w, rest[0] if rest else None, target, smoothing, 3)[0] / 3,
        inputs)
    loss, nll = LinearCrossEntropy.apply(feats, weight, b, target, smoothing, 3)
    logits = F.linear(feats, weight, b)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, reduction="sum", label_smoothing=smoothing))
    torch.testing.assert_close(nll, F.cross_entropy(logits, target, reduction="sum"))
    assert not nll.requires_grad


def test_the_loss_under_autocast_runs_the_products_in_its_dtype_and_the_rest_in_fp32():
    torch.manual_seed(0)
    out = torch.nn.Linear(16, 50)
    feats = torch.randn(4, 6, 16, requires_grad=True)
    target = torch.randint(4, 50, (4, 6))
    ref = F.cross_entropy(out(feats).flatten(0, 1), target.flatten(), label_smoothing=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, nll = loss_and_nll(feats, out, target, 0.1)
    assert loss.dtype == torch.float32 and nll.dtype == torch.float32
    torch.testing.assert_close(loss, ref, atol=0.05, rtol=0.02)  # bf16 products: close, not equal
    loss.backward()
    assert feats.grad.dtype == torch.float32 and out.weight.grad.dtype == torch.float32
    assert torch.isfinite(out.weight.grad).all() and out.bias.grad.abs().sum() > 0


def test_objective_is_the_mean_token_loss_of_the_model():
    model = tiny_model().eval()
    b = collate([[5, 6, 7], [8, 9]], [[10, 11], [12]], [0, 1])
    logits, _ = model(b.src, b.src_lens, b.tgt_in)
    ref = F.cross_entropy(logits.flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD)
    loss, nll, guided = Objective(model)(b.src, b.src_lens, b.tgt_in, b.tgt_out)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, ref)
    assert guided.item() == 0.0  # no alignments: no guided term
    smoothed, plain, _ = Objective(model, label_smoothing=0.1)(b.src, b.src_lens, b.tgt_in, b.tgt_out)
    torch.testing.assert_close(plain, ref)  # the nll ignores smoothing
    ref_smoothed = F.cross_entropy(logits.flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD, label_smoothing=0.1)
    torch.testing.assert_close(smoothed, ref_smoothed)


def test_precision_names():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    from nmt import precision
    for native, expected in ((True, "bf16"), (False, "fp32")):  # auto follows what the CPU computes natively
        precision._cpu_has_fast_bf16, real = (lambda n=native: n), precision._cpu_has_fast_bf16
        try:
            assert resolve_precision("auto", cpu) == expected
        finally:
            precision._cpu_has_fast_bf16 = real
    assert resolve_precision("fp16", cpu) == "fp16"  # never chosen by auto: only when asked for
    with pytest.raises(ValueError, match="not a valid Precision"):
        resolve_precision("fp8", cpu)



def test_the_loss_keeps_no_logits_for_backward():
    """What the loss keeps for backward is the gradients (rows x size, vocab x size, vocab), never a
    (rows x vocab) tensor: the logits live one chunk at a time."""
    torch.manual_seed(0)
    out = torch.nn.Linear(8, 300)
    feats = torch.randn(2, 40, 8, requires_grad=True)
    target = torch.randint(4, 300, (2, 40))
    loss, _ = loss_and_nll(feats, out, target, 0.1, chunk_rows=16)
    kept = [t for t in loss.grad_fn.next_functions[0][0].grads if t is not None]  # the division's input
    assert sorted(tuple(t.shape) for t in kept) == [(80, 8), (300,), (300, 8)]
    assert not any(300 in t.shape and 80 in t.shape for t in kept)


def test_without_grad_mode_the_loss_computes_no_gradients(monkeypatch):
    """Validation's loss (under no_grad) is the loss alone: the gradient's in-place steps never run,
    though the parameters require gradients."""
    torch.manual_seed(0)
    out = torch.nn.Linear(6, 20)
    feats = torch.randn(2, 5, 6)
    target = torch.randint(4, 20, (2, 5))
    with_grad = loss_and_nll(feats, out, target, 0.1)[0]
    monkeypatch.setattr(torch.Tensor, "scatter_add_", lambda *a, **k: pytest.fail("a gradient was computed"))
    with torch.no_grad():
        loss, nll = loss_and_nll(feats, out, target, 0.1)
    torch.testing.assert_close(loss, with_grad.detach())


def test_the_validation_loss_is_the_per_token_cross_entropy_of_the_model():
    """``valid_loss`` reads the training loss's own nll (chunked, no smoothing): the per-token
    cross-entropy of the gold targets over a whole corpus of several batches."""
    from nmt.data.batching import TokenArrays
    from nmt.data.dataset import EncodedCorpus
    from nmt.training.validation import valid_loss
    torch.manual_seed(0)
    model = tiny_model()
    src = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [6, 6]]
    tgt = [[10, 11], [12], [13, 14, 15], [9, 8, 7]]
    data = EncodedCorpus(TokenArrays.from_lists(src), TokenArrays.from_lists(tgt))
    got = valid_loss(model, data, torch.device("cpu"), max_tokens=6, precision="fp32")
    b = collate(src, tgt, list(range(len(src))))
    model.eval()
    with torch.no_grad():
        logits, _ = model(b.src, b.src_lens, b.tgt_in)
    ref = F.cross_entropy(logits.flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD)
    assert abs(got - ref.item()) < 1e-5


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("bias", [True, False])
def test_the_sampled_softmax_is_its_formula_and_its_gradient(smoothing, bias):
    """Over the sampled columns (each shifted by its log-proposal correction) the loss is (1 - e)
    nll + e (log-normalizer - the *whole* vocabulary's mean logit), and the written-out gradients
    (scattered back to the whole vocabulary, the smoothing's mean included) are that formula's
    gradient: against autograd on it and against finite differences, over several chunks."""
    from nmt.training.loss import LinearCrossEntropy, sample_columns
    torch.manual_seed(2)
    vocab, e = 30, smoothing
    feats = torch.randn(9, 5, dtype=torch.double, requires_grad=True)
    weight = torch.randn(vocab, 5, dtype=torch.double, requires_grad=True)
    b = torch.randn(vocab, dtype=torch.double, requires_grad=True) if bias else None
    target = torch.randint(4, 12, (9,))
    cand, shift, at = sample_columns(target, vocab, 6)
    shift = shift.double()
    params = (feats, weight) if b is None else (feats, weight, b)

    def loss_of(f, w, bb=None):
        return LinearCrossEntropy.apply(f, w, bb, at, e, 4, True, cand, shift)[0]

    logits = feats @ weight[cand].t() + (0 if b is None else b[cand]) + shift  # (rows, columns)
    lse = logits.logsumexp(1)
    nll = lse - logits.gather(1, at[:, None]).squeeze(1)
    mean_logit = (feats @ weight.t() + (0 if b is None else b)).mean(1)  # over the whole vocabulary
    ref = ((1 - e) * nll + e * (lse - mean_logit)).sum()
    torch.testing.assert_close(loss_of(*params), ref)
    for got, want in zip(torch.autograd.grad(loss_of(*params), params), torch.autograd.grad(ref, params)):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(loss_of, params)


def test_sampled_columns_hold_every_target_and_distinct_draws():
    from nmt.training.loss import sample_columns
    torch.manual_seed(3)
    target = torch.tensor([5, 9, 5, 17, 9, 40])
    cand, shift, at = sample_columns(target, 50, 10)
    assert torch.equal(cand[at], target)  # each target reads its own column
    assert cand.unique().numel() == cand.numel() == 4 + 10
    assert torch.equal(cand[:4], torch.tensor([5, 9, 17, 40])) and torch.all(shift[:4] == 0)
    assert torch.allclose(shift[4:], torch.full((10,), math.log(46 / 10)))  # 46 others, 10 drawn
    assert sample_columns(target, 50, 46) is None  # the draw would be the whole vocabulary


def test_the_sampled_normalizer_estimates_the_full_one_without_bias():
    """exp of the log-normalizer over the target's columns and a uniform draw (shifted by
    log(others / samples)) is an unbiased estimate of the full softmax's normalizer."""
    from nmt.training.loss import LinearCrossEntropy, sample_columns
    torch.manual_seed(4)
    vocab = 200
    feats, weight = torch.randn(1, 8, dtype=torch.double), torch.randn(vocab, 8, dtype=torch.double) * 0.5
    target = torch.tensor([7])
    full = (feats @ weight.t()).logsumexp(1).exp().item()
    draws = []
    for _ in range(3000):
        cand, shift, at = sample_columns(target, vocab, 20)
        nll = LinearCrossEntropy.apply(feats, weight, None, at, 0.0, 8, False, cand, shift.double())[1]
        draws.append((nll + feats @ weight[7]).exp().item())  # the estimated normalizer
    draws = torch.tensor(draws)
    assert abs(draws.mean().item() - full) < 4 * draws.std().item() / len(draws) ** 0.5
    assert draws.std().item() > 0  # the draws differ: it is an estimate


def test_sampled_softmax_trains_only_and_covering_the_vocabulary_is_the_full_one():
    torch.manual_seed(5)
    out = torch.nn.Linear(6, 11)
    feats = torch.randn(3, 5, 6, requires_grad=True)
    target = torch.randint(4, 11, (3, 5))
    target[2, 2:] = PAD
    full = loss_and_nll(feats, out, target, 0.1)
    full[0].backward()
    g_full = feats.grad.clone()
    feats.grad = None
    covering = loss_and_nll(feats, out, target, 0.1, softmax_samples=11)  # every other column drawn
    covering[0].backward()
    torch.testing.assert_close(covering[0], full[0])
    torch.testing.assert_close(feats.grad, g_full)
    with torch.no_grad():  # validation: the full softmax whatever the setting
        torch.testing.assert_close(loss_and_nll(feats, out, target, 0.1, softmax_samples=2)[0], full[0])
    sampled = loss_and_nll(feats, out, target, 0.1, softmax_samples=2)[0]
    assert not torch.allclose(sampled, full[0])  # two of the other columns: an estimate
