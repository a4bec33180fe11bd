"""The torch networks behind `mlp`, `linear`, `gru` and `lstm` (see `dgmc.networks`)."""

from __future__ import annotations

import itertools

from torch import Tensor, nn

from .. import ir

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus, "leaky_relu": nn.LeakyReLU, "identity": nn.Identity,
}


def build_network(net: ir.Network, in_dim: int, out_dim: int) -> nn.Module:
    """A feed-forward net [B, in_dim] -> [B, out_dim], or a recurrent cell whose state
    has size `out_dim` and whose input has size `in_dim` (the parents other than the
    node's own previous state)."""
    if net.name == "gru":
        return nn.GRUCell(max(in_dim, 1), out_dim)
    if net.name == "lstm":
        return nn.LSTMCell(max(in_dim, 1), out_dim)
    widths = (in_dim, *net.hidden, out_dim)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[net.act]())
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def is_recurrent(module: nn.Module) -> bool:
    return isinstance(module, nn.GRUCell | nn.LSTMCell)


def count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def empty_input(batch: int, like: Tensor) -> Tensor:
    """The input of a recurrent cell whose only parent is its own previous state."""
    return like.new_zeros(batch, 1)
