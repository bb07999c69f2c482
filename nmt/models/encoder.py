"""Recurrent encoder over packed sequences, and the bridge to the decoder's initial state."""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import BridgeKind, Cell, FactorCombine
from .rnn import make_rnn


class EncoderOutput(NamedTuple):
    outputs: torch.Tensor  # (batch, src_len, output_size), zero at padding
    final_h: torch.Tensor  # (num_layers, batch, directions*hidden): last state of each layer
    final_c: Optional[torch.Tensor]  # same shape, LSTM cell state; None for RNN/GRU


class Encoder(nn.Module):
    """Embedding, then ``num_layers`` recurrent layers (optionally bidirectional and residual).

    Layers run one by one on the packed sequence, so padding never enters the recurrence and
    dropout and residual connections (layer 2 upward) apply between them without unpacking.

    With source factors (``factor_vocab_sizes``: one vocabulary size per factor), a source is
    (batch, src_len, 1 + factors) ids and each factor has its own embedding, concatenated after the
    piece embedding (``factor_embed_size`` each) or added to it (``factor_combine=sum``).
    """

    def __init__(self, vocab_size: int, pad_id: int, cell: Cell = Cell.gru, embed_size: int = 256,
                 hidden_size: int = 256, num_layers: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0, residual: bool = False, factor_embed_size: int = 16,
                 factor_combine: FactorCombine = FactorCombine.concat, factor_vocab_sizes: Sequence[int] = ()):
        super().__init__()
        self.cell, self.num_layers, self.residual = Cell(cell), num_layers, residual
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.factor_sum = FactorCombine(factor_combine) is FactorCombine.sum
        factor_size = embed_size if self.factor_sum else factor_embed_size
        self.factor_embeds = nn.ModuleList(nn.Embedding(n, factor_size, padding_idx=pad_id)
                                           for n in factor_vocab_sizes)
        input_size = embed_size + (0 if self.factor_sum else factor_size * len(factor_vocab_sizes))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            make_rnn(cell, input_size if i == 0 else self.output_size, hidden_size, bidirectional=bidirectional)
            for i in range(num_layers))

    def embed_source(self, src: torch.Tensor) -> torch.Tensor:
        """(batch, src_len, input size) embeddings of ``src``: (batch, src_len) ids, or (batch, src_len,
        1 + factors) ids with factors."""
        factors = src.size(2) - 1 if src.dim() == 3 else 0
        if factors != len(self.factor_embeds):
            raise ValueError(f"the source carries {factors} factors per piece but the model reads "
                             f"{len(self.factor_embeds)}")
        if not factors:
            return self.embed(src)
        parts = [self.embed(src[..., 0])] + [e(src[..., k + 1]) for k, e in enumerate(self.factor_embeds)]
        return torch.stack(parts).sum(0) if self.factor_sum else torch.cat(parts, dim=-1)

    def forward(self, src: torch.Tensor, src_lens: torch.Tensor) -> EncoderOutput:
        """src: (batch, src_len) ids (or (batch, src_len, 1 + factors)); src_lens: (batch,) lengths on CPU."""
        emb = self.dropout(self.embed_source(src))  # (batch, src_len, input)
        x = pack_padded_sequence(emb, src_lens.cpu(), batch_first=True, enforce_sorted=False)
        finals = []
        for i, rnn in enumerate(self.layers):
            if i > 0:
                x = x._replace(data=self.dropout(x.data))
            out, state = rnn(x)
            if self.residual and i > 0:
                out = out._replace(data=out.data + x.data)
            finals.append(state)
            x = out
        outputs, _ = pad_packed_sequence(x, batch_first=True, total_length=src.size(1))
        return self._output(outputs, finals)  # outputs: (batch, src_len, directions*hidden)

    def padded_forward(self, src: torch.Tensor, src_lens: torch.Tensor) -> EncoderOutput:
        """``forward`` with each layer packed and unpacked around its RNN, residual sums taken on the
        padded outputs (zero at padding either way): the same numbers (tested), in the pack/unpack
        pairs the ONNX exporter turns into recurrent ops with sequence lengths (``nmt-export``)."""
        x = self.dropout(self.embed_source(src))  # (batch, src_len, input)
        finals = []
        for i, rnn in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            out, state = rnn(pack_padded_sequence(x, src_lens, batch_first=True, enforce_sorted=False))
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (batch, src_len, out)
            x = out + x if self.residual and i > 0 else out
            finals.append(state)
        return self._output(x, finals)

    @staticmethod
    def _output(outputs: torch.Tensor, finals) -> EncoderOutput:
        """The outputs and every layer's last state: h (and c for an LSTM), each (directions, batch,
        hidden), to (num_layers, batch, directions*hidden)."""
        pairs = [state if isinstance(state, tuple) else (state, None) for state in finals]
        final_h = torch.stack([torch.cat(list(h), dim=-1) for h, _ in pairs])
        final_c = torch.stack([torch.cat(list(c), dim=-1) for _, c in pairs]) if pairs[0][1] is not None else None
        return EncoderOutput(outputs, final_h, final_c)


class Bridge(nn.Module):
    """Maps the encoder's top-layer final state to the decoder's initial (h, c).

    ``zeros``: zero state. ``last``: the final state (directions concatenated), linearly
    projected to every decoder layer. ``bridge``: the same projection followed by tanh.
    Works whatever the two sides' cells, layer counts and sizes: an LSTM decoder gets its cell
    state from the encoder's cell state if the encoder is an LSTM, else zeros.
    """

    def __init__(self, kind: BridgeKind, encoder_size: int, decoder_size: int, decoder_layers: int,
                 encoder_lstm: bool, decoder_lstm: bool):
        super().__init__()
        kind = BridgeKind(kind)
        self.kind, self.size, self.layers, self.decoder_lstm = kind, decoder_size, decoder_layers, decoder_lstm
        out = decoder_size * decoder_layers
        projected = kind is not BridgeKind.zeros
        self.proj_h = nn.Linear(encoder_size, out) if projected else None
        self.proj_c = nn.Linear(encoder_size, out) if projected and encoder_lstm and decoder_lstm else None

    def _map(self, proj: Optional[nn.Linear], final: Optional[torch.Tensor], batch: int,
             like: torch.Tensor) -> torch.Tensor:
        if proj is None or final is None:
            return like.new_zeros(self.layers, batch, self.size)
        x = proj(final[-1])  # (batch, layers*hidden)
        if self.kind is BridgeKind.bridge:
            x = torch.tanh(x)
        return x.view(batch, self.layers, self.size).transpose(0, 1).contiguous()  # (layers, batch, hidden)

    def forward(self, enc: EncoderOutput):
        batch = enc.outputs.size(0)
        h = self._map(self.proj_h, enc.final_h, batch, enc.outputs)
        c = self._map(self.proj_c, enc.final_c, batch, enc.outputs) if self.decoder_lstm else None
        return h, c
