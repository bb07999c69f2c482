"""The encoder-decoder model and ``build_model``, the one place that turns configs into modules."""
from __future__ import annotations

from dataclasses import asdict
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..config import Cell, Feed, Init
from .attention import build_attention
from .decoder import Decoder, DecoderState, Memory
from .encoder import Bridge, Encoder, EncoderOutput


class Seq2Seq(nn.Module):
    """Encoder + bridge + attentional decoder, with the contract search relies on:

    ``encode(src, src_lens) -> (memory, state)``, ``step(prev, state, memory)`` and
    ``reorder(state, memory, index)``.
    """

    def __init__(self, encoder: Encoder, bridge: Bridge, decoder: Decoder):
        super().__init__()
        self.encoder, self.bridge, self.decoder = encoder, bridge, decoder

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> Tuple[Memory, DecoderState]:
        return self.start(self.encoder(src, src_lens), src_lens)

    def start(self, enc: EncoderOutput, src_lens: torch.Tensor) -> Tuple[Memory, DecoderState]:
        """From the encoder's output: the memory attention reads (its keys computed once per batch)
        and the decoder's initial state (through the bridge)."""
        src_len, device = enc.outputs.size(1), enc.outputs.device
        mask = torch.arange(src_len, device=device)[None, :] < src_lens.to(device)[:, None]
        # mask: (batch, src_len), True at real tokens
        keys = self.decoder.attention.precompute(enc.outputs, mask)
        h, c = self.bridge(enc)
        return Memory(enc.outputs, keys, mask), self.decoder.init_state(h, c)

    def forward(self, src, src_lens, tgt_in, tf_ratio: float = 1.0, feed: Feed = Feed.argmax):
        """Logits (batch, tgt_len, vocab) and attention weights (batch, tgt_len, src_len) or None."""
        memory, state = self.encode(src, src_lens)
        return self.decoder(tgt_in, state, memory, tf_ratio=tf_ratio, feed=feed)

    def features(self, src, src_lens, tgt_in, tf_ratio: float = 1.0, feed: Feed = Feed.argmax):
        """What the output layer sees (batch, tgt_len, output_size), and the attention weights."""
        memory, state = self.encode(src, src_lens)
        return self.decoder.features(tgt_in, state, memory, tf_ratio=tf_ratio, feed=feed)

    def step(self, prev_tokens, state: DecoderState, memory: Memory):
        return self.decoder.step(prev_tokens, state, memory)

    @staticmethod
    def reorder(state: Optional[DecoderState], memory: Optional[Memory], index: torch.Tensor):
        """Select (and repeat) batch rows of the state and/or memory: beams, and sentences still active."""
        if state is not None:
            state = DecoderState(state.h.index_select(1, index),
                                 None if state.c is None else state.c.index_select(1, index),
                                 None if state.feed is None else state.feed.index_select(0, index))
        if memory is not None:
            memory = Memory(*(t.index_select(0, index) for t in memory))
        return state, memory


def _init_weights(model: nn.Module, init: Init, scale: float, forget_bias: float) -> None:
    init = Init(init)
    for name, p in model.named_parameters():
        if init is Init.uniform:
            nn.init.uniform_(p, -scale, scale)
        elif p.dim() == 1:
            nn.init.zeros_(p)
        elif init is Init.orthogonal and "weight_hh" in name:
            for block in p.data.split(p.size(1), dim=0):  # one square block per gate
                nn.init.orthogonal_(block)
        else:
            nn.init.xavier_uniform_(p)
    for module in model.modules():
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
        if isinstance(module, nn.LSTM):
            for name, p in module.named_parameters():
                if name.startswith("bias_"):
                    with torch.no_grad():
                        quarter = p.size(0) // 4  # gates i, f, g, o
                        p[quarter:2 * quarter] = forget_bias if name.startswith("bias_ih") else 0.0


def build_model(encoder, attention, decoder, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0,
                src_factor_sizes: Sequence[int] = ()) -> Seq2Seq:
    """Build the model from the three config dataclasses (``EncoderConfig``, ``AttentionConfig``,
    ``DecoderConfig``); their fields are the constructors' keyword arguments. ``src_factor_sizes``:
    the vocabulary size of each source factor (``Tokenizer.factor_sizes``)."""
    enc_kw, att_kw, dec_kw = (asdict(c) for c in (encoder, attention, decoder))
    enc = Encoder(src_vocab_size, pad_id, **enc_kw, factor_vocab_sizes=src_factor_sizes)
    bridge_kind, init = dec_kw.pop("bridge"), dec_kw.pop("init")
    scale, forget_bias = dec_kw.pop("init_scale"), dec_kw.pop("forget_bias")
    attn = build_attention(att_kw["kind"], dec_kw["hidden_size"], enc.output_size, att_kw["hidden_size"])
    dec = Decoder(tgt_vocab_size, pad_id, attn, enc.output_size, **dec_kw)
    bridge = Bridge(bridge_kind, enc.output_size, dec_kw["hidden_size"], dec_kw["num_layers"],
                    encoder_lstm=Cell(enc_kw["cell"]) is Cell.lstm,
                    decoder_lstm=Cell(dec_kw["cell"]) is Cell.lstm)
    model = Seq2Seq(enc, bridge, dec)
    _init_weights(model, init, scale, forget_bias)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
