"""An ensemble of models behind the single-model search contract (``encode`` / ``step`` /
``reorder``): every model keeps its own state and attention; each step returns the average of the
models' log-probabilities, which search normalises like logits."""
from __future__ import annotations

from typing import List, Sequence, cast

import torch
from torch import nn

from .seq2seq import Seq2Seq


class Ensemble(nn.Module):
    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.models = nn.ModuleList(models)

    @property
    def members(self) -> List[Seq2Seq]:
        return cast(List[Seq2Seq], list(self.models))

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor):
        pairs = [m.encode(src, src_lens) for m in self.members]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)  # memories, states

    def step(self, prev_tokens: torch.Tensor, states, memories):
        """prev_tokens: (batch,) -> mean log-probabilities (batch, vocab), new states, mean weights."""
        logps, new_states, weights = [], [], []
        for model, state, memory in zip(self.members, states, memories):
            logits, state, w = model.step(prev_tokens, state, memory)
            logps.append(torch.log_softmax(logits.float(), dim=-1))
            new_states.append(state)
            weights.append(w)
        mean = torch.stack(logps).sum(0) / len(logps) if len(logps) > 1 else logps[0]
        w = None if weights[0] is None else torch.stack(weights).mean(0)
        return mean, tuple(new_states), w

    def reorder(self, states, memories, index: torch.Tensor):
        out_states, out_memories = [], []
        for i, model in enumerate(self.members):
            s, m = model.reorder(None if states is None else states[i], None if memories is None else memories[i],
                                 index)
            out_states.append(s)
            out_memories.append(m)
        return (None if states is None else tuple(out_states)), (None if memories is None else tuple(out_memories))
