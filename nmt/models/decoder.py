"""Recurrent decoder with attention, input feeding, an attentional layer and tied embeddings.

``step`` decodes one position and is what search uses; ``forward`` decodes a whole target for
training by the same computation unrolled over the target (``unrolled.py``), feeding either the gold
token or the model's own prediction (teacher-forcing ratio, decided per sequence and per step). When
nothing feeds back (ratio 1, no input feeding) it takes a fast path: one RNN call over the whole
target and one batched attention over all steps. Both are tested equal to the step.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, cast

import torch
from torch import nn

from ..config import Cell, Feed, require, tied_embeddings_rule
from .attention import Attention
from .rnn import make_rnn
from .unrolled import unrolled_features


class DecoderState(NamedTuple):
    h: torch.Tensor  # (num_layers, batch, hidden)
    c: Optional[torch.Tensor]  # (num_layers, batch, hidden) for LSTM, else None
    feed: Optional[torch.Tensor]  # (batch, output_size): last attentional vector, if input feeding


class Memory(NamedTuple):
    values: torch.Tensor  # (batch, src_len, memory): encoder outputs
    keys: torch.Tensor  # attention keys precomputed once per batch (shape depends on the attention)
    mask: torch.Tensor  # (batch, src_len) bool, True at real tokens


class Decoder(nn.Module):
    def __init__(self, vocab_size: int, pad_id: int, attention: Attention, memory_size: int,
                 cell: Cell = Cell.gru, embed_size: int = 256, hidden_size: int = 512, num_layers: int = 1,
                 dropout: float = 0.0, input_feeding: bool = True, attentional_size: int = 512,
                 tie_embeddings: bool = False):
        super().__init__()
        self.lstm, self.input_feeding = Cell(cell) is Cell.lstm, input_feeding
        self.output_size = attentional_size or hidden_size + memory_size
        self.embed, self.pad_id = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id), pad_id
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(cell, embed_size + (self.output_size if input_feeding else 0),
                            hidden_size, num_layers=num_layers, dropout=dropout)
        self.attention = attention
        self.attentional = nn.Linear(hidden_size + memory_size, attentional_size, bias=False) \
            if attentional_size else None
        self.output = nn.Linear(self.output_size, vocab_size)
        if tie_embeddings:
            require(tied_embeddings_rule(self.output_size, embed_size))
            self.output.weight = self.embed.weight

    def init_state(self, h: torch.Tensor, c: Optional[torch.Tensor]) -> DecoderState:
        feed = h.new_zeros(h.size(1), self.output_size) if self.input_feeding else None
        return DecoderState(h, c if self.lstm else None, feed)

    # ---- the step contract: what search, the shortlist, ensembles and diagnostics use --------------
    #
    #   emb     = embed_tokens(prev_tokens)                      (batch, embed), dropout applied
    #   out     = recurrent cell([emb; state.feed], state)       (batch, hidden)        } step_features
    #   context = attention(out, memory)                         (batch, memory_size)   }
    #   a       = dropout(tanh(W_c [out; context]))              (batch, output_size)   }
    #   logits  = output(a)                                      (batch, vocab)
    #
    # ``step`` is all of it; ``step_features`` stops before the output layer (the shortlist brings its
    # own rows of it); ``recur`` and ``attend`` are its two halves, for a caller that needs the cell's
    # output itself (gradient-flow diagnostics). ``features`` computes ``step_features`` over a whole
    # target for training, unrolled for speed (``unrolled.py``; tested equal to ``step``, forward and
    # backward).

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(tokens))

    def recur(self, x: torch.Tensor, state: DecoderState):
        """x: (batch, 1, input) the cell's whole input -> out (batch, 1, hidden), h, c (layers, batch, hidden).
        The recurrent module itself, one position at a time (search). Training runs the same cell's
        equations unrolled over the target (``unrolled.py``), where gathering every step's weight
        gradient into one GEMM pays for writing the cell out (tested equal to this step)."""
        out, new = self.rnn(x, (state.h, state.c) if self.lstm else state.h)
        h, c = new if self.lstm else (new, None)
        return out, h, c

    def attend(self, out: torch.Tensor, memory: Memory):
        """out: (batch, tgt_len, hidden) -> attentional vectors (batch, tgt_len, output_size), weights.
        A memory of fewer rows is shared: with batch = rows * k (beam search: the k beams of a sentence,
        side by side), each sentence's k one-step queries attend as k positions over its one memory."""
        rows = memory.values.size(0)
        if rows != out.size(0):  # out: (rows*k, 1, hidden) -> (rows, k, hidden), one GEMM per sentence
            context, weights = self.attention(out.view(rows, -1, out.size(-1)), memory.keys, memory.values,
                                              memory.mask)
            context = context.reshape(out.size(0), 1, -1)  # (rows*k, 1, memory)
            weights = None if weights is None else weights.reshape(out.size(0), 1, -1)  # (rows*k, 1, src_len)
        else:
            context, weights = self.attention(out, memory.keys, memory.values, memory.mask)
        combined = torch.cat([out, context], dim=-1)  # (batch, tgt_len, hidden + memory)
        if self.attentional is not None:
            combined = torch.tanh(self.attentional(combined))
        return self.dropout(combined), weights

    def step_features(self, emb: torch.Tensor, state: DecoderState, memory: Memory):
        """emb: (batch, embed) -> attentional vector (batch, output_size), new state, weights
        (batch, 1, src_len) or None."""
        x = torch.cat([emb, cast(torch.Tensor, state.feed)], dim=-1) if self.input_feeding else emb  # (batch, input)
        out, h, c = self.recur(x.unsqueeze(1), state)  # out: (batch, 1, hidden)
        return self._finish_step(out, h, c, memory)

    def step(self, prev_tokens: torch.Tensor, state: DecoderState, memory: Memory
             ) -> Tuple[torch.Tensor, DecoderState, Optional[torch.Tensor]]:
        """prev_tokens: (batch,) -> logits (batch, vocab), new state, weights (batch, src_len) or None."""
        attn_h, state, weights = self.step_features(self.embed_tokens(prev_tokens), state, memory)
        return self.output(attn_h), state, (None if weights is None else weights[:, 0])

    def _finish_step(self, out: torch.Tensor, h, c, memory: Memory):
        attn_h, weights = self.attend(out, memory)  # (batch, 1, output_size)
        attn_h = attn_h.squeeze(1)
        return attn_h, DecoderState(h, c, attn_h if self.input_feeding else None), weights

    def features(self, tgt_in: torch.Tensor, state: DecoderState, memory: Memory,
                 tf_ratio: float = 1.0, feed: Feed = Feed.argmax) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """tgt_in: (batch, tgt_len) BOS-prefixed gold tokens.

        Returns the vectors fed to the output layer (batch, tgt_len, output_size) and the attention
        weights (batch, tgt_len, src_len) (None without attention). With ``tf_ratio`` < 1, each
        sequence at each step takes the gold token with that probability, else its own previous
        prediction (``feed``: argmax or a sample from the softmax).
        """
        if tf_ratio >= 1.0 and not self.input_feeding:
            emb = self.embed_tokens(tgt_in)  # (batch, tgt_len, embed)
            out, _ = self.rnn(emb, (state.h, state.c) if self.lstm else state.h)  # (batch, tgt_len, hidden)
            return self.attend(out, memory)
        return unrolled_features(self, tgt_in, state, memory, tf_ratio, feed)

    def _sample_feed(self, last: torch.Tensor, tgt_in: torch.Tensor, tf_ratio: float, feed: Feed):
        """Per sequence: take the gold token (True) or the model's own prediction from ``last``
        (batch, output_size); the choice carries no gradient. Only the sequences that take their
        prediction run the output layer (at a ratio near 1, almost none); ``pred`` holds PAD elsewhere."""
        with torch.no_grad():
            gold = torch.rand(tgt_in.size(0), device=tgt_in.device) < tf_ratio  # (batch,)
            pred = torch.full_like(tgt_in[:, 0], self.pad_id)  # (batch,)
            rows = (~gold).nonzero().squeeze(1)
            if rows.numel():
                prev = self.output(last.index_select(0, rows)).float()  # (rows, vocab)
                pred[rows] = prev.argmax(-1) if Feed(feed) is Feed.argmax else \
                    torch.multinomial(torch.softmax(prev, -1), 1).squeeze(1)
        return gold, pred

    def forward(self, tgt_in: torch.Tensor, state: DecoderState, memory: Memory,
                tf_ratio: float = 1.0, feed: Feed = Feed.argmax) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Logits (batch, tgt_len, vocab) and attention weights; see ``features``."""
        feats, weights = self.features(tgt_in, state, memory, tf_ratio, feed)
        return self.output(feats), weights  # one matmul for all steps
