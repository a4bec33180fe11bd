"""Dead units during distillation: found on a probe batch, brought back.

A ReLU unit whose input is negative on every row passes no gradient to its incoming
weights, so it never comes back by itself. A small student (the width-2 networks of
specs/hm.dgm) can lose every unit of one network so, and with them the dependence of a
node on its parents: the student then never matches the teacher, whatever the method.

`dead_units` runs the student on a probe batch (the teacher's sample, from a stream of
its own) and lists, per affine layer followed by a ReLU, the units that are zero on every
row (and every position, for a convolution). `revive` gives each such unit fresh
incoming weights drawn as PyTorch initialises the layer, and a bias that centres the unit
on the probe (active on half its rows), and zeroes its outgoing weights: the student's
function is unchanged at that moment, and the unit learns from there. Distillation does
both every `revive` steps (the spec's `distill(revive = N)`, `--revive N`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

AFFINE = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
"""Layers whose output units can die behind a ReLU."""


@dataclass(frozen=True)
class Dead:
    """The units of `layer` (its output units) that are zero after the ReLU on the whole
    probe; `after` is the next affine layer, whose weights read them (None: none does)."""

    where: str
    layer: nn.Module
    after: nn.Module | None
    units: Tensor
    inputs: Tensor
    """The layer's input on the probe, to centre the new units on."""

    @property
    def whole(self) -> bool:
        """Every unit of the layer dead: what follows no longer depends on its input."""
        return len(self.units) == self.layer.weight.shape[_unit_axis(self.layer)]


def dead_units(nets: nn.Module, probe: Callable[[], object]) -> list[Dead]:
    """The dead units of every (affine layer, ReLU) pair inside `nets` while `probe()` runs."""
    pairs = list(_pairs(nets))
    seen: dict[str, tuple[Tensor, Tensor]] = {}
    with torch.no_grad(), _recording(pairs, seen):
        probe()
    dead = []
    for where, layer, after in pairs:
        if where not in seen:  # not run by the probe (another pass's network)
            continue
        inputs, outputs = seen[where]
        alive = _per_unit(layer, outputs > 0).any(1)
        if not alive.all():
            dead.append(Dead(where, layer, after, (~alive).nonzero().flatten(), inputs))
    return dead


def revive(dead: list[Dead], generator: torch.Generator) -> int:
    """Fresh incoming weights (PyTorch's default init, from `generator`), a bias centring
    each unit on the probe, zero outgoing weights; returns how many units were revived."""
    with torch.no_grad():
        for d in dead:
            weight, bias = d.layer.weight, d.layer.bias
            axis = _unit_axis(d.layer)
            rows = weight.index_select(axis, d.units)
            fan_in = weight.shape[1] * weight[0, 0].numel()  # as torch counts it for every one of these layers
            bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)): PyTorch's default init of these layers
            fresh = torch.rand(rows.shape, generator=generator, device=rows.device) * 2 * bound - bound
            weight.index_copy_(axis, d.units, fresh.to(weight.dtype))
            if bias is not None:
                bias[d.units] = 0
                bias[d.units] = -_per_unit(d.layer, d.layer(d.inputs))[d.units].median(1).values
            if d.after is not None:
                d.after.weight.index_fill_(1 - _unit_axis(d.after), d.units, 0)
    return sum(len(d.units) for d in dead)


def _unit_axis(layer: nn.Module) -> int:
    """The axis of a layer's weight that indexes its output units (the other of the first
    two indexes its inputs): 1 for a transposed convolution, else 0."""
    return 1 if isinstance(layer, nn.ConvTranspose2d) else 0


def _per_unit(layer: nn.Module, outputs: Tensor) -> Tensor:
    """The layer's outputs as [units, everything else] (rows, positions)."""
    units = outputs.movedim(-1 if isinstance(layer, nn.Linear) else 1, 0)
    return units.reshape(units.shape[0], -1)


def _pairs(nets: nn.Module) -> Iterator[tuple[str, nn.Module, nn.Module | None]]:
    """(name, affine layer, next affine layer or None) for each affine layer directly
    followed by a ReLU in a Sequential."""
    for name, module in nets.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        layers = list(module)
        for i, (layer, act) in enumerate(itertools.pairwise(layers)):
            if isinstance(layer, AFFINE) and isinstance(act, nn.ReLU):
                after = next((m for m in layers[i + 2:] if isinstance(m, AFFINE)), None)
                yield f"{name}.{i}", layer, after


@contextlib.contextmanager
def _recording(pairs: list[tuple[str, nn.Module, nn.Module | None]], seen: dict[str, tuple[Tensor, Tensor]]
               ) -> Iterator[None]:
    """Each pair's layer input and output (the probe runs each network once per pass;
    a network run at several time steps keeps them all, stacked along the rows)."""
    def hook(where: str):
        def record(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
            old = seen.get(where)
            pair = (args[0].detach(), output.detach())
            seen[where] = pair if old is None else (torch.cat([old[0], pair[0]]), torch.cat([old[1], pair[1]]))
        return record

    handles = [layer.register_forward_hook(hook(where)) for where, layer, _ in pairs]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
