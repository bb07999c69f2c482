"""Gradient flow through time: the diagnostic measures the phenomenon, not just the plumbing."""
import pytest
import torch

from nmt.config import AttentionConfig, DecoderConfig, EncoderConfig
from nmt.models import build_model
from nmt.training.grad_flow import grad_flow

from .helpers import collate


def copy_batch(n=16, length=30, vocab=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(4, vocab, (length,), generator=g).tolist() for _ in range(n)]
    return collate(seqs, seqs, list(range(n)))


def model(cell, bidirectional=False, attention="none", seed=0):
    torch.manual_seed(seed)
    return build_model(EncoderConfig(cell=cell, embed_size=32, hidden_size=64, bidirectional=bidirectional,
                                     dropout=0.0),
                       AttentionConfig(kind=attention),
                       DecoderConfig(cell=cell, embed_size=32, hidden_size=64, attentional_size=64, dropout=0.0,
                                     input_feeding=False, forget_bias=1.0), 40, 40)


def ratio(curve, far=20, near=1):
    return curve[far] / curve[near]


def test_gradients_vanish_faster_through_a_tanh_rnn_than_through_an_lstm(monkeypatch):
    """Sutskever et al.'s encoder-decoder: the final encoder state (through the bridge) is the only
    route from the source to the loss, so every encoder state's gradient crosses the recurrence.
    (attention=none would add the masked mean of all states, a shortcut to every position.)"""
    from nmt.models.attention import NoAttention
    monkeypatch.setattr(NoAttention, "precompute", lambda self, values, mask: torch.zeros_like(values[:, :1]))
    batch = copy_batch()
    curves = {cell: grad_flow(model(cell), batch)["encoder"] for cell in ("rnn", "gru", "lstm")}
    assert all(len(c) == 31 for c in curves.values())  # distances 0..30 (30 tokens + EOS)
    assert ratio(curves["rnn"]) < ratio(curves["lstm"])
    assert ratio(curves["rnn"]) < 1e-3 * ratio(curves["lstm"])  # orders of magnitude, not noise
    assert ratio(curves["rnn"]) < ratio(curves["gru"]) < ratio(curves["lstm"])
    # vanishing is monotone for the tanh RNN: each step back multiplies by a contraction
    assert all(b < a for a, b in zip(curves["rnn"][1:21], curves["rnn"][2:21]))


def test_recording_changes_nothing_and_covers_both_directions_and_the_decoder():
    m = model("gru", bidirectional=True, attention="bahdanau")
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    batch = copy_batch(n=4, length=7)
    batch.src[0, 5:] = 0  # a shorter sentence: padding must not count
    batch.src[0, 4] = 3
    batch.src_lens[0] = 5
    rng = torch.get_rng_state()
    flow = grad_flow(m, batch)
    assert m.training and torch.equal(rng, torch.get_rng_state())
    assert all(p.grad is None for p in m.parameters())
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    assert len(flow["encoder"]) == 8 and len(flow["decoder"]) == 8
    assert all(v > 0 for v in flow["encoder"]) and all(v > 0 for v in flow["decoder"])
    assert flow["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(
        m.eval()(batch.src, batch.src_lens, batch.tgt_in)[0].flatten(0, 1), batch.tgt_out.flatten(),
        ignore_index=0)), rel=1e-4)


def test_unrolled_encoder_equals_the_fused_one():
    from nmt.training.grad_flow import _unrolled_encoder
    for cell in ("rnn", "gru", "lstm"):
        m = model(cell, bidirectional=True).eval()
        batch = copy_batch(n=3, length=6)
        batch.src[1, 3:] = 0
        batch.src[1, 2] = 3
        batch.src_lens[1] = 3
        fused = m.encoder(batch.src, batch.src_lens)
        unrolled, _ = _unrolled_encoder(m.encoder, batch.src, batch.src_lens)
        torch.testing.assert_close(unrolled.outputs, fused.outputs, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(unrolled.final_h, fused.final_h, atol=1e-5, rtol=1e-4)
