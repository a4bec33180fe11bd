"""Network kinds: the registry `NETWORKS` of what computes a conditional's parameters (or
a deterministic state) from the parents' values. Each kind is one object: its argument
schema (positional widths, named options, checked by the checker with located errors),
how it is built for given input and output sizes, how a student's width scales it, and,
for recurrent cells, how one step runs.

Built in (`builtin.py`): `mlp(h1, h2, ..., act = relu)` (hidden layers of the given widths), `linear`
(one affine map), `gru` and `lstm` (recurrent cells whose hidden size is the node's
own size: they compute deterministic states such as `h[t]`); in `conv.py`, `conv` and
`deconv` for images, built from shapes. `dgmc.register_network` adds one; an
unregistered name never reaches a builder, since the checker refuses it.
"""

from __future__ import annotations

from ..core.registry import RegistryError
from .base import (
    ACTIVATIONS,
    DEFAULT_ACTIVATION,
    DEFAULT_HIDDEN,
    NETWORKS,
    Network,
    NetworkKind,
    Option,
    Shape,
    activation,
    output_shape,
    scale_hidden,
)
from .builtin import BUILTIN, build_mlp
from .conv import CONV

for _kind in (*BUILTIN, *CONV):
    NETWORKS.register(_kind.name, _kind, origin="dgmc")


def register_network(kind: NetworkKind, *, replace: bool = False) -> NetworkKind:
    """Make `kind` known to specs under `kind.name` (`via kind.name(...)`)."""
    if not isinstance(kind, NetworkKind):
        raise RegistryError(f"register_network takes a dgmc.NetworkKind, not {type(kind).__name__}.")
    if kind.recurrent and kind.step is None:
        raise RegistryError(f"network {kind.name}: a recurrent kind needs a `step` function.")
    return NETWORKS.register(kind.name, kind, replace=replace)


__all__ = [
    "ACTIVATIONS", "DEFAULT_ACTIVATION", "DEFAULT_HIDDEN", "NETWORKS", "Network", "NetworkKind", "Option", "Shape",
    "activation", "build_mlp", "output_shape", "register_network", "scale_hidden",
]
