import pytest
import torch

from nmt.models.attention import build_attention


@pytest.mark.parametrize("kind", ["bahdanau", "luong_dot", "luong_general"])
@pytest.mark.parametrize("tgt_len", [1, 4])
def test_weights_sum_to_one_and_are_zero_on_padding(kind, tgt_len):
    torch.manual_seed(0)
    att = build_attention(kind, query_size=6, memory_size=6, hidden_size=5)
    values = torch.randn(3, 7, 6)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=torch.bool)
    keys = att.precompute(values, mask)
    context, w = att(torch.randn(3, tgt_len, 6), keys, values, mask)
    assert context.shape == (3, tgt_len, 6) and w.shape == (3, tgt_len, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, tgt_len))
    assert torch.all(w[1, :, 4:] == 0) and torch.all(w[2, :, 2:] == 0)


def test_bahdanau_keys_are_projected_once_per_batch():
    """The key projection runs in ``precompute`` (once per batch), never in a decoding step."""
    att = build_attention("bahdanau", 6, 10, hidden_size=5)
    calls = []
    att.key_proj.register_forward_hook(lambda *a: calls.append(1))
    values, mask = torch.randn(2, 7, 10), torch.ones(2, 7, dtype=torch.bool)
    keys = att.precompute(values, mask)
    assert keys.shape == (2, 7, 5) and len(calls) == 1
    torch.testing.assert_close(keys, 2 * att.key_proj(values))  # see BahdanauAttention
    for _ in range(4):  # four decoding steps reuse the keys
        att(torch.randn(2, 1, 6), keys, values, mask)
    assert len(calls) == 2  # the one above, for the comparison


def test_bahdanau_weights_are_those_of_the_tanh_form():
    """The sigmoid form gives the weights of softmax(v^T tanh(W_q q + W_k m_j)), forward and backward."""
    torch.manual_seed(0)
    att = build_attention("bahdanau", 6, 10, hidden_size=5)
    values = torch.randn(3, 7, 10, requires_grad=True)
    query = torch.randn(3, 4, 6, requires_grad=True)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=torch.bool)
    _, w = att(query, att.precompute(values, mask), values, mask)
    energy = torch.tanh(att.query_proj(query).unsqueeze(2) + att.key_proj(values).unsqueeze(1))
    scores = att.v(energy).squeeze(-1).masked_fill(~mask[:, None, :], float("-inf"))
    reference = torch.softmax(scores, -1)
    torch.testing.assert_close(w, reference)
    g = torch.randn_like(w)
    got = torch.autograd.grad((w * g).sum(), (query, values))
    want = torch.autograd.grad((reference * g).sum(), (query, values))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_no_attention_is_the_masked_mean():
    att = build_attention("none", 6, 4)
    values = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1] * 5], dtype=torch.bool)
    context, w = att(torch.randn(2, 3, 6), att.precompute(values, mask), values, mask)
    assert w is None and context.shape == (2, 3, 4)
    torch.testing.assert_close(context[0, 0], values[0, :3].mean(0))


def test_final_gives_no_context_and_the_source_reaches_the_decoder_only_through_the_bridge():
    att = build_attention("final", 6, 4)
    values = torch.randn(2, 5, 4, requires_grad=True)
    mask = torch.ones(2, 5, dtype=torch.bool)
    context, w = att(torch.randn(2, 3, 6), att.precompute(values, mask), values, mask)
    assert w is None and context.shape == (2, 3, 4) and not context.any()
    # In a whole model, the loss gradient reaches the first source embedding only through the recurrence
    from .helpers import tiny_model
    for bridge in ("last", "bridge"):
        model = tiny_model("rnn", attention="final", input_feeding=False, bidirectional=False, bridge=bridge)
        src, lens = torch.tensor([[4, 5, 6, 7, 3]]), torch.tensor([5])
        logits, weights = model(src, lens, torch.tensor([[2, 8, 9]]))
        assert weights is None
        logits.sum().backward()
        grads = [p.grad for name, p in model.named_parameters() if name.startswith("encoder.")]
        assert all(g is not None for g in grads) and grads[0][4].abs().sum() > 0  # through recurrence and bridge


def test_final_needs_a_bridge():
    from nmt.config import Config, validate
    from nmt.errors import ConfigError
    cfg = Config()
    cfg.attention.kind, cfg.decoder.bridge = "final", "zeros"
    with pytest.raises(ConfigError, match="decoder.bridge"):
        validate(cfg)


def test_luong_dot_size_mismatch_and_unknown_kind():
    with pytest.raises(ValueError, match="luong_dot"):
        build_attention("luong_dot", 6, 8)
    with pytest.raises(ValueError, match="not a valid AttentionKind"):
        build_attention("transformer", 6, 6)
