"""Gradient flow through time: how the loss gradient reaching each hidden state falls (vanishes) or
grows (explodes) with its distance from where the state is read.

The fused RNN kernels do not expose the hidden state at every position as a tensor of the graph
(the recurrence happens inside one op), so this diagnostic re-runs the encoder step by step with
the same weights (``torch.func.functional_call`` on an ``nn.*Cell``): the gradient with respect to
``h_t`` is then the *total* derivative, through the recurrence and through attention. The decoder
already runs step by step. Dropout is off and parameter gradients are untouched, so recording does
not change training.

Distances: an encoder state of the forward direction counts from the end of its sentence (where
the final state is read), a backward-direction state from the start; a decoder state from the end
of its target. Each curve is the mean over sentences of ||dLoss/dh|| at each distance (top layer).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..config import Cell
from ..data.batching import Batch
from ..data.spm import PAD
from ..models.decoder import Memory
from ..models.encoder import EncoderOutput

_CELLS = {Cell.rnn: nn.RNNCell, Cell.gru: nn.GRUCell, Cell.lstm: nn.LSTMCell}


def _run_direction(rnn: nn.RNNBase, cell_kind: Cell, suffix: str, x: torch.Tensor, lens: torch.Tensor,
                   reverse: bool) -> Tuple[List[torch.Tensor], torch.Tensor, Optional[torch.Tensor]]:
    """One direction of one layer, position by position. x: (batch, src_len, input).

    Returns the states h_t (src_len tensors of (batch, hidden); past a forward sentence's end they
    hold its last state, masked out of the outputs), the final h and c."""
    kw = {"nonlinearity": rnn.nonlinearity} if cell_kind is Cell.rnn else {}
    cell = _CELLS[cell_kind](rnn.input_size, rnn.hidden_size, bias=rnn.bias, device="meta", **kw)
    params = {name: getattr(rnn, f"{name}_l0{suffix}") for name, _ in cell.named_parameters()}
    batch, length = x.size(0), x.size(1)
    h = x.new_zeros(batch, rnn.hidden_size)
    c = x.new_zeros(batch, rnn.hidden_size) if cell_kind is Cell.lstm else None
    states: List[Optional[torch.Tensor]] = [None] * length
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        real = (t < lens).to(x.device)[:, None]  # (batch, 1)
        if cell_kind is Cell.lstm:
            h_new, c_new = functional_call(cell, params, (x[:, t], (h, c)))
            c = torch.where(real, c_new, cast(torch.Tensor, c))
        else:
            h_new = functional_call(cell, params, (x[:, t], h))
        h = torch.where(real, h_new, h)
        states[t] = h  # the tensor the next step reads: its gradient is the total one
    return cast(List[torch.Tensor], states), h, c


def _unrolled_encoder(encoder, src: torch.Tensor, src_lens: torch.Tensor):
    """The encoder's computation (eval mode) with every top-layer state as a graph tensor.

    Returns EncoderOutput and the top layer's states per direction: [(states, reverse), ...]."""
    x = encoder.embed_source(src)  # (batch, src_len, input)
    finals_h: List[torch.Tensor] = []
    finals_c: List[torch.Tensor] = []
    top: List[Tuple[List[torch.Tensor], bool]] = []
    for i, rnn in enumerate(encoder.layers):
        outs, hs, cs, top = [], [], [], []
        for suffix, reverse in (("", False), ("_reverse", True))[: encoder.directions]:
            states, h, c = _run_direction(rnn, encoder.cell, suffix, x, src_lens, reverse)
            real = (torch.arange(x.size(1))[None, :] < src_lens[:, None]).to(x.device)  # (batch, src_len)
            outs.append(torch.stack(states, dim=1) * real[..., None])  # (batch, src_len, hidden), zero at padding
            hs.append(h)
            cs.append(c)
            top.append((states, reverse))
        out = torch.cat(outs, dim=-1)  # (batch, src_len, directions*hidden)
        if encoder.residual and i > 0:
            out = out + x
        finals_h.append(torch.cat(hs, dim=-1))
        if cs[0] is not None:
            finals_c.append(torch.cat(cast(List[torch.Tensor], cs), dim=-1))
        x = out
    return EncoderOutput(x, torch.stack(finals_h), torch.stack(finals_c) if finals_c else None), top


def _curve(norms: torch.Tensor, distance: torch.Tensor, real: torch.Tensor) -> List[float]:
    """Mean of ``norms`` at each distance 0..max over the ``real`` positions; all (batch, len)."""
    d = distance[real]
    n = norms[real].double()
    size = int(d.max()) + 1 if d.numel() else 0
    total = torch.zeros(size, dtype=torch.float64).index_add_(0, d, n)
    count = torch.zeros(size, dtype=torch.float64).index_add_(0, d, torch.ones_like(n))
    return (total / count.clamp(min=1)).tolist()


def _add(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return b if a is None else a if b is None else a + b


def _decoder_steps(decoder, tgt_in: torch.Tensor, state, memory: Memory):
    """The decoder's teacher-forced step loop (``Decoder.step_features`` through its public halves,
    ``recur`` and ``attend``), keeping per step the cell's output (batch, 1, hidden) and the new state
    h (layers, batch, hidden) as graph tensors."""
    outs, hs, logits = [], [], []
    for t in range(tgt_in.size(1)):
        emb = decoder.embed_tokens(tgt_in[:, t])  # (batch, embed); eval mode: no dropout
        x = torch.cat([emb, state.feed], dim=-1) if decoder.input_feeding else emb
        out, h, c = decoder.recur(x.unsqueeze(1), state)  # out: (batch, 1, hidden)
        attn_h, _ = decoder.attend(out, memory)
        attn_h = attn_h.squeeze(1)  # (batch, output_size)
        state = type(state)(h, c, attn_h if decoder.input_feeding else None)
        outs.append(out)  # the tensor attention reads (a view of it would get no gradient)
        hs.append(h)
        logits.append(decoder.output(attn_h))
    return outs, hs, torch.stack(logits, dim=1)  # logits: (batch, tgt_len, vocab)


def grad_flow(model, batch: Batch, label_smoothing: float = 0.0) -> Dict[str, Any]:
    """{"encoder": [mean ||dL/dh|| at distance 0, 1, ...], "decoder": [...], "loss": float}."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            src, src_lens = batch.src, batch.src_lens
            enc, top = _unrolled_encoder(model.encoder, src, src_lens)
            memory, state = model.start(enc, src_lens)
            outs, hs, logits = _decoder_steps(model.decoder, batch.tgt_in, state, memory)
            loss = F.cross_entropy(logits.float().flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD,
                                   label_smoothing=label_smoothing)
            enc_states = [s for states, _ in top for s in states]
            grads = torch.autograd.grad(loss, enc_states + outs + hs, allow_unused=True)
    finally:
        model.train(was_training)
    n_enc, n_dec = len(enc_states), len(outs)
    # The top layer's state reaches the loss through the step's output (attention, softmax) and
    # through the next step: the total gradient is the sum of both partial ones.
    dec_g = [_add(None if grads[n_enc + t] is None else grads[n_enc + t][:, 0],
                  None if grads[n_enc + n_dec + t] is None else grads[n_enc + n_dec + t][-1]) for t in range(n_dec)]
    lens = src_lens.to(src.device)
    pos = torch.arange(src.size(1), device=src.device)[None, :].expand(src.size(0), -1)  # (batch, src_len)
    enc_norms, enc_dist, enc_real = [], [], []
    for k, (states, reverse) in enumerate(top):
        g = [grads[k * len(states) + t] for t in range(len(states))]
        norms = torch.stack([x.norm(dim=-1) if x is not None else torch.zeros_like(lens, dtype=torch.float)
                             for x in g], dim=1)  # (batch, src_len)
        enc_norms.append(norms)
        enc_dist.append(pos if reverse else (lens[:, None] - 1 - pos))
        enc_real.append(pos < lens[:, None])
    dec_norms = torch.stack([x.norm(dim=-1) if x is not None else torch.zeros(src.size(0)) for x in dec_g], dim=1)
    tgt_lens = (batch.tgt_out != PAD).sum(1)
    tpos = torch.arange(batch.tgt_out.size(1), device=src.device)[None, :].expand_as(batch.tgt_out)
    return {"encoder": _curve(torch.cat(enc_norms, 1), torch.cat(enc_dist, 1), torch.cat(enc_real, 1)),
            "decoder": _curve(dec_norms, tgt_lens[:, None] - 1 - tpos, tpos < tgt_lens[:, None]),
            "loss": float(loss.detach())}
