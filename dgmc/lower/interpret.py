"""The reference interpreter: a plan's passes executed step by step, the semantics the
generated code (`generate`) is tested against bit for bit (`CompiledModel.interpret =
True` runs it instead of the generated functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch
from torch import Tensor, nn

from .. import ir
from ..families import Params
from ..networks import NETWORKS
from .plan import Pass, Read, Step, read_of
from .trace import MissingValueError, Trace


class Model(Protocol):
    """What a pass reads of its compiled model (a `CompiledModel`, which this module does
    not import: the module imports this one)."""

    ir: ir.Model
    nets: nn.ModuleDict
    free: nn.ParameterDict
    initial_names: Mapping[str, str]
    _anchor: Tensor

    def initial(self, node: str, batch: int) -> Tensor: ...


class Run:
    """The mutable state of one pass: values so far (per step for time-indexed nodes),
    noise, parameters and recurrent cell states."""

    def __init__(self, model: Model, batch: int, given: dict[str, Tensor],
                 noise: dict[str, Tensor], generator: torch.Generator | None) -> None:
        self.m, self.batch, self.given, self.noise, self.generator = model, batch, given, noise, generator
        self.steps = 0
        self.values: dict[str, Tensor | list[Tensor]] = {}
        self.eps: dict[str, Tensor | list[Tensor]] = {}
        self.params: dict[str, Params | list[Params]] = {}
        self.carries: dict[str, object] = {}
        self.initials: dict[str, Tensor] = {}
        """What each recurrent cell keeps besides its state (an LSTM's cell state)."""

    def walk(self, walk: Pass, steps: int) -> Trace:
        """Run a pass block by block: static steps once, a scan's steps at each time step
        in its direction."""
        self.steps = steps
        for block in walk.blocks:
            for t in block.times(steps) if block.direction else (None,):
                for step in block.steps:
                    self.do(step, t)
        return self.trace()

    def read(self, parent: Read, t: int | None) -> Tensor:
        """A parent's value: at a step relative to `t`, or at a fixed step; beyond the
        sequence, the node's initial value, made once per pass however many steps read it
        (one tensor, as in the generated code, so the gradients of a learned one add up in
        the same order)."""
        value = self.values.get(parent.node)
        if value is not None and not isinstance(value, list):
            return value
        at = parent.at if parent.at is not None else t - parent.lag
        if 0 <= at < self.steps:
            return value[at]
        drawn = self.m.initial_names.get(parent.node)
        if drawn:
            return self.values[drawn]
        if parent.node not in self.initials:
            self.initials[parent.node] = self.m.initial(parent.node, self.batch)
        return self.initials[parent.node]

    def do(self, step: Step, t: int | None) -> None:
        given = _at(self.given.get(step.node), t)
        if step.role == "given":
            if given is None:
                raise MissingValueError(f"'{step.node}' must be given (it is {self.m.ir.node(step.node).kind}).")
            self._record(self.values, step, t, given)
            return
        if step.role == "compute":
            self._record(self.values, step, t, given if given is not None else self._compute(step, t))
            return
        family = step.family
        computed = self.m.nets[step.key](self._inputs(step, t)) if step.key in self.m.nets else None
        learned = self.m.free[step.key].expand(self.batch, -1) if step.key in self.m.free else None
        params = family.assemble(computed, learned, step.spec, step.size, self.batch, self.m._anchor)
        if step.exprs:  # the parameters expressions of the parents give, in the family's order
            written = {p: self._given(e, step, t) for p, e in step.exprs}
            params = {p: written[p] if p in written else params[p] for p in family.params}
        eps = _at(self.noise.get(step.node), t)
        if given is None:
            if eps is None:
                eps = family.noise((self.batch, step.size), self.generator, self.m._anchor.device)
                eps = eps.to(self.m._anchor.dtype)
            given = family.reparam(eps, params)
        if eps is not None:
            self._record(self.eps, step, t, eps)
        self._record(self.params, step, t, params)
        self._record(self.values, step, t, given)

    def _given(self, expr: ir.Expr, step: Step, t: int | None) -> Tensor:
        """A parameter an expression of the parents gives, [batch, size]."""
        if expr.op == "number":
            return self.m._anchor.new_full((self.batch, step.size), expr.value)
        return evaluate(expr, lambda parent: self.read(read_of(self.m.ir, parent), t)).expand(self.batch, step.size)

    def _inputs(self, step: Step, t: int | None, skip_self: bool = False) -> Tensor | None:
        parts = [self.read(r, t) for r in step.parents if not (skip_self and _own_state(step, r))]
        if len(parts) < 2:
            return parts[0] if parts else None
        return torch.cat(parts, dim=-1)

    def _compute(self, step: Step, t: int | None) -> Tensor:
        net, kind = self.m.nets[step.key], NETWORKS[step.net.name]
        if not kind.recurrent:
            return net(self._inputs(step, t))
        previous = self.read(next(r for r in step.parents if _own_state(step, r)), t)
        inputs = self._inputs(step, t, skip_self=True)
        if inputs is None:  # its only parent is its own previous state: an empty input
            inputs = previous.new_zeros(self.batch, 1)
        state, self.carries[step.node] = kind.step(net, inputs, previous, self.carries.get(step.node))
        return state

    def _record(self, store: dict, step: Step, t: int | None, value) -> None:
        if t is None:
            store[step.node] = value
        else:
            store.setdefault(step.node, [None] * self.steps)[t] = value

    def trace(self) -> Trace:
        return Trace(
            values={k: _stack(v) for k, v in self.values.items()},
            noise={k: _stack(v) for k, v in self.eps.items()},
            params={k: ({p: _stack([s[p] for s in v]) for p in v[0]} if isinstance(v, list) else v)
                    for k, v in self.params.items()},
        )


def _own_state(step: Step, read: Read) -> bool:
    """Whether `read` is a recurrent state's own previous value (`h[t-1]`, or `h[t+1]`
    in a backward scan), which the cell carries rather than reads as input."""
    return read.node == step.node and abs(read.lag) == 1


def _at(value: Tensor | None, t: int | None) -> Tensor | None:
    """The slice of a [batch, steps, ...] tensor at step t (static values as they are)."""
    return value if value is None or t is None else value[:, t]


def _stack(value: Tensor | list[Tensor]) -> Tensor:
    return torch.stack(value, dim=1) if isinstance(value, list) else value


_FUNCTIONS = {"sqrt": torch.sqrt, "exp": torch.exp, "log": torch.log, "sigmoid": torch.sigmoid,
              "softplus": torch.nn.functional.softplus, "tanh": torch.tanh, "abs": torch.abs}
_OPERATORS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


def evaluate(expr: ir.Expr, read) -> Tensor | float:
    """An expression's value, each parent's by `read` (the reference of `Expr.code`: the
    same operations in the same order)."""
    if expr.op == "number":
        return expr.value
    if expr.op == "read":
        return read(expr.parent)
    args = [evaluate(a, read) for a in expr.args]
    if expr.op in _OPERATORS:
        return _OPERATORS[expr.op](*args)
    if expr.op == "neg":
        return -args[0]
    return _FUNCTIONS[expr.op](args[0])
