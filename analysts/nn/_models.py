"""The two networks: an LSTM direction classifier and an MLP magnitude regressor.

Both are small on purpose: daily returns are mostly noise, and a model that can memorise
twenty stocks' history will. Their constructor arguments are exactly what is saved in
the JSON config next to the weights, so a checkpoint can always be rebuilt and checked.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class LSTMClassifier(nn.Module):
    """Sequence of feature rows -> one logit for "the price goes up over the horizon".

    Input ``(batch, window, n_features)``; output ``(batch,)`` logits (apply a sigmoid for
    ``prob_up``). The last time step's hidden state feeds a linear head.
    """

    def __init__(self, n_features: int, hidden_size: int = 32, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_size=n_features, hidden_size=hidden_size, num_layers=num_layers,
            batch_first=True, dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.dropout(out[:, -1, :])).squeeze(-1)


class MagnitudeMLP(nn.Module):
    """Feature vector (or a flattened window of them) -> a predicted (scaled) return.

    ``depth`` hidden layers of ``width`` units, each Linear -> LayerNorm (optional) ->
    GELU -> Dropout. ``head="tanh"`` bounds the output to ``±head_bound`` (in the units
    of the training target, i.e. target standard deviations when the trainer scales it),
    which keeps a few extreme days from dragging the fit; ``identity`` leaves it free.
    """

    def __init__(self, n_inputs: int, depth: int = 2, width: int = 64, dropout: float = 0.0,
                 layer_norm: bool = True, head: Literal["tanh", "identity"] = "tanh",
                 head_bound: float = 3.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = n_inputs
        for _ in range(depth):
            layers.append(nn.Linear(size, width))
            if layer_norm:
                layers.append(nn.LayerNorm(width))
            layers += [nn.GELU(), nn.Dropout(dropout)]
            size = width
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(size, 1)
        self.head = head
        self.head_bound = float(head_bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # (batch, window, features) -> one flat vector per sample
            x = x.flatten(1)
        y = self.out(self.body(x)).squeeze(-1)
        if self.head == "tanh":
            y = self.head_bound * torch.tanh(y / self.head_bound)
        return y
