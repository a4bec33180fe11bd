"""Graph IR -> passes: the straight-line list of node computations a compiled module
executes, decided once at compile time so that a forward call does no graph analysis.

A model has two passes. The generative pass computes every node from its parents in
the topological order, sampling latent and observed nodes (inputs are given). The
inference pass computes each latent from its guide parents, deterministic nodes from
their parents, and takes observed and input nodes from the data. Each pass is split into
the static steps (once) and the time-indexed steps (once per step, parameters shared).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .. import ir
from ..families import FAMILIES, Family, ParamSpec, param_spec
from ..ir import order
from ..networks import NETWORKS

Role = Literal["given", "sample", "compute"]
"""given: the value must be supplied; sample: drawn from the node's conditional
(reparametrized on noise); compute: a deterministic function of the parents."""


@dataclass(frozen=True)
class Step:
    node: str
    role: Role
    size: int
    timed: bool
    parents: tuple[tuple[str, int], ...] = ()
    """(node, lag) in the order their values are concatenated."""
    family: Family | None = None
    """The node's family with its settings bound (sampled steps only)."""
    spec: ParamSpec | None = None
    """Which parameters are fixed, learned, or computed by `net`."""
    net: ir.Network | None = None
    key: str = ""
    """Key of the step's network / free parameters in the module (`p_z`, `q_z`)."""


@dataclass(frozen=True)
class Pass:
    static: tuple[Step, ...]
    timed: tuple[Step, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.static + self.timed


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
    for name in model.order:
        node = model.node(name)
        net = model.student_net(name, width) if width else node.net
        role: Role = {"input": "given", "deterministic": "compute"}.get(node.kind, "sample")
        steps.append(Step(
            node=name, role=role, size=size[name], timed=node.timed,
            parents=tuple((p.name, p.lag) for p in node.parents),
            family=_family(node) if role == "sample" else None,
            spec=param_spec(FAMILIES[node.type], node.params) if role == "sample" else None,
            net=net, key=f"p_{name}",
        ))
    return _split(steps)


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
        if node.kind == "latent" and node.guide is not None:
            net = node.guide.net
            if width:
                net = NETWORKS[net.name].student(net, width)
            family = _family(node)
            computed = ParamSpec(fixed={}, learned=(), computed=family.params, settings=dict(family.values))
            steps.append(Step(
                node=name, role="sample", size=size[name], timed=node.timed,
                parents=tuple((p.name, p.lag) for p in node.guide.parents),
                family=family, spec=computed, net=net, key=f"q_{name}",
            ))
        elif node.kind == "deterministic":
            steps.append(Step(
                node=name, role="compute", size=size[name], timed=node.timed,
                parents=tuple((p.name, p.lag) for p in node.parents),
                net=model.student_net(name, width) if width else node.net, key=f"p_{name}",
            ))
        else:
            steps.append(Step(node=name, role="given", size=size[name], timed=node.timed))
    return _split(steps)


def _family(node: ir.Node) -> Family:
    family = FAMILIES[node.type]
    return family.with_settings(param_spec(family, node.params).settings) if family.settings else family


def _split(steps: list[Step]) -> Pass:
    return Pass(static=tuple(s for s in steps if not s.timed), timed=tuple(s for s in steps if s.timed))
