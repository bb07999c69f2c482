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
