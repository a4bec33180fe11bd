"""What a network kind is: the `Network` a spec names (kind, widths, options), the
`NetworkKind` registered under that name (argument schema, builder, how a student's width
scales it, how a recurrent cell steps), shapes, activations, and the registry `NETWORKS`
itself (a `Network` reads its kind's defaults there to print itself as a spec writes it)."""


from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..core.base import Frozen, Span, lazy_import
from ..core.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor, nn


torch = lazy_import("torch")

OptionValue = int | float | str


class Network(Frozen):
    """A registered network kind (`NETWORKS`) with its positional `hidden`
    widths (which a student's width scales) and its named `options`, defaults filled in:
    `mlp(256, 256, act = tanh)`, `linear`, a `gru` cell, a plugin's kind."""

    name: str
    hidden: tuple[int, ...] = ()
    options: dict[str, int | float | str] = {}
    shared: str | None = None
    """The name of the network statement it comes from (`network dec = mlp(64)`), whose one
    set of weights every conditional that names it (`via dec`) uses; None: the node's own."""
    span: Span

    def label(self) -> str:
        """`mlp(256, 256)`, `mlp(64, act=tanh)`, `linear`, `gru`: as a spec writes it (the
        options that differ from their defaults); `dec = mlp(64)` for a shared one."""
        args = [str(h) for h in self.hidden]
        kind = NETWORKS.get(self.name)
        defaults = kind.defaults() if kind else {}
        args += [f"{k}={v if isinstance(v, str) else format(v, 'g')}" for k, v in self.options.items()
                 if defaults.get(k) != v]
        own = f"{self.name}({', '.join(args)})" if args else self.name
        return f"{self.shared} = {own}" if self.shared else own


@dataclass(frozen=True)
class Option:
    """A named argument of a network kind: `act = tanh`, `blocks = 2`."""

    name: str
    kind: Literal["int", "float", "name"]
    default: OptionValue
    choices: tuple[str, ...] = ()
    """The names a `name` option takes (empty: any name)."""
    minimum: float | None = None
    doc: str = ""


Shape = tuple[int, ...]
"""A node's dimensions, channels first: (size,) for a vector, (C, H, W) for an image."""
Build = Callable[..., "nn.Module"]
"""(net, in_dim, out_dim) -> module; for a `shaped` kind (net, in_shapes, out_shape)."""
Fits = Callable[["Network", tuple[Shape, ...], Shape], "str | None"]
"""(net, parents' shapes, output shape) -> why the network cannot map them, or None."""
Step = Callable[["nn.Module", "Tensor", "Tensor", Any], tuple["Tensor", Any]]


@dataclass(frozen=True)
class NetworkKind:
    """`build(net, in_dim, out_dim)` makes the module, [B, in_dim] -> [B, out_dim]. A
    recurrent kind's module carries a state of size `out_dim` (the node's size) and
    `step(module, inputs, state, carry) -> (state, carry)` runs one step (`carry`:
    whatever else the cell keeps, None at the first step).

    A `shaped` kind (a conv net) is built from shapes instead: `build(net, in_shapes,
    out_shape)`, the parents' shapes in order and the output's (a computed image's
    parameters stacked on the channels: (k * C, H, W)). Its module still maps the flat
    [B, in] to the flat [B, out]: values stay flat between nodes.

    Any kind, shaped or flat, may give `fits(net, in_shapes, out_shape)`, which says why
    the network cannot map those shapes (None: it can), in the parents' and the node's
    shapes ((size,) for a vector); the checker reports it at the edge with both shapes.
    Whatever a kind says, compiling runs each network once on zeros and refuses an
    output that is not the flat [B, out] its node needs (`CompiledModel._dry_run`)."""

    name: str
    build: Build
    widths: bool = False
    """Takes positional widths (hidden sizes), which a student's width scales."""
    default_widths: tuple[int, ...] = ()
    options: tuple[Option, ...] = ()
    recurrent: bool = False
    step: Step | None = None
    scale: Callable[[Network, float], Network] | None = None
    """A student's network at `width`; default: every width times `width`, rounded, >= 1."""
    doc: str = ""
    shaped: bool = False
    fits: Fits | None = None
    option_map: Mapping[str, Option] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "option_map", {o.name: o for o in self.options})

    def student(self, net: Network, width: float) -> Network:
        if self.scale is not None:
            return self.scale(net, width)
        return net.model_copy(update={"hidden": scale_hidden(net.hidden, width)})

    def make(self, net: Network, in_shapes: tuple[Shape, ...], out_shape: Shape) -> nn.Module:
        """The module for these shapes: a flat kind sees only the total sizes."""
        if self.shaped:
            return self.build(net, in_shapes, out_shape)
        return self.build(net, sum(math.prod(s) for s in in_shapes), math.prod(out_shape))

    def defaults(self) -> dict[str, OptionValue]:
        return {o.name: o.default for o in self.options}


def output_shape(dims: Shape, raw: int) -> Shape:
    """The shape of a network's output of `raw` values for a node of `dims`: an image's
    parameters stacked on its channels, (raw / (H * W), H, W); a vector's, (raw,)."""
    if len(dims) == 1:
        return (raw,)
    return (raw // math.prod(dims[1:]), *dims[1:])


def scale_hidden(hidden: tuple[int, ...], width: float) -> tuple[int, ...]:
    """The student's hidden widths: the teacher's times `width`, rounded, at least 1."""
    return tuple(max(1, round(h * width)) for h in hidden)


ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "sigmoid", "softplus", "leaky_relu", "identity")
DEFAULT_ACTIVATION = "relu"
DEFAULT_HIDDEN = (64,)
"""`mlp` with no widths, and the network of a conditional whose edges name none."""


def activation(name: str) -> nn.Module:
    return {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "elu": torch.nn.ELU, "gelu": torch.nn.GELU,
            "sigmoid": torch.nn.Sigmoid, "softplus": torch.nn.Softplus, "leaky_relu": torch.nn.LeakyReLU,
            "identity": torch.nn.Identity}[name]()


NETWORKS: Registry[NetworkKind] = Registry("network")
