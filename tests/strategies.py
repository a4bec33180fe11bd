"""Hypothesis strategies: valid `.dgm` specs (random DAGs, families, sizes, networks,
optional time-indexed part and guide) written with random layout and comments, so that
`fmt` has real work to do. Time-indexed nodes run forward or backward (each reads its own
direction's earlier steps, `t-k` or `t+k`, of itself and of nodes declared before it
that run the same way, so no group reads both ways), a static node may summarise a
sequence by one step (`h[T]`), and the guide may declare a backward state of its own."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import networkx as nx
from hypothesis import strategies as st

from dgmc.check.context import KEYWORDS
from dgmc.families import FAMILIES, NODE_DOMAINS

_TYPE_NAMES = set(FAMILIES) | set(NODE_DOMAINS)


@dataclass
class GenNode:
    name: str
    kind: str
    type: str
    size: str
    timed: bool
    args: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)  # rendered refs
    via: str | None = None
    guide: list[str] = field(default_factory=list)
    direction: int = 1
    """A timed node's direction: 1 reads earlier steps (`t-k`), -1 later ones (`t+k`)."""


def _net(rng: random.Random) -> str | None:
    choice = rng.randrange(4)
    if choice == 0:
        return None
    if choice == 1:
        return "linear"
    widths = ", ".join(str(rng.randint(1, 64)) for _ in range(rng.randint(0, 2)))
    act = rng.choice(["", "act = tanh", "act = relu"])
    args = ", ".join(a for a in (widths, act) if a)
    return f"mlp({args})" if args or rng.random() < 0.5 else "mlp"


_VALUES = {"real": ["0", "-1.5", "learned"], "positive": ["0.5", "1", "2e-1", "learned"],
           "unit": ["0.25", "learned"]}


def _family_args(rng: random.Random, family: str, root: bool, initial: bool = False,
                 size: str = "1") -> list[str]:
    """Fixed or learned parameters (those only a root may fix, only on roots; one name of
    a parameter that has two) and settings (not in an initial distribution: it takes the
    node's). A fixed number may be a list of one per dimension where the size is a
    number; a one-hot family's probabilities are always such a list, summing to 1."""
    found = FAMILIES[family]
    args, given = [], set()
    for param, constraint in found.spec_params.items():
        own = found.fix(param, 0.5)[0]
        if own in given or not (root or param not in found.root_only) or rng.random() >= 0.4:
            continue
        value = rng.choice(_VALUES[constraint])
        per_dimension = size.isdigit() and value != "learned" and (rng.random() < 0.3 or found.event)
        if found.event and constraint == "unit":
            if not size.isdigit() or value == "learned":
                continue
            weights = [rng.randint(1, 9) for _ in range(int(size))]
            value = "[" + ", ".join(repr(w / sum(weights)) for w in weights) + "]"
        elif per_dimension:
            value = "[" + ", ".join(rng.choice([v for v in _VALUES[constraint] if v != "learned"])
                                    for _ in range(int(size))) + "]"
        args.append(f"{param} = {value}")
        given.add(own)
    for setting in found.settings if not initial else ():
        if rng.random() < 0.5:
            args.append(f"{setting} = {rng.choice(['0.5', '1', '2e-1'])}")
    return args


def build_spec(rng: random.Random, names: list[str], timed_count: int, steps: int,
               guides: str | None = None) -> str:
    """A valid spec over `names` (the last `timed_count` are time-indexed); `guides` as
    for `_add_guides`."""
    consts = {"K": rng.randint(2, 9)} if rng.random() < 0.5 else {}
    nodes: list[GenNode] = []
    static_count = len(names) - timed_count
    both_ways = rng.random() < 0.5
    for i, name in enumerate(names):
        timed = i >= static_count
        direction = rng.choice([1, -1]) if both_ways and timed else 1
        pool = [n for n in nodes if n.kind != "never"]
        candidates = [f"{n.name}[t]" if n.timed else n.name for n in pool if timed or not n.timed]
        same_way = [n.name for n in nodes if n.timed and n.direction == direction] + ([name] if timed else [])
        lagged = [_lag_ref(rng, other, direction, steps) for other in same_way]
        parents = rng.sample(candidates, k=rng.randint(0, min(3, len(candidates))))
        if timed and lagged and rng.random() < 0.7:
            parents.append(rng.choice(lagged))
        kind = rng.choice(["input", "latent", "observed", "deterministic"])
        if kind == "input" and parents:
            kind = "latent"
        if kind == "deterministic" and not parents:
            kind = "observed"
        if kind in ("latent", "observed"):
            family = rng.choice(list(FAMILIES))
            size = str(rng.randint(2, 5)) if FAMILIES[family].min_size > 1 else rng.choice(["1", "3", *consts])
            if not timed and not FAMILIES[family].event and rng.random() < 0.2:
                size = rng.choice(["1, 2, 3", "2, 2", "1, 4, 4"])  # a shaped node: an image, a matrix
            node = GenNode(name, kind, family, size, timed, _family_args(rng, family, not parents, size=size))
        else:
            domain = rng.choice(list(NODE_DOMAINS)) if kind == "input" else "Real"
            node = GenNode(name, kind, domain, rng.choice(["1", "4", *consts]), timed)
        node.parents = [] if kind == "input" else parents
        node.direction = direction
        recurrent = kind == "deterministic" and _lag_ref(rng, name, direction, 1) in parents
        node.via = rng.choice(["gru", "lstm"]) if recurrent and rng.random() < 0.5 else _net(rng)
        nodes.append(node)
    _add_summary(rng, nodes, steps)
    _add_guides(rng, nodes, guides)
    guide_state = _guide_state(rng, nodes) if rng.random() < 0.8 else None
    return _render(rng, nodes, consts, steps, timed_count, guide_state)


def _lag_ref(rng: random.Random, name: str, direction: int, steps: int) -> str:
    """`name[t-k]` (forward) or `name[t+k]` (backward), k one step, sometimes two."""
    k = 2 if steps > 2 and rng.random() < 0.25 else 1
    return f"{name}[t{'-' if direction > 0 else '+'}{k}]"


def _add_summary(rng: random.Random, nodes: list[GenNode], steps: int) -> None:
    """Sometimes a static observed node that reads one step of a sequence (its first or
    last): `summary` (longer than any drawn name, so it never clashes)."""
    timed = [n for n in nodes if n.timed and n.kind != "input"]
    if timed and rng.random() < 0.3:
        source = rng.choice(timed)
        step = rng.choice([1, steps])
        nodes.append(GenNode("summary", "observed", "Normal", "1", False, parents=[f"{source.name}[{step}]"],
                             via=_net(rng)))


def _guide_state(rng: random.Random, nodes: list[GenNode]) -> str | None:
    """A backward state the guide declares over a timed observed node, read by the guide of
    a timed latent: `guide_h` (longer than any drawn name)."""
    seen = [n for n in nodes if n.timed and n.kind == "observed"]
    latents = [n for n in nodes if n.timed and n.kind == "latent" and n.guide]
    if not seen or not latents:
        return None
    rng.choice(latents).guide.append("guide_h[t]")
    cell = rng.choice(["gru", "mlp(4)"])
    return (f"deterministic guide_h[t] : Real[3]  init guide_h = {rng.choice(['0', 'learned'])}  "
            f"{rng.choice(seen).name}[t], guide_h[t+1] -> guide_h[t] via {cell}")


GUIDE_ORDERS = ("bottom_up", "top_down", "mixed")
"""The orders a guide may draw its latents in: against the declaration order (as a
bottom-up guide of a top-down model), along it, or shuffled."""


def _add_guides(rng: random.Random, nodes: list[GenNode], order: str | None = None) -> None:
    """Guide parents: observed and input nodes, latents drawn earlier in the guide's order
    (so the guide is acyclic), and deterministic states only at the previous step (a
    same-step state may be computed from the latent itself). With `order` (one of
    `GUIDE_ORDERS`) every latent that can have a guide gets one; without, some go
    without, and the guide's order is `bottom_up`."""
    position = {n.name: i for i, n in enumerate(nodes)}
    if order == "top_down":
        position = {name: -i for name, i in position.items()}
    elif order == "mixed":
        position = {name: rng.random() for name in position}
    for node in nodes:
        if node.kind != "latent" or (order is None and rng.random() < 0.3):
            continue
        want = rng.randint(1, 2)
        pool = [_ref(n, lag=False) for n in nodes
                if (n.kind in ("observed", "input") or (n.kind == "latent" and position[n.name] > position[node.name]))
                and (node.timed or not n.timed)]
        if node.timed:
            pool += [_ref(n, lag=True) for n in nodes if n.kind == "deterministic" and n.timed]
        node.guide = []
        for ref in rng.sample(pool, k=len(pool)):
            if len(node.guide) < want and _scans_one_way(nodes, node, ref):
                node.guide.append(ref)


def _lag_sign(ref: str) -> int:
    """1 for a read of an earlier step (`h[t-1]`), -1 of a later one, 0 of the same step."""
    return 1 if "[t-" in ref else -1 if "[t+" in ref else 0


def _scans_one_way(nodes: list[GenNode], latent: GenNode, ref: str) -> bool:
    """Whether the guide pass still splits into one-way scans once `latent` also reads
    `ref`: in the graph of what the guide pass reads (a latent its guide, or its model
    parents where it has none; a deterministic node its model parents), collapsed over
    time, no group of nodes that read each other may read both earlier and later steps
    (as `f[t-1] -> c[t] -> d[t] <- d[t+1]`, `d[t] -> f[t]` would)."""
    graph = nx.DiGraph()
    for n in nodes:
        if n is latent:
            reads = [*n.guide, ref]
        else:
            reads = (n.guide or n.parents) if n.kind == "latent" else n.parents if n.kind == "deterministic" else []
        for parent in reads:
            graph.add_edge(parent.split("[")[0], n.name)
            graph.edges[parent.split("[")[0], n.name].setdefault("signs", set()).add(_lag_sign(parent))
    for group in nx.strongly_connected_components(graph):
        signs = {sign for a, b, d in graph.subgraph(group).edges(data=True) for sign in d["signs"]}
        if {1, -1} <= signs:
            return False
    return True


def _ref(node: GenNode, lag: bool) -> str:
    """A state read one step back in its own direction (`h[t-1]`, or `h[t+1]` backward)."""
    if not node.timed:
        return node.name
    return f"{node.name}[t{'-' if node.direction > 0 else '+'}1]" if lag else f"{node.name}[t]"


def _render(rng: random.Random, nodes: list[GenNode], consts: dict, steps: int, timed_count: int,
            guide_state: str | None = None) -> str:
    stmts = [f"const {k} = {v}" for k, v in consts.items()]
    if timed_count:
        stmts.append(f"time t in 1..{steps}")
    if rng.random() < 0.3:
        stmts.append("default via mlp(8, 8)")
    for n in nodes:
        args = f"({', '.join(n.args)})" if n.args else ""
        stmts.append(f"{n.kind} {n.name}{'[t]' if n.timed else ''} : {n.type}[{n.size}]{args}")
    reads = [p for n in nodes for p in (*n.parents, *n.guide) if "[t-" in p or "[t+" in p]
    lagged = {p.split("[")[0] for p in reads}
    for name in sorted(lagged):  # a draw beyond the sequence serves reads one step away, on one side
        sides = {p.split("[")[1].rstrip("]") for p in reads if p.split("[")[0] == name}
        drawn = len(sides) == 1 and sides.pop() in ("t-1", "t+1")
        stmts.append(_init(rng, next(n for n in nodes if n.name == name), drawn))
    for n in nodes:
        if n.parents:
            target = f"{n.name}[t]" if n.timed else n.name
            stmts.append(f"{', '.join(n.parents)} -> {target}" + (f" via {n.via}" if n.via else ""))
    guides = [f"{', '.join(n.guide)} -> {n.name}[t]" if n.timed else f"{', '.join(n.guide)} -> {n.name}"
              for n in nodes if n.guide]
    if guide_state:
        guides.insert(rng.randint(0, len(guides)), guide_state)
    if guides:
        stmts.append("guide { " + " ".join(guides) + " }")
    stmts.append(_distill(rng, nodes))
    rng.shuffle(stmts)  # statement order is free in the language
    body = "".join(_gap(rng) + stmt for stmt in stmts)
    return f"{_gap(rng)}model generated {{{body}{_gap(rng)}}}{_gap(rng)}"


def _init(rng: random.Random, node: GenNode, drawn: bool = True) -> str:
    """A fixed or learned value, or for a latent sometimes (when `drawn` allows) a
    distribution of its family."""
    if drawn and node.kind == "latent" and rng.random() < 0.4:
        args = _family_args(rng, node.type, root=True, initial=True, size=node.size)
        return f"init {node.name} ~ {node.type}" + (f"({', '.join(args)})" if args else "")
    return f"init {node.name} = {rng.choice(['0', 'learned', '0.5'])}"


def _distill(rng: random.Random, nodes: list[GenNode]) -> str:
    items = []
    for n in nodes:
        if n.kind in ("latent", "observed") and rng.random() < 0.4:
            items.append(f"{n.name} : {rng.choice(FAMILIES[n.type].divergences)}")
    args = rng.choice(["", "(width = 0.5)", "(width = [0.25, 0.5], lambda = 0.1, seed = [0, 1])",
                       "(method = [ours, local], steps = 10)"])
    return f"distill{args}" + (" { " + "\n".join(items) + " }" if items else "")


def _gap(rng: random.Random) -> str:
    """Random layout between statements: spaces, newlines, blank lines, comments."""
    return rng.choice([" ", "\n", "\n\n", "  # note\n", "\n# a comment line\n", "\n   \n  "])


names_strategy = st.lists(
    st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(
        lambda n: n not in KEYWORDS and n not in _TYPE_NAMES and n != "learned"),
    min_size=1, max_size=8, unique=True,
)


@st.composite
def specs(draw, guides: str | None = None) -> str:
    """The text of a valid spec; `guides` as for `_add_guides`."""
    names = draw(names_strategy)
    timed_count = draw(st.integers(0, len(names))) if draw(st.booleans()) else 0
    steps = draw(st.integers(1, 50))
    rng = draw(st.randoms(use_true_random=False))
    return build_spec(rng, names, timed_count, steps, guides)
