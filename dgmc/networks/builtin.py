"""The built-in network kinds: `mlp`, `linear`, the gated transition `gated` of deep Markov
models, and the recurrent cells `gru` and `lstm` (their hidden size is the node's own
size: they compute deterministic states such as `h[t]`)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from ..core.base import lazy_import
from .base import ACTIVATIONS, DEFAULT_ACTIVATION, DEFAULT_HIDDEN, Network, NetworkKind, Option, activation

if TYPE_CHECKING:
    from torch import Tensor, nn

torch = lazy_import("torch")


def build_mlp(net: Network, in_dim: int, out_dim: int) -> nn.Module:
    """Affine layers of the given widths with the activation between them; a single
    layer (no hidden width) is the bare `nn.Linear`."""
    widths = (in_dim, *net.hidden, out_dim)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(activation(str(net.options.get("act", DEFAULT_ACTIVATION))))
    return layers[0] if len(layers) == 1 else torch.nn.Sequential(*layers)


def build_gated(net: Network, in_dim: int, out_dim: int) -> nn.Module:
    from .gated import GatedTransition  # torch, loaded only when a network is built

    return GatedTransition(in_dim, out_dim, net.hidden[0] if net.hidden else DEFAULT_HIDDEN[0])


def _two_halves(net: Network, in_shapes: tuple, out_shape: tuple) -> str | None:
    """A gated transition computes a loc and a scale of one size: an even output."""
    if len(out_shape) != 1 or out_shape[0] % 2:
        return "the gated transition computes a loc and a scale of one size (a Normal node's parameters)"
    return None


def build_gru(net: Network, in_dim: int, out_dim: int) -> nn.Module:
    return torch.nn.GRUCell(max(in_dim, 1), out_dim)


def build_lstm(net: Network, in_dim: int, out_dim: int) -> nn.Module:
    return torch.nn.LSTMCell(max(in_dim, 1), out_dim)


def step_gru(cell: nn.Module, inputs: Tensor, state: Tensor, carry: Any) -> tuple[Tensor, Any]:
    return cell(inputs, state), None


def step_lstm(cell: nn.Module, inputs: Tensor, state: Tensor, carry: Any) -> tuple[Tensor, Any]:
    """The LSTM's cell state is the carry (zeros at the first step)."""
    hidden, cell_state = cell(inputs, (state, torch.zeros_like(state) if carry is None else carry))
    return hidden, cell_state


BUILTIN = (
    NetworkKind("mlp", build_mlp, widths=True, default_widths=DEFAULT_HIDDEN,
                options=(Option("act", "name", DEFAULT_ACTIVATION, choices=ACTIVATIONS, doc="activation"),),
                doc="multilayer perceptron on the concatenated parents"),
    NetworkKind("linear", build_mlp, doc="one affine map of the concatenated parents"),
    NetworkKind("gated", build_gated, widths=True, default_widths=DEFAULT_HIDDEN, fits=_two_halves,
                doc="the gated transition of deep Markov models: loc mixes a linear and an MLP proposal by a "
                    "learned gate, scale from the proposal (a Normal node)"),
    NetworkKind("gru", build_gru, recurrent=True, step=step_gru, doc="GRU cell; hidden size = the node's size"),
    NetworkKind("lstm", build_lstm, recurrent=True, step=step_lstm, doc="LSTM cell; hidden size = the node's size"),
)
