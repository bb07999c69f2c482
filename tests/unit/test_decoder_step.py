"""One step contract shared by training and search: ``Decoder.features`` (the training step loop)
computes, position by position, what ``step`` (search) computes from the same tokens, for every cell
and attention kind, with and without input feeding, one and two layers, forward (attentional vectors,
logits, attention weights) and backward (every parameter's gradient); and ``step`` is
``step_features`` followed by the output layer."""
import itertools

import pytest
import torch

from .helpers import tiny_model

ALMOST_ONE = 1 - 1e-9  # > every value torch.rand returns: the step loop runs, always on gold tokens


def stepped(model, tgt_in, state, memory):
    """Logits and weights from ``step``, one position at a time (as search calls it)."""
    logits, weights = [], []
    for t in range(tgt_in.size(1)):
        lg, state, w = model.step(tgt_in[:, t], state, memory)
        logits.append(lg)
        weights.append(w)
    return torch.stack(logits, 1), (None if weights[0] is None else torch.stack(weights, 1))


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 30, (3, 6), generator=g)
    src_lens = torch.tensor([6, 4, 2])
    src[1, 4:] = 0
    src[2, 2:] = 0
    return src, src_lens, torch.randint(4, 30, (3, 5), generator=g)


CASES = list(itertools.product(["rnn", "gru", "lstm"], ["none", "final", "bahdanau", "luong_dot", "luong_general"],
                               [True, False], [1, 2]))


@pytest.mark.parametrize("cell,attention,input_feeding,layers", CASES)
def test_training_features_equal_search_steps_forward_and_backward(cell, attention, input_feeding, layers):
    model = tiny_model(cell=cell, attention=attention, input_feeding=input_feeding, dec_layers=layers,
                       bridge="bridge" if attention == "final" else "last")
    model.train()  # dropout is 0 in tiny_model: train mode, deterministic
    src, src_lens, tgt_in = batch()
    grads, outs = [], []
    for path in ("training", "search"):
        model.zero_grad()
        memory, state = model.encode(src, src_lens)
        if path == "training":
            feats, weights = model.decoder.features(tgt_in, state, memory, tf_ratio=ALMOST_ONE)
            logits = model.decoder.output(feats)
        else:
            logits, weights = stepped(model, tgt_in, state, memory)
        probe = torch.linspace(-1, 1, logits.numel()).view_as(logits)
        (logits * probe).sum().backward()
        outs.append((logits.detach(), None if weights is None else weights.detach()))
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=2e-6, rtol=1e-5)
    assert (outs[0][1] is None) == (outs[1][1] is None)
    if outs[1][1] is not None:
        torch.testing.assert_close(outs[0][1], outs[1][1], atol=2e-6, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[1]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_step_is_step_features_then_the_output_layer(cell):
    model = tiny_model(cell=cell, attention="luong_general").eval()
    src, src_lens, tgt_in = batch(1)
    with torch.no_grad():
        memory, state = model.encode(src, src_lens)
        logits, s1, w1 = model.step(tgt_in[:, 0], state, memory)
        feats, s2, w2 = model.decoder.step_features(model.decoder.embed_tokens(tgt_in[:, 0]), state, memory)
    torch.testing.assert_close(logits, model.decoder.output(feats))
    torch.testing.assert_close(w1, w2[:, 0])
    assert all(torch.equal(a, b) for a, b in zip(s1, s2) if a is not None)


def scheduled_stepwise(decoder, tgt_in, state, memory, tf_ratio, feed):
    """Scheduled sampling written as the step loop: at each position after the first, each sequence
    takes the gold token or its own previous prediction (``Decoder._sample_feed``)."""
    emb, outs = decoder.embed_tokens(tgt_in), []
    for t in range(tgt_in.size(1)):
        emb_t = emb[:, t]
        if t > 0:
            gold, pred = decoder._sample_feed(outs[-1], tgt_in, tf_ratio, feed)
            emb_t = torch.where(gold[:, None], emb_t, decoder.embed_tokens(pred))
        attn_h, state, _ = decoder.step_features(emb_t, state, memory)
        outs.append(attn_h)
    return torch.stack(outs, 1)


@pytest.mark.parametrize("cell,input_feeding,feed", [("gru", True, "argmax"), ("lstm", False, "sample"),
                                                     ("rnn", True, "sample")])
def test_scheduled_sampling_equals_the_step_loop(cell, input_feeding, feed):
    """Teacher forcing < 1: the unrolled loop feeds back the same predictions as the step loop (same
    random draws), forward and backward."""
    model = tiny_model(cell=cell, attention="luong_general", input_feeding=input_feeding, dec_layers=2).train()
    src, src_lens, tgt_in = batch(2)
    results = []
    for path in ("unrolled", "stepwise"):
        model.zero_grad()
        torch.manual_seed(7)
        memory, state = model.encode(src, src_lens)
        if path == "unrolled":
            feats, _ = model.decoder.features(tgt_in, state, memory, tf_ratio=0.5, feed=feed)
        else:
            feats = scheduled_stepwise(model.decoder, tgt_in, state, memory, 0.5, feed)
        logits = model.decoder.output(feats)
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
        results.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                          if p.grad is not None}))
    torch.testing.assert_close(results[0][0], results[1][0], atol=2e-6, rtol=1e-5)
    assert results[0][1].keys() == results[1][1].keys()
    for name, grad in results[1][1].items():
        torch.testing.assert_close(results[0][1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_attentional_size_zero_and_bf16_autocast():
    """No attentional layer ([h; c] fed straight on), and the unrolled loop under bf16 autocast (as
    ``train.precision=bf16`` runs it) gives gradients of every parameter's dtype, close to fp32."""
    model = tiny_model(cell="gru", attention="bahdanau", attentional_size=0).train()
    src, src_lens, tgt_in = batch(3)
    memory, state = model.encode(src, src_lens)
    feats, _ = model.decoder.features(tgt_in, state, memory, tf_ratio=ALMOST_ONE)
    torch.testing.assert_close(model.decoder.output(feats), stepped(model, tgt_in, state, memory)[0])
    model = tiny_model(cell="lstm", attention="bahdanau").train()
    grads = []
    for bf16 in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            memory, state = model.encode(src, src_lens)
            feats, _ = model.decoder.features(tgt_in, state, memory)
            loss = model.decoder.output(feats).float().logsumexp(-1).mean()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    for name, grad in grads[0].items():
        assert grads[1][name].dtype == torch.float32
        torch.testing.assert_close(grads[1][name], grad, atol=2e-2, rtol=5e-2, msg=name)
