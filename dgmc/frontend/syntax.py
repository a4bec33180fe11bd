"""Syntax IR: the statements of a `.dgm` file as written, each with its source span.

Built by the one Transformer in `dgmc.frontend.parse`; read by the checker (`dgmc.check`), which
resolves it into the graph IR (`dgmc.ir`), and by the formatter (`dgmc.frontend.fmt`), which prints
it back canonically. Constants stay as names here (`Normal[Z]`), so `fmt` keeps them.
"""

from __future__ import annotations

from typing import Literal

from ..core.base import Frozen, Span

NodeKind = Literal["input", "latent", "observed", "deterministic"]


class Name(Frozen):
    """An identifier where it was written."""

    text: str
    span: Span


class Number(Frozen):
    """A numeric literal; `text` is kept as written so `fmt` does not reformat it."""

    text: str
    span: Span

    @property
    def value(self) -> int | float:
        try:
            return int(self.text)
        except ValueError:
            return float(self.text)


Scalar = Number | Name


class ListValue(Frozen):
    """`[a, b, c]`: a flat list of scalars (lists do not nest)."""

    items: tuple[Scalar, ...]
    span: Span


Value = Number | Name | ListValue


class Arg(Frozen):
    """One argument of a call: positional (`key` is None) or `key = value`."""

    key: Name | None
    value: Value
    span: Span


class Index(Frozen):
    """A time index: `t`, `t-2` (offset -2), `t+1` (offset +1), relative to the current
    step; or a fixed step, `T` (a constant), `T-1` or `1` (no `var`: the number is
    `offset`), which a node without a time dimension reads of a sequence."""

    var: Name | None
    offset: int
    span: Span


class Ref(Frozen):
    """A reference to a node in an edge: `z`, `h[t]`, `h[t-1]`."""

    name: Name
    index: Index | None
    span: Span


class Network(Frozen):
    """`mlp(64, 64, act = tanh)`, `linear`, `gru`: the net computing a conditional."""

    name: Name
    args: tuple[Arg, ...]
    span: Span


class ConstStmt(Frozen):
    """`const Z = 16`."""

    name: Name
    value: Number
    span: Span


class TimeStmt(Frozen):
    """`time t in 1..40`: the step variable and its (inclusive) range."""

    var: Name
    first: Scalar
    last: Scalar
    span: Span


class NodeDecl(Frozen):
    """`latent z[t] : Normal[Z](scale = 0.5)`: kind, name, optional time variable, type
    (a family for latent/observed nodes, a domain for input/deterministic ones), size and
    type arguments."""

    kind: NodeKind
    name: Name
    time_var: Name | None
    type: Name
    shape: tuple[Scalar, ...]
    """`[Z]` for a vector, `[1, 28, 28]` for an image (channels, height, width)."""
    args: tuple[Arg, ...]
    span: Span


class EdgeStmt(Frozen):
    """`a, b -> c -> d via mlp(8)`: every group of refs points at the next group; `via`
    names the network of every target in the statement."""

    chain: tuple[tuple[Ref, ...], ...]
    via: Network | None
    span: Span


class InitStmt(Frozen):
    """`init h = 0`: the value of a time-indexed node before the first step; or
    `init z ~ Normal(loc = 0)`: a distribution it is drawn from (`family` and `args`,
    and no `value`)."""

    name: Name
    value: Scalar | None = None
    family: Name | None = None
    args: tuple[Arg, ...] = ()
    span: Span


class DefaultStmt(Frozen):
    """`default via mlp(64)`: the network of conditionals whose edges name none."""

    via: Network
    span: Span


class Call(Frozen):
    """`sqrt(1 - B)`: a function of one expression (`dgmc.ir.FUNCTIONS`)."""

    func: Name
    arg: Expr
    span: Span


class BinOp(Frozen):
    """`a * b`, `1 - B`: an arithmetic operation."""

    op: Literal["+", "-", "*", "/"]
    left: Expr
    right: Expr
    span: Span


class Neg(Frozen):
    """`-x`."""

    operand: Expr
    span: Span


Expr = Number | Ref | Call | BinOp | Neg
"""An expression of a parameter-free conditional: numbers, constants and nodes (a `Ref`:
a bare name is a constant where one is declared, else a node), arithmetic, functions."""


class CondArg(Frozen):
    """`loc = sqrt(1 - B) * x[t-1]`: one parameter of a conditional."""

    key: Name
    value: Expr
    span: Span


class CondStmt(Frozen):
    """`x[t] ~ Normal(loc = sqrt(1 - B) * x[t-1], scale = sqrt(B))`: a conditional written
    out, its parameters expressions of the parents (in the model, or in a guide block)."""

    target: Ref
    family: Name
    args: tuple[CondArg, ...]
    span: Span


class NetworkStmt(Frozen):
    """`network dec = mlp(64, 64)`: a network several conditionals share (`via dec`), its
    weights one set."""

    name: Name
    net: Network
    span: Span


class Columns(Frozen):
    """`[eruptions, waiting]`: several columns side by side, feeding one node."""

    names: tuple[Name, ...]
    span: Span


class Transform(Frozen):
    """`scale(pixels, max = 255)`: columns through a registered data transform."""

    name: Name
    source: Name | Columns
    args: tuple[Arg, ...] = ()
    span: Span


class Binding(Frozen):
    """`x = pixels`, `x = [eruptions, waiting]`, `y = onehot(label)` in a data block:
    the columns that feed a node, and how they are transformed."""

    node: Name
    source: Name | Columns | Transform
    span: Span

    @property
    def columns(self) -> tuple[Name, ...]:
        source = self.source.source if isinstance(self.source, Transform) else self.source
        return source.names if isinstance(source, Columns) else (source,)


class DataStmt(Frozen):
    """`data digits(binarize) { x = pixels, c = label }`."""

    dataset: Name
    args: tuple[Arg, ...]
    bindings: tuple[Binding, ...]
    span: Span


class GuideBlock(Frozen):
    """`guide { x -> z via mlp(64) }`: the inference network q(latents | ...), and the
    deterministic states only the guide computes (`deterministic g[t] : Real[H]`, a
    backward RNN over the observations) with their initial values."""

    stmts: tuple[NodeDecl | EdgeStmt | InitStmt | CondStmt, ...]
    span: Span

    @property
    def edges(self) -> tuple[EdgeStmt, ...]:
        return tuple(x for x in self.stmts if isinstance(x, EdgeStmt))

    @property
    def decls(self) -> tuple[NodeDecl, ...]:
        return tuple(x for x in self.stmts if isinstance(x, NodeDecl))

    @property
    def inits(self) -> tuple[InitStmt, ...]:
        return tuple(x for x in self.stmts if isinstance(x, InitStmt))

    @property
    def conds(self) -> tuple[CondStmt, ...]:
        return tuple(x for x in self.stmts if isinstance(x, CondStmt))


class TrainStmt(Frozen):
    """`train elbo(steps = 2000, lr = 1e-3)`: the teacher's objective and recipe."""

    objective: Name
    args: tuple[Arg, ...]
    span: Span


class DistillItem(Frozen):
    """`z : w2 via mlp(8)` in a distill block: a node's divergence and/or the student's
    network for it."""

    node: Name
    divergence: Name | None
    via: Network | None
    span: Span


class DistillStmt(Frozen):
    """`distill(width = 0.25, lambda = 1) { ... }`."""

    args: tuple[Arg, ...]
    items: tuple[DistillItem, ...]
    span: Span


Stmt = (
    ConstStmt | TimeStmt | NodeDecl | EdgeStmt | InitStmt | DefaultStmt | NetworkStmt | CondStmt
    | DataStmt | GuideBlock | TrainStmt | DistillStmt
)


class Spec(Frozen):
    """A whole file: `model NAME { statements }`."""

    name: Name
    stmts: tuple[Stmt, ...]
    span: Span
