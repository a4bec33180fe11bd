"""The graph view of a model (networkx), its topological order, its cycles, and `lint`.

Edges carry a `lag`: 0 for a dependence within a step (or on one fixed step of a
sequence), k for one on the step k before (`h[t-1] -> h[t]`), -k for one on the step k
after (`g[t+1] -> g[t]`). Only same-step edges constrain the order or can form a cycle
within a step; across steps, a group of time-indexed nodes that reads both earlier and
later steps of itself cannot run in one direction (`both_ways`), and every other group
runs in a forward or a backward scan (`time_groups`, scheduled by `dgmc.lower.plan`).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping

import networkx as nx

from ..families import FAMILIES
from . import Model

Edge = tuple[str, str, int]
"""(parent, child, lag)"""


class LintError(AssertionError):
    """A broken invariant of the graph IR: a bug in dgmc, never a user mistake."""


def build(names: Iterable[str], edges: Iterable[Edge]) -> nx.MultiDiGraph:
    """A multigraph with one edge per (parent, child, lag); the key is the lag."""
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(names)
    for parent, child, lag in edges:
        graph.add_edge(parent, child, key=lag, lag=lag)
    return graph


def model_edges(model: Model, guide: bool = False) -> list[Edge]:
    """The generative edges, or the guide's edges when `guide`."""
    edges = []
    for node in model.nodes:
        parents = (node.guide.parents if node.guide else ()) if guide else node.parents
        edges.extend((p.name, node.name, p.lag) for p in parents)
    return edges


def inference_edges(model: Model) -> list[Edge]:
    """The edges that inference follows: a latent is computed from its guide parents, a
    deterministic node from its generative parents; observed and input nodes are data,
    an observed node with a guide (an auxiliary predictor) predicted from its guide
    parents where the data lack it."""
    edges = []
    for node in model.nodes:
        if node.kind in ("latent", "observed") and node.guide is not None:
            edges.extend((p.name, node.name, p.lag) for p in node.guide.parents)
        elif node.kind == "deterministic":
            edges.extend((p.name, node.name, p.lag) for p in node.parents)
    return edges


def to_networkx(model: Model, guide: bool = False) -> nx.MultiDiGraph:
    """The model (or its guide) as a networkx multigraph; node attributes are the IR
    node's kind, type, size and timed flag."""
    graph = build(model.order, model_edges(model, guide))
    for node in model.nodes:
        graph.nodes[node.name].update(kind=node.kind, type=node.type, size=node.size, timed=node.timed)
    return graph


def same_step(graph: nx.MultiDiGraph) -> nx.DiGraph:
    flat = nx.DiGraph()
    flat.add_nodes_from(graph.nodes)
    flat.add_edges_from((u, v) for u, v, lag in graph.edges(keys=True) if lag == 0)
    return flat


def topological_order(graph: nx.MultiDiGraph, rank: dict[str, int]) -> list[str]:
    """Parents before children; among nodes that are free at the same time, the one
    declared first comes first. Raises networkx's error if there is a cycle."""
    return list(nx.lexicographical_topological_sort(same_step(graph), key=rank.__getitem__))


def find_cycles(graph: nx.MultiDiGraph, rank: dict[str, int]) -> list[list[str]]:
    """One cycle per strongly connected group of nodes, as [a, b, ..., a], each starting
    at its earliest-declared node; deterministic."""
    flat = same_step(graph)
    cycles = []
    for group in nx.strongly_connected_components(flat):
        if len(group) == 1 and not flat.has_edge(next(iter(group)), next(iter(group))):
            continue
        start = min(group, key=rank.__getitem__)
        edges = nx.find_cycle(flat.subgraph(group), source=start)
        cycles.append([u for u, _ in edges] + [start])
    return sorted(cycles, key=lambda c: rank[c[0]])


def ancestors_of(graph: nx.MultiDiGraph, targets: Iterable[str]) -> set[str]:
    """Every node with a path (through any lag) to one of `targets`, targets included."""
    seen = set(targets)
    queue = deque(seen)
    while queue:
        for parent in graph.pred[queue.popleft()]:
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return seen


def guide_side(kinds: Mapping[str, str], model_edges: Iterable[Edge], guide_edges: Iterable[Edge]) -> set[str]:
    """The deterministic nodes that belong to the guide: read, directly or through other
    such nodes, by some guide conditional and by no generative one (a feature extractor
    `x -> r` that only `guide { r -> z }` reads). Nothing observed depends on them, yet
    the guide's objective trains them, so they are counted, trained and distilled with
    the guide; a state that any generative node reads stays generative."""
    model_edges = list(model_edges)
    side = {name for name, kind in kinds.items() if kind == "deterministic"}
    while True:  # drop every state a node outside the set reads, until none is left to drop
        read_outside = {parent for parent, child, _ in model_edges if parent in side and child not in side}
        if not read_outside:
            break
        side -= read_outside
    within = build(side, [(p, c, lag) for p, c, lag in model_edges if p in side and c in side])
    return ancestors_of(within, {parent for parent, _, _ in guide_edges if parent in side})


def guide_states(model: Model) -> set[str]:
    """`guide_side` of a checked model."""
    return guide_side({n.name: n.kind for n in model.nodes}, model_edges(model), model_edges(model, guide=True))


def lint(model: Model) -> None:
    """Re-check the invariants every later stage relies on; raise `LintError` listing
    every violation. Cheap (linear), so it runs after every check."""
    problems = list(_problems(model))
    if problems:
        raise LintError("graph IR invariants broken:\n- " + "\n- ".join(problems))


def _problems(model: Model):
    names = [n.name for n in model.nodes]
    if len(set(names)) != len(names):
        yield "node names are not unique"
    if sorted(model.order) != sorted(names):
        yield "order is not a permutation of the nodes"
    position = {name: i for i, name in enumerate(model.order)}
    for node in model.nodes:
        yield from _node_problems(model, node, position)
    for name, divergence in model.distill.divergences.items():
        family = model.node(name).family if model.has(name) else None
        if family is None or divergence not in family.divergences:
            yield f"divergence {divergence!r} of {name!r} does not fit"
    expected = {n.name for n in model.of_kind("latent", "observed")}
    if set(model.distill.divergences) != expected:
        yield "divergences do not cover exactly the latent and observed nodes"
    for name in model.data.columns if model.data else ():
        if not model.has(name) or not (model.node(name).kind in ("observed", "input") or
                                       (model.node(name).kind == "latent" and model.node(name).guide)):
            yield f"data column bound to {name!r}, which is not an observed or input node nor a guided latent"


def _node_problems(model: Model, node, position: dict[str, int]):
    if node.kind == "input" and node.parents:
        yield f"input {node.name!r} has parents"
    if (node.net is None) != (not node.parents or bool(node.exprs)):
        yield f"{node.name!r}: a network exactly when there are parents and no expressions"
    if {p.key for e in node.exprs.values() for p in e.reads()} - {p.key for p in node.parents}:
        yield f"{node.name!r}: its expressions read nodes that are not its parents"
    if node.guide is not None and (node.guide.net is None) != bool(node.guide.exprs):
        yield f"{node.name!r}: a guide has a network exactly when it has no expressions"
    if node.kind in ("latent", "observed") and node.type not in FAMILIES:
        yield f"{node.name!r} has no family"
    if node.guide is not None and node.kind not in ("latent", "observed"):
        yield f"{node.name!r} has a guide but is neither latent nor observed"
    for parent in (*node.parents, *(node.guide.parents if node.guide else ())):
        if not model.has(parent.name):
            yield f"{node.name!r} has unknown parent {parent.name!r}"
            continue
        source = model.node(parent.name)
        has_init = source.init is not None or source.initial is not None
        if parent.lag and (not source.timed or not node.timed or not has_init):
            yield f"{node.name!r} reads {parent.name!r} at lag {parent.lag} without a time index and init"
        if source.timed and not node.timed and (parent.at is None or model.time is None
                                                or not model.time.first <= parent.at <= model.time.last):
            yield f"untimed {node.name!r} depends on timed {parent.name!r} but not at one step"
        if parent.at is not None and (node.timed or parent.lag):
            yield f"{node.name!r} reads {parent.name!r} at a fixed step but is timed"
    for parent in node.parents:
        if parent.lag == 0 and model.has(parent.name) and position[parent.name] >= position[node.name]:
            yield f"order puts {node.name!r} before its parent {parent.name!r}"
    if node.timed and model.time is None:
        yield f"{node.name!r} is timed but the model has no time"
    if node.initial is not None and (node.init is not None or node.kind != "latent" or not node.timed):
        yield f"{node.name!r}: an initial distribution belongs to a timed latent without a fixed init"


def table(model: Model) -> str:
    """The topological order as `dgmc compile --emit order` prints it: each node's
    position, kind, type and size, and its parents (`[t-1]`: the previous step's, `[t+1]`: the
    next one's, `[40]`: one fixed step's)."""
    lines = []
    for position, name in enumerate(model.order, start=1):
        node = model.node(name)
        parents = ", ".join(p.ref(model.time.var if model.time else "t") for p in node.parents) or "-"
        lines.append(f"{position:>3}. {name:<12} {node.kind:<13} {node.type}[{node.size}]  <- {parents}")
    return "".join(line + "\n" for line in lines)


def time_groups(graph: nx.MultiDiGraph, timed: Iterable[str], rank: Mapping[str, int]
                ) -> list[tuple[tuple[str, ...], int]]:
    """The time-indexed nodes in strongly connected groups over edges of every lag, each
    with the direction a scan must run it in: 1 (it reads earlier steps of itself), -1
    (later steps), 0 (either: no edge within it crosses steps). Groups in the order of
    their first node's rank, nodes by rank; a group reading both ways gets 1 (the checker
    refuses it: `both_ways`)."""
    timed = set(timed)
    within = graph.subgraph(timed)
    groups = []
    for group in nx.strongly_connected_components(within):
        lags = {lag for u, v, lag in within.subgraph(group).edges(keys=True) if lag}
        direction = 0 if not lags else (-1 if all(lag < 0 for lag in lags) else 1)
        groups.append((tuple(sorted(group, key=rank.__getitem__)), direction))
    return sorted(groups, key=lambda g: rank[g[0][0]])


def both_ways(graph: nx.MultiDiGraph, timed: Iterable[str], rank: Mapping[str, int]) -> list[list[Edge]]:
    """Per group of time-indexed nodes that reads both earlier and later steps of itself,
    one cycle through an edge of each kind, as its edges (parent, child, lag): no scan,
    forward or backward, can compute it (unrolled over time, some step waits on itself or
    on both ends at once)."""
    found = []
    for group, _ in time_groups(graph, timed, rank):
        within = graph.subgraph(group)
        edges = sorted(within.edges(keys=True), key=lambda e: (rank[e[1]], rank[e[0]], e[2]))
        back = next((e for e in edges if e[2] > 0), None)
        ahead = next((e for e in edges if e[2] < 0), None)
        if back is None or ahead is None:
            continue
        flat = nx.DiGraph(within)
        found.append([back, *_path_edges(within, flat, back[1], ahead[0]), ahead,
                      *_path_edges(within, flat, ahead[1], back[0])])
    return found


def _path_edges(graph: nx.MultiDiGraph, flat: nx.DiGraph, source: str, target: str) -> list[Edge]:
    """The edges of a shortest path from `source` to `target` (one lag per step, the first key)."""
    nodes = nx.shortest_path(flat, source, target)
    return [(u, v, min(graph[u][v])) for u, v in itertools.pairwise(nodes)]
