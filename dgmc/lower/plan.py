"""Graph IR -> passes: the straight-line list of node computations a compiled module
executes, decided once at compile time so that a forward call does no graph analysis.

A model has two passes. The generative pass computes every node from its parents in
the topological order, sampling latent and observed nodes (inputs are given). The
inference pass computes each latent from its guide parents, deterministic nodes from
their parents, and takes observed and input nodes from the data. Each pass is split into
the static steps (once) and the time-indexed steps (once per step, parameters shared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .. import ir, order
from ..networks import scale_hidden
from .families import fixed_params

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
    family: str | None = None
    fixed: dict[str, float] = field(default_factory=dict)
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


def generative_pass(model: ir.Model, width: float | None = None) -> Pass:
    size = sizes(model, width)
    steps = []
    for name in model.order:
        node = model.node(name)
        net = model.student_net(name, width) if width else node.net
        role: Role = {"input": "given", "deterministic": "compute"}.get(node.kind, "sample")
        steps.append(Step(
            node=name, role=role, size=size[name], timed=node.timed,
            parents=tuple((p.name, p.lag) for p in node.parents),
            family=node.type if role == "sample" else None,
            fixed=fixed_params(node.type, node.params) if role == "sample" else {},
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
    steps = []
    for name in order.topological_order(graph, rank):
        node = model.node(name)
        if node.kind == "latent" and node.guide is not None:
            net = node.guide.net
            if width:
                net = net.model_copy(update={"hidden": scale_hidden(net.hidden, width)})
            steps.append(Step(
                node=name, role="sample", size=size[name], timed=node.timed,
                parents=tuple((p.name, p.lag) for p in node.guide.parents),
                family=node.type, fixed={}, net=net, key=f"q_{name}",
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


def _split(steps: list[Step]) -> Pass:
    return Pass(static=tuple(s for s in steps if not s.timed), timed=tuple(s for s in steps if s.timed))


def semi_nodes(model: ir.Model) -> tuple[str, ...]:
    """Observed nodes with children: in the semi-auxiliary form their values are not
    reparametrized but handed over (teacher forcing)."""
    parents = {p.name for n in model.nodes for p in n.parents}
    return tuple(n.name for n in model.nodes if n.kind == "observed" and n.name in parents)
