"""The three recurrent cells (`nn.RNN`, `nn.GRU`, `nn.LSTM`) behind one name, built batch-first."""
from __future__ import annotations

from torch import nn

from ..config import Cell

CELLS = {Cell.rnn: nn.RNN, Cell.gru: nn.GRU, Cell.lstm: nn.LSTM}


def make_rnn(cell: Cell, input_size: int, hidden_size: int, num_layers: int = 1,
             bidirectional: bool = False, dropout: float = 0.0) -> nn.Module:
    return CELLS[Cell(cell)](input_size, hidden_size, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
