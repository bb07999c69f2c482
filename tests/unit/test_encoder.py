import itertools

import pytest
import torch

from nmt.models.encoder import Bridge, Encoder


@pytest.mark.parametrize("cell,bidirectional,layers,residual",
                         list(itertools.product(["rnn", "gru", "lstm"], [True, False], [1, 2], [False, True])))
def test_shapes(cell, bidirectional, layers, residual):
    enc = Encoder(50, 0, cell=cell, embed_size=8, hidden_size=6, num_layers=layers,
                  bidirectional=bidirectional, dropout=0.1, residual=residual)
    src = torch.randint(4, 50, (3, 7))
    lens = torch.tensor([7, 4, 2])
    src[1, 4:] = 0
    src[2, 2:] = 0
    out = enc(src, lens)
    d = 2 if bidirectional else 1
    assert out.outputs.shape == (3, 7, 6 * d) and enc.output_size == 6 * d
    assert out.final_h.shape == (layers, 3, 6 * d)
    assert (out.final_c is not None) == (cell == "lstm")
    assert torch.all(out.outputs[1, 4:] == 0) and torch.all(out.outputs[2, 2:] == 0)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_padding_invariance(cell):
    torch.manual_seed(0)
    enc = Encoder(50, 0, cell=cell, embed_size=8, hidden_size=6, num_layers=2, bidirectional=True).eval()
    sent = torch.randint(4, 50, (1, 5))
    alone = enc(sent, torch.tensor([5]))
    batch = torch.zeros(3, 9, dtype=torch.long)
    batch[0] = torch.randint(4, 50, (9,))
    batch[1, :5] = sent[0]
    batch[2, :3] = torch.randint(4, 50, (3,))
    inside = enc(batch, torch.tensor([9, 5, 3]))
    torch.testing.assert_close(inside.outputs[1, :5], alone.outputs[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(inside.final_h[:, 1], alone.final_h[:, 0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["zeros", "last", "bridge"])
@pytest.mark.parametrize("enc_cell,dec_cell,dec_layers", [("gru", "lstm", 2), ("lstm", "gru", 1), ("lstm", "lstm", 3)])
def test_bridge_handles_mismatched_sides(kind, enc_cell, dec_cell, dec_layers):
    enc = Encoder(30, 0, cell=enc_cell, embed_size=4, hidden_size=5, num_layers=2, bidirectional=True)
    out = enc(torch.randint(4, 30, (2, 6)), torch.tensor([6, 3]))
    bridge = Bridge(kind, enc.output_size, 7, dec_layers, enc_cell == "lstm", dec_cell == "lstm")
    h, c = bridge(out)
    assert h.shape == (dec_layers, 2, 7)
    assert (c is not None) == (dec_cell == "lstm")
    if c is not None:
        assert c.shape == (dec_layers, 2, 7)
    if kind == "zeros":
        assert torch.all(h == 0)
    if kind == "bridge":
        assert h.abs().max() <= 1.0


def test_unknown_bridge_and_cell_are_refused():
    with pytest.raises(ValueError, match="not a valid BridgeKind"):
        Bridge("copy", 4, 4, 1, False, False)
    with pytest.raises(ValueError, match="not a valid Cell"):
        Encoder(10, 0, cell="transformer")
