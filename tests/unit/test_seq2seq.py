import itertools

import pytest
import torch

from nmt.data.spm import PAD
from nmt.models.seq2seq import count_parameters

from .helpers import collate, tiny_model

ATTENTIONS = ["final", "none", "bahdanau", "luong_dot", "luong_general"]
CELLS = ["rnn", "gru", "lstm"]


def batch(seed=0, vocab=30):
    g = torch.Generator().manual_seed(seed)
    src = [torch.randint(4, vocab, (n,), generator=g).tolist() for n in (6, 3, 5)]
    tgt = [torch.randint(4, vocab, (n,), generator=g).tolist() for n in (4, 7, 2)]
    return collate(src, tgt, [0, 1, 2])


@pytest.mark.parametrize("cell,attention,input_feeding,bidirectional",
                         list(itertools.product(CELLS, ATTENTIONS, [True, False], [True, False])))
def test_shapes_for_every_combination(cell, attention, input_feeding, bidirectional):
    model = tiny_model(cell=cell, attention=attention, input_feeding=input_feeding, bidirectional=bidirectional)
    b = batch()
    logits, weights = model(b.src, b.src_lens, b.tgt_in)
    assert logits.shape == (3, b.tgt_in.size(1), 30)
    if attention in ("none", "final"):
        assert weights is None
    else:
        assert weights.shape == (3, b.tgt_in.size(1), b.src.size(1))
    memory, state = model.encode(b.src, b.src_lens)
    step_logits, state, w = model.step(b.tgt_in[:, 0], state, memory)
    assert step_logits.shape == (3, 30) and state.h.shape[1] == 3


@pytest.mark.parametrize("cell,attention", list(itertools.product(CELLS, ATTENTIONS)))
@torch.no_grad()
def test_fast_path_equals_step_path(cell, attention):
    model = tiny_model(cell=cell, attention=attention, input_feeding=False).eval()
    b = batch()
    fast, _ = model(b.src, b.src_lens, b.tgt_in)
    memory, state = model.encode(b.src, b.src_lens)
    steps = []
    for t in range(b.tgt_in.size(1)):
        logits, state, _ = model.step(b.tgt_in[:, t], state, memory)
        steps.append(logits)
    slow = torch.stack(steps, 1)
    loss = lambda x: torch.nn.functional.cross_entropy(x.flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD)
    assert abs(float(loss(fast)) - float(loss(slow))) < 1e-5
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell,attention,input_feeding",
                         [("gru", "bahdanau", True), ("lstm", "luong_general", False), ("rnn", "none", True)])
def test_padding_invariance_of_log_probs(cell, attention, input_feeding):
    model = tiny_model(cell=cell, attention=attention, input_feeding=input_feeding, layers=2, dec_layers=2).eval()
    b = batch(seed=1)
    full = torch.log_softmax(model(b.src, b.src_lens, b.tgt_in)[0], -1)
    for i in range(3):
        n_src, n_tgt = int(b.src_lens[i]), int((b.tgt_out[i] != PAD).sum())
        alone = torch.log_softmax(model(b.src[i:i + 1, :n_src], b.src_lens[i:i + 1], b.tgt_in[i:i + 1, :n_tgt])[0], -1)
        torch.testing.assert_close(full[i, :n_tgt], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell,attention,input_feeding,tf",
                         [("gru", "bahdanau", True, 1.0), ("lstm", "luong_general", False, 1.0),
                          ("gru", "luong_dot", False, 0.5), ("rnn", "bahdanau", True, 0.0)])
def test_gradients_reach_every_parameter(cell, attention, input_feeding, tf):
    model = tiny_model(cell=cell, enc_cell="lstm", attention=attention, input_feeding=input_feeding, dropout=0.1)
    b = batch()
    logits, _ = model(b.src, b.src_lens, b.tgt_in, tf_ratio=tf)
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_teacher_forcing_zero_feeds_predictions():
    model = tiny_model(input_feeding=False).eval()
    b = batch()
    gold, _ = model(b.src, b.src_lens, b.tgt_in, tf_ratio=1.0)
    free, _ = model(b.src, b.src_lens, b.tgt_in, tf_ratio=0.0)
    torch.testing.assert_close(gold[:, 0], free[:, 0])  # the first step always sees BOS
    assert not torch.allclose(gold[:, 1:], free[:, 1:])
    torch.manual_seed(0)
    sampled, _ = model(b.src, b.src_lens, b.tgt_in, tf_ratio=0.0, feed="sample")
    assert sampled.shape == gold.shape


def test_tied_embeddings_share_the_weight_and_check_sizes():
    model = tiny_model(tie=True)
    assert model.decoder.output.weight is model.decoder.embed.weight
    shared = model.decoder.embed.weight
    every_use = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert count_parameters(model) == every_use - shared.numel()  # the tied matrix is counted once
    from nmt.config import AttentionConfig, DecoderConfig, EncoderConfig
    from nmt.models import build_model
    with pytest.raises(ValueError, match="tie_embeddings"):
        build_model(EncoderConfig(), AttentionConfig(), DecoderConfig(embed_size=8, attentional_size=16,
                                                                      tie_embeddings=True), 20, 20)


@pytest.mark.parametrize("init", ["uniform", "xavier", "orthogonal"])
def test_initialisation_and_forget_bias(init):
    model = tiny_model(cell="lstm", init=init)
    rnn = model.decoder.rnn
    h = rnn.hidden_size
    assert torch.all(rnn.bias_ih_l0[h:2 * h] == 1.0) and torch.all(rnn.bias_hh_l0[h:2 * h] == 0.0)
    assert torch.all(model.encoder.embed.weight[PAD] == 0)
    if init == "orthogonal":
        block = rnn.weight_hh_l0[:h]
        torch.testing.assert_close(block @ block.T, torch.eye(h), atol=1e-5, rtol=0)


def test_tiny_model_overfits_20_pairs():
    torch.manual_seed(0)
    model = tiny_model(cell="gru", attention="luong_general", input_feeding=False, attentional_size=32)
    g = torch.Generator().manual_seed(3)
    src = [torch.randint(4, 30, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g).tolist() for _ in range(20)]
    tgt = [list(reversed(s)) for s in src]
    b = collate(src, tgt, list(range(20)))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        logits, _ = model(b.src, b.src_lens, b.tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD)
        loss.backward()
        opt.step()
        if loss.item() < 0.1:
            break
    assert loss.item() < 0.1
