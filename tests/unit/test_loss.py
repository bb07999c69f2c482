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


def test_the_default_chunks_keep_the_logits_under_mallocs_heap_limit():
    """The default chunking keeps each fp32 logits block under HEAP_BLOCK_MAX (blocks above it are
    mapped fresh by malloc on every update) and still covers every real target once."""
    from nmt.training.loss import HEAP_BLOCK_MAX
    vocab = 40_000  # 160 KB per row: 209 rows per chunk
    out = torch.nn.Linear(4, vocab)
    rows = []
    out.register_forward_hook(lambda _m, args, _o: rows.append(args[0].shape[0]))
    target = torch.randint(4, vocab, (50, 12))
    target[:, 10:] = PAD
    loss_and_nll(torch.randn(50, 12, 4), out, target)
    assert sum(rows) == 500 and len(rows) == 3
    assert max(rows) * vocab * 4 < HEAP_BLOCK_MAX


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_the_written_out_backward_is_the_gradient(smoothing):
    """SmoothedCrossEntropy's hand-written backward against finite differences (double precision),
    with a different upstream gradient per row; the nll output carries no gradient."""
    from nmt.training.loss import SmoothedCrossEntropy
    torch.manual_seed(1)
    logits = torch.randn(7, 13, dtype=torch.double, requires_grad=True)
    target = torch.randint(0, 13, (7,))
    weights = torch.rand(7, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda z: (SmoothedCrossEntropy.apply(z, target, smoothing)[0] * weights).sum(),
                                    (logits,))
    assert torch.autograd.gradcheck(lambda z: SmoothedCrossEntropy.apply(z, target, smoothing)[0].sum() / 3,
                                    (logits,))  # one upstream gradient for every row: the scalar path
    loss, nll = SmoothedCrossEntropy.apply(logits, target, smoothing)
    ref = F.cross_entropy(logits, target, reduction="none", label_smoothing=smoothing)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, F.cross_entropy(logits, target, reduction="none"))
    assert not nll.requires_grad


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

