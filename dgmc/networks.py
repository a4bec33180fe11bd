"""The networks that compute a conditional's parameters from the parents' values.

`mlp(h1, h2, ..., act = relu)` has hidden layers of the given widths; `linear` is an
mlp with none; `gru` and `lstm` are recurrent cells whose hidden size is the node's own
size, so they compute deterministic nodes only (an RNN state such as `h[t]`).
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "sigmoid", "softplus", "leaky_relu", "identity")
DEFAULT_ACTIVATION = "relu"
DEFAULT_HIDDEN = (64,)
"""`mlp` with no widths, and the network of a conditional whose edges name none."""


@dataclass(frozen=True)
class NetworkKind:
    name: str
    takes_hidden: bool
    takes_act: bool
    recurrent: bool
    doc: str


NETWORKS: dict[str, NetworkKind] = {
    n.name: n
    for n in (
        NetworkKind("mlp", True, True, False, "multilayer perceptron on the concatenated parents"),
        NetworkKind("linear", False, False, False, "one affine map of the concatenated parents"),
        NetworkKind("gru", False, False, True, "GRU cell; hidden size = the node's size"),
        NetworkKind("lstm", False, False, True, "LSTM cell; hidden size = the node's size"),
    )
}


def scale_hidden(hidden: tuple[int, ...], width: float) -> tuple[int, ...]:
    """The student's hidden widths: the teacher's times `width`, rounded, at least 1."""
    return tuple(max(1, round(h * width)) for h in hidden)
