"""The module of the `gated` network kind (`dgmc.networks.builtin`), apart so that
checking a spec does not load torch."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GatedTransition(nn.Module):
    """The gated transition of the deep Markov model (Krishnan et al. 2017), for a Normal
    node: a gate g = sigmoid(mlp(u)) mixes a linear map of the parents u with a nonlinear
    proposal h = mlp(u), loc = (1 - g) * linear(u) + g * h, and the raw scale (before the
    family's softplus) is an affine map of relu(h). The output is [loc, raw scale]."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__()
        size = out_dim // 2
        self.gate = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, size))
        self.proposal = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, size))
        self.skip = nn.Linear(in_dim, size)
        self.scale = nn.Linear(size, size)

    def forward(self, inputs: Tensor) -> Tensor:
        gate, proposal = torch.sigmoid(self.gate(inputs)), self.proposal(inputs)
        loc = (1 - gate) * self.skip(inputs) + gate * proposal
        return torch.cat([loc, self.scale(torch.relu(proposal))], dim=-1)
