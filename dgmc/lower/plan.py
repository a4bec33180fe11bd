"""Graph IR -> passes: the straight-line list of node computations a compiled module
executes, decided once at compile time so that a forward call does no graph analysis.

A model has two passes. The generative pass computes every node from its parents in
the topological order, sampling latent and observed nodes (inputs are given); a state
only the guide reads is not part of it. The inference pass computes each latent from its
guide parents, deterministic nodes from their parents, and takes observed and input
nodes from the data. Each pass is a list of blocks (`schedule`): static steps (once),
and scans over the time-indexed steps (once per step, parameters shared), forward when
they read earlier steps, backward when they read later ones (`g[t+1]`); a static node
that reads one step of a sequence (`h[T]`) comes after the scan that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import networkx as nx

from .. import ir
from ..families import FAMILIES, Family, ParamSpec, param_spec
from ..ir import order
from ..networks import NETWORKS

Role = Literal["given", "sample", "compute"]
"""given: the value must be supplied; sample: drawn from the node's conditional
(reparametrized on noise); compute: a deterministic function of the parents."""


class Read(NamedTuple):
    """A step's parent: `node` at `lag` steps before the current one (negative: after),
    or, for a static step, at the fixed step index `at` (0 for the first step)."""

    node: str
    lag: int = 0
    at: int | None = None


@dataclass(frozen=True)
class Step:
    node: str
    role: Role
    size: int
    timed: bool
    parents: tuple[Read, ...] = ()
    """The parents in the order their values are concatenated."""
    family: Family | None = None
    """The node's family with its settings bound (sampled steps only)."""
    spec: ParamSpec | None = None
    """Which parameters are fixed, learned, or computed by `net`."""
    net: ir.Network | None = None
    key: str = ""
    """Key of the step's network / free parameters in the module (`p_z`, `q_z`)."""
    exprs: tuple[tuple[str, ir.Expr], ...] = ()
    """The parameters expressions of the parents give (`spec.given`), in the family's order."""


@dataclass(frozen=True)
class Block:
    """Steps run once (`direction` 0), or once per time step: forward (1) or backward (-1)."""

    steps: tuple[Step, ...]
    direction: Literal[-1, 0, 1] = 0

    def times(self, steps: int) -> range:
        """The step indices a scan visits, in its order."""
        return range(steps) if self.direction >= 0 else range(steps - 1, -1, -1)


@dataclass(frozen=True)
class Pass:
    blocks: tuple[Block, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for b in self.blocks for s in b.steps)

    @property
    def static(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.timed)

    @property
    def timed(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.timed)


def sizes(model: ir.Model, width: float | None) -> dict[str, int]:
    return {n.name: model.student_size(n.name, width) if width else n.size for n in model.nodes}


def initial_steps(model: ir.Model) -> list[Step]:
    """A draw before the first step (`init z ~ Normal(...)`) is a static root step of its
    own, named `z[0]`, with its own noise and free parameters; the first step reads it
    as z[t-1]. Both passes run it (the guide proposes z[0] from the model's initial
    distribution), so it has no guide of its own."""
    steps = []
    for node in model.initials():
        family = _family(node)
        settings = {k: node.params[k] for k in family.settings if k in node.params}
        name = model.initial_name(node.name)
        steps.append(Step(node=name, role="sample", size=node.size, timed=False, family=family,
                          spec=param_spec(family, {**settings, **node.initial}), key=f"p_{name}"))
    return steps


def generative_pass(model: ir.Model, width: float | None = None) -> Pass:
    size = sizes(model, width)
    steps = initial_steps(model)
    guide_states = order.guide_states(model)
    for name in model.order:
        if name in guide_states:
            continue
        node = model.node(name)
        net = model.student_net(name, width) if width else node.net
        role: Role = {"input": "given", "deterministic": "compute"}.get(node.kind, "sample")
        steps.append(Step(
            node=name, role=role, size=size[name], timed=node.timed,
            parents=_reads(model, node.parents),
            family=_family(node) if role == "sample" else None,
            spec=param_spec(FAMILIES[node.type], node.params) if role == "sample" else None,
            net=net, key=f"p_{name}", exprs=tuple(node.exprs.items()),
        ))
    return Pass(schedule(steps))


def inference_pass(model: ir.Model, width: float | None = None) -> Pass | None:
    """None when no latent has a guide (nothing to infer)."""
    if not any(n.guide for n in model.nodes):
        return None
    size = sizes(model, width)
    rank = {n.name: i for i, n in enumerate(model.nodes)}
    graph = order.build(rank, order.inference_edges(model))
    steps = initial_steps(model)
    for name in order.topological_order(graph, rank):
        node = model.node(name)
        if node.kind in ("latent", "observed") and node.guide is not None:
            net, exprs = node.guide.net, node.guide.exprs
            if width and net is not None:
                net = NETWORKS[net.name].student(net, width)
            family = _family(node)
            computed = ParamSpec(fixed={}, learned=(), computed=tuple(p for p in family.params if p not in exprs),
                                 settings=dict(family.values), given=tuple(p for p in family.params if p in exprs))
            steps.append(Step(
                node=name, role="sample", size=size[name], timed=node.timed,
                parents=_reads(model, node.guide.parents),
                family=family, spec=computed, net=net, key=f"q_{name}", exprs=tuple(exprs.items()),
            ))
        elif node.kind == "deterministic":
            steps.append(Step(
                node=name, role="compute", size=size[name], timed=node.timed,
                parents=_reads(model, node.parents),
                net=model.student_net(name, width) if width else node.net, key=f"p_{name}",
            ))
        else:
            steps.append(Step(node=name, role="given", size=size[name], timed=node.timed))
    return Pass(schedule(steps))


def _family(node: ir.Node) -> Family:
    family = FAMILIES[node.type]
    return family.with_settings(param_spec(family, node.params).settings) if family.settings else family


def _reads(model: ir.Model, parents: tuple[ir.Parent, ...]) -> tuple[Read, ...]:
    return tuple(read_of(model, p) for p in parents)


def read_of(model: ir.Model, parent: ir.Parent) -> Read:
    """An edge as a step reads it: a fixed step counted from 0."""
    first = model.time.first if model.time else 0
    return Read(parent.name, parent.lag, None if parent.at is None else parent.at - first)


def schedule(steps: list[Step]) -> tuple[Block, ...]:
    """The steps (in a topological order over same-step edges) as blocks. Time-indexed
    steps that read each other across steps form groups (`order.time_groups`), each with
    the direction it must run in; groups join one scan while their directions and the
    lags between them agree, and a static step that reads a sequence waits for its scan.
    So every shipped spec with time is one static block and one forward scan, in the
    order of its steps."""
    rank = {s.node: i for i, s in enumerate(steps)}
    edges = [(r.node, s.node, r.lag) for s in steps for r in s.parents if r.node in rank]
    graph = order.build(rank, edges)
    unit_of = {s.node: (s.node,) for s in steps if not s.timed}
    direction: dict[tuple[str, ...], int] = {}
    for group, way in order.time_groups(graph, [s.node for s in steps if s.timed], rank):
        unit_of.update(dict.fromkeys(group, group))
        direction[group] = way
    units = nx.DiGraph()
    units.add_nodes_from(set(unit_of.values()))
    units.add_edges_from((unit_of[u], unit_of[v]) for u, v, _ in edges if unit_of[u] != unit_of[v])
    phase: dict[tuple[str, ...], int] = {}
    scan_way: dict[int, int] = {}
    for unit in nx.lexicographical_topological_sort(units, key=lambda u: rank[u[0]]):
        deps = list(units.predecessors(unit))
        if unit not in direction:  # static: after every scan it reads
            phase[unit] = max((phase[d] + (d in direction) for d in deps), default=0)
            continue
        at = max((phase[d] for d in deps), default=0)
        while True:  # the first scan it can join: one whose direction fits its own and the lags it reads there
            ways = {direction[unit], scan_way.get(at, 0)} | {
                (1 if lag > 0 else -1) for u, v, lag in edges
                if lag and unit_of[v] == unit and unit_of[u] in direction and phase.get(unit_of[u]) == at}
            ways.discard(0)
            if len(ways) <= 1:
                break
            at += 1
        phase[unit] = at
        scan_way[at] = next(iter(ways), 0)
    blocks = []
    for at in range(max(phase.values(), default=-1) + 1):
        once = tuple(s for s in steps if not s.timed and phase[unit_of[s.node]] == at)
        scan = tuple(s for s in steps if s.timed and phase[unit_of[s.node]] == at)
        blocks += [Block(once)] if once else []
        blocks += [Block(scan, -1 if scan_way.get(at) == -1 else 1)] if scan else []
    return tuple(blocks)
