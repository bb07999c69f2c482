"""The decoder unrolled over a whole target for training: the step contract (``Decoder.step_features``)
computed position by position, arranged for speed on CPU (tested equal to the step, forward and
backward, for every cell and attention kind, with and without input feeding).

What the step loop pays that this one does not:

* **Weight gradients one step at a time.** Autograd computes each per-step linear layer's weight
  gradient as a rank-64 update (batch rows) and adds it into the gradient buffer, once per step.
  Here the cell's input and hidden projections and the attentional layer are ``StepLinear``s: their
  backward returns only the input gradient and keeps the step's (input, output gradient) pair; the
  weight gradient of all steps is one large GEMM at the end (as cuDNN's RNNs do).
* **The embedding half of the first layer's input projection, per step.** It is one GEMM over all
  target positions before the loop; the step adds only the input-feeding half.
* **Per-step slices of whole-target tensors**, whose backward writes a zero-filled copy of the whole
  tensor at every step: the inputs are split once (``unbind``), whose backward stacks once.

The cell is written out (the equations of ``nn.RNN``, ``nn.GRU``, ``nn.LSTM``, with their own
weights, so checkpoints and the step are unchanged); the attention and the attentional layer are the
decoder's own modules. Inter-layer dropout draws the same masks the step's recurrent module would.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, cast

import torch
from torch import nn

from ..config import Feed


class _Pairs:
    """The (input, output gradient) pairs of one weight's steps, gathered during backward."""

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor]):
        self.weight, self.bias = weight.detach(), None if bias is None else bias.detach()
        self.inputs: List[torch.Tensor] = []
        self.grads: List[torch.Tensor] = []


class _Gather(torch.autograd.Function):
    """The node through which a weight's gradient reaches it: its output (a scalar token) is an input
    of every step, so its backward runs after all of theirs and computes the weight gradient of all
    steps as one GEMM."""

    @staticmethod
    def forward(ctx, weight, bias, pairs):
        ctx.pairs, ctx.has_bias = pairs, bias is not None
        return weight.new_zeros(())

    @staticmethod
    def backward(ctx, _):
        pairs = ctx.pairs
        if not pairs.grads:
            return None, None, None
        x, gy = torch.cat(pairs.inputs), torch.cat(pairs.grads)  # (steps * batch, in), (steps * batch, out)
        pairs.inputs.clear()
        pairs.grads.clear()
        grad_w = gy.t().mm(x.to(gy.dtype))  # (out, in)
        return grad_w, (gy.sum(0) if ctx.has_bias else None), None


class _StepLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, token, pairs):
        ctx.save_for_backward(x)
        ctx.pairs = pairs
        w = pairs.weight.to(x.dtype)
        return x.mm(w.t()) if pairs.bias is None else torch.addmm(pairs.bias.to(x.dtype), x, w.t())

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        ctx.pairs.inputs.append(x)
        ctx.pairs.grads.append(gy)
        return gy.mm(ctx.pairs.weight.to(gy.dtype)), torch.zeros((), dtype=gy.dtype, device=gy.device), None


class StepLinear:
    """``y = x W^T + b`` called once per step; the weight gradient of all calls comes as one GEMM."""

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor] = None):
        self.pairs = _Pairs(weight, bias)
        self.token = _Gather.apply(weight, bias, self.pairs) if torch.is_grad_enabled() else None
        self.weight, self.bias = weight, bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.token is None:  # no gradient wanted: a plain linear
            return nn.functional.linear(x, self.weight.to(x.dtype), None if self.bias is None else
                                        self.bias.to(x.dtype))
        return _StepLinear.apply(x, self.token, self.pairs)


class _Layer:
    """One recurrent layer's step: ``gates_in`` (batch, gates) holds the input projection (with its
    bias), ``hx`` the state before the step."""

    def __init__(self, rnn: nn.Module, layer: int, first_input_size: int):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}", None), getattr(rnn, f"bias_hh_l{layer}", None)
        self.kind = type(rnn).__name__  # RNN, GRU, LSTM
        self.nonlinearity = getattr(rnn, "nonlinearity", "tanh")
        # the part of the input projected per step: the input-feeding half on layer 0, all of it above
        per_step = w_ih[:, first_input_size:] if layer == 0 else w_ih
        self.input = StepLinear(per_step, None if layer == 0 else b_ih) if per_step.size(1) else None
        self.hidden = StepLinear(w_hh, b_hh)

    def step(self, gates_in: torch.Tensor, x: Optional[torch.Tensor], h, c):
        gi = gates_in if self.input is None or x is None else gates_in + self.input(x)  # (batch, gates)
        gh = self.hidden(h)  # (batch, gates)
        if self.kind == "GRU":
            i_r, i_z, i_n = gi.chunk(3, 1)
            h_r, h_z, h_n = gh.chunk(3, 1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            return n + z * (h - n), None  # (1 - z) n + z h
        if self.kind == "LSTM":
            i, f, g, o = (gi + gh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c
        pre = gi + gh
        return (torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)), None


def unrolled_features(decoder, tgt_in: torch.Tensor, state, memory, tf_ratio: float = 1.0,
                      feed: Feed = Feed.argmax) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``Decoder.features`` for the step loop's cases (input feeding, or teacher forcing < 1).

    tgt_in: (batch, tgt_len) -> attentional vectors (batch, tgt_len, output_size) and attention
    weights (batch, tgt_len, src_len) or None."""
    rnn = decoder.rnn
    emb = decoder.embed_tokens(tgt_in)  # (batch, tgt_len, embed)
    embed_size = emb.size(-1)
    w_ih0, b_ih0 = rnn.weight_ih_l0, getattr(rnn, "bias_ih_l0", None)
    w_emb = w_ih0[:, :embed_size]  # (gates, embed): the embedding half of layer 0's input projection
    gates_emb = nn.functional.linear(emb, w_emb.to(emb.dtype), None if b_ih0 is None else b_ih0.to(emb.dtype))
    # gates_emb: (batch, tgt_len, gates), all positions in one GEMM
    layers = [_Layer(rnn, k, embed_size) for k in range(rnn.num_layers)]
    sampled = StepLinear(w_emb, b_ih0) if tf_ratio < 1.0 else None  # embedding half for fed-back predictions
    attentional = StepLinear(decoder.attentional.weight) if decoder.attentional is not None else None
    hs = list(state.h.unbind(0))  # per layer (batch, hidden)
    cs = list(state.c.unbind(0)) if state.c is not None else [None] * len(hs)
    last = state.feed
    outputs: List[torch.Tensor] = []
    all_weights: List[Optional[torch.Tensor]] = []
    for t, gates_t in enumerate(gates_emb.unbind(1)):
        if sampled is not None and t > 0:
            gold, pred = decoder._sample_feed(outputs[-1], tgt_in, tf_ratio, feed)
            gates_t = torch.where(gold[:, None], gates_t, sampled(decoder.embed_tokens(pred)))
        hs[0], cs[0] = layers[0].step(gates_t, last, hs[0], cs[0])
        for k in range(1, len(layers)):
            below = nn.functional.dropout(hs[k - 1], rnn.dropout, decoder.training)  # between layers
            project = layers[k].input
            assert project is not None  # a layer above the first projects all of its input per step
            hs[k], cs[k] = layers[k].step(project(below), None, hs[k], cs[k])
        out = hs[-1].unsqueeze(1)  # (batch, 1, hidden)
        context, weights = decoder.attention(out, memory.keys, memory.values, memory.mask)
        combined = torch.cat([out, context], dim=-1).squeeze(1)  # (batch, hidden + memory)
        if attentional is not None:
            combined = torch.tanh(attentional(combined))
        attn_h = decoder.dropout(combined)  # (batch, output_size)
        last = attn_h if decoder.input_feeding else None
        outputs.append(attn_h)
        all_weights.append(weights)
    weights = None if all_weights[0] is None else torch.cat(cast(List[torch.Tensor], all_weights), dim=1)
    # weights: (batch, tgt_len, src_len)
    return torch.stack(outputs, dim=1), weights
