"""Edges, networks, guides and initial values, added to the node drafts.

A reference `h[t-1]` becomes a parent with lag 1 (a dependence on the previous step, not
a cycle), `g[t+1]` one with lag -1 (the next step: the compiler runs it in a backward
scan, `dgmc.lower.plan`); `h[T]`, one fixed step, is read by nodes without a time
dimension (a summary of the sequence). Indices on nodes that have no time dimension are
errors. Every target of an edge statement gets its `via` network. Edges in the guide
block are the guide's conditionals, or the parents of a state declared there.
"""

from __future__ import annotations

from .. import ir
from ..families import FAMILIES
from ..frontend import syntax as s
from ..networks import DEFAULT_HIDDEN, NETWORKS, NetworkKind, Option
from .context import LEARNED, Context, single, stmts_of
from .nodes import UNSET, Draft, family_params

DEFAULT_NET_NAME = "mlp"


def default_network(ctx: Context, spec: s.Spec) -> ir.Network:
    """The network of conditionals whose edges name none: `default via ...`, or mlp(64)."""
    stmt = single(ctx, spec, s.DefaultStmt, "default")
    if stmt:
        net = network(ctx, stmt.via)
        if net is not None and net.shared:
            ctx.error(stmt.via.span, f"The shared network '{net.shared}' cannot be the default: name it in the "
                      "edges that use it.")
        elif net is not None and not NETWORKS[net.name].recurrent:
            return net
        elif net is not None:
            ctx.error(stmt.via.span, f"A recurrent cell ({net.name}) cannot be the default network.")
    kind = NETWORKS[DEFAULT_NET_NAME]
    return ir.Network(name=kind.name, hidden=DEFAULT_HIDDEN, options=kind.defaults(), span=spec.span)


def declare_networks(ctx: Context, spec: s.Spec) -> None:
    """The shared networks (`network dec = mlp(64, 64)`) into `ctx.shared`: each named
    once, by a name that is no network kind (`via NAME` must mean one thing)."""
    for stmt in stmts_of(spec, s.NetworkStmt):
        name = stmt.name.text
        ctx.not_keyword(stmt.name)
        if name in NETWORKS:
            ctx.error(stmt.name.span, f"'{name}' is a network kind: name the shared network otherwise.")
        elif name in ctx.shared:
            ctx.error(stmt.name.span, f"The network '{name}' is declared twice (first on line "
                      f"{ctx.shared[name].span.line}).")
        else:
            net = network(ctx, stmt.net)
            if net is not None:
                ctx.shared[name] = net.model_copy(update={"shared": name, "span": stmt.span})


def network(ctx: Context, net: s.Network) -> ir.Network | None:
    """Resolve `mlp(64, 64, act = tanh)` and friends against the kind's argument schema,
    or a shared network's name; None (with errors) if invalid."""
    if net.name.text in ctx.shared:
        if net.args:
            ctx.error(net.span, f"'{net.name.text}' is a shared network, set once where it is declared (line "
                      f"{ctx.shared[net.name.text].span.line}): name it without arguments.")
        return ctx.shared[net.name.text]
    kind = NETWORKS.get(net.name.text)
    if kind is None:
        ctx.unknown("network", net.name, NETWORKS)
        return None
    hidden: list[int] = []
    for arg in net.args:
        if arg.key is None and kind.widths:
            width = ctx.integer(arg.value, "A hidden width", 1)
            hidden.append(width if width is not None else 1)
    named = ctx.keyword_args([a for a in net.args if a.key or not kind.widths], tuple(kind.option_map),
                             f"The network {kind.name}")
    options = kind.defaults()
    for name, arg in named.items():
        value = _option(ctx, kind, kind.option_map[name], arg.value)
        if value is not None:
            options[name] = value
    if kind.widths and not hidden:
        hidden = list(kind.default_widths)
    return ir.Network(name=kind.name, hidden=tuple(hidden), options=options, span=net.span)


def _option(ctx: Context, kind: NetworkKind, option: Option, value: s.Value) -> int | float | str | None:
    """One named argument of a network, checked against its `Option`."""
    what = f"'{option.name}' of {kind.name}"
    if option.kind == "name":
        if isinstance(value, s.Name) and (not option.choices or value.text in option.choices):
            return value.text
        if isinstance(value, s.Name):
            ctx.unknown(option.doc or option.name, value, option.choices)
        else:
            ctx.error(value.span, f"{what} is a name" + (f": one of {', '.join(option.choices)}." if option.choices
                                                        else "."))
        return None
    minimum = option.minimum
    if option.kind == "int":
        return ctx.integer(value, what, int(minimum) if minimum is not None else -(2 ** 62))
    number = ctx.number(value, what)
    if number is not None and minimum is not None and number < minimum:
        ctx.error(value.span, f"{what} must be >= {minimum:g}, not {number:g}.")
        return None
    return None if number is None else float(number)


def add_edges(ctx: Context, spec: s.Spec, drafts: dict[str, Draft], time: ir.Time | None) -> None:
    for stmt in stmts_of(spec, s.EdgeStmt):
        _add_edge_stmt(ctx, stmt, drafts, time, guide=False)
    for block in stmts_of(spec, s.GuideBlock):
        for stmt in block.edges:
            _add_edge_stmt(ctx, stmt, drafts, time, guide=True)
    for draft in drafts.values():
        _check_node_edges(ctx, draft)


def _add_edge_stmt(ctx: Context, stmt: s.EdgeStmt, drafts: dict[str, Draft], time: ir.Time | None,
                   guide: bool) -> None:
    net = network(ctx, stmt.via) if stmt.via else None
    for sources, targets in zip(stmt.chain, stmt.chain[1:], strict=False):
        parents = [p for p in (_parent(ctx, ref, drafts, time) for ref in sources) if p is not None]
        for target_ref in targets:
            target = _target(ctx, target_ref, drafts, time, guide)
            if target is None:
                continue
            conditional = guide and not target.in_guide  # a guide state's edges are its own parents
            for parent in parents:
                _connect(ctx, target, parent, drafts, conditional)
            if stmt.via is not None:
                _set_network(ctx, target, net, stmt.via, conditional)


def _parent(ctx: Context, ref: s.Ref, drafts: dict[str, Draft], time: ir.Time | None) -> ir.Parent | None:
    """`h` (lag 0), `h[t-2]` (lag 2), `g[t+1]` (lag -1), or one fixed step `h[T]`."""
    draft = _lookup(ctx, ref, drafts)
    if draft is None or not _index_fits(ctx, ref, draft, time):
        return None
    index = ref.index
    if index is None:
        return ir.Parent(name=draft.name, span=ref.span)
    if index.var is not None and index.var.text == ctx.time_var:
        lag = -index.offset
        if time is not None and abs(lag) > 1 and abs(lag) >= time.steps:  # (one step: a one-step sequence's state)
            ctx.error(index.span, f"{_text(ref)} reaches {abs(lag)} steps {'back' if lag > 0 else 'ahead'}, past the "
                      f"whole sequence ({time.first}..{time.last}): every step would read the value beyond it.")
            return None
        return ir.Parent(name=draft.name, lag=lag, span=ref.span)
    step = index.offset + (int(ctx.consts[index.var.text]) if index.var is not None else 0)
    if time is not None and not time.first <= step <= time.last:
        ctx.error(index.span, f"{_text(ref)} is step {step}, outside the sequence's steps {time.first}..{time.last}.")
        return None
    return ir.Parent(name=draft.name, at=step, span=ref.span)


def _text(ref: s.Ref) -> str:
    """The reference as written: `h[t+1]`, `h[T-1]`, `h[40]`."""
    index = ref.index
    if index is None:
        return ref.name.text
    if index.var is None:
        return f"{ref.name.text}[{index.offset}]"
    return f"{ref.name.text}[{index.var.text}{f'{index.offset:+d}' if index.offset else ''}]"


def _target(ctx: Context, ref: s.Ref, drafts: dict[str, Draft], time: ir.Time | None,
            guide: bool) -> Draft | None:
    draft = _lookup(ctx, ref, drafts)
    if draft is None or not _index_fits(ctx, ref, draft, time):
        return None
    if ref.index is not None and (ref.index.offset != 0 or ref.index.var is None
                                  or ref.index.var.text != ctx.time_var):
        ctx.error(ref.index.span, f"An edge defines the current step: point it at "
                  f"{ref.name.text}[{ctx.time_var}], not at another step.")
        return None
    if guide and draft.kind not in ("latent", "observed") and not draft.in_guide:
        ctx.error(ref.span, f"The guide infers latent nodes, predicts observed ones (auxiliary predictors) and "
                  f"computes the states declared in it; '{draft.name}' is {draft.kind}.")
        return None
    if not guide and draft.in_guide:
        ctx.error(ref.span, f"'{draft.name}' is declared in the guide: give its edges there.")
        return None
    if not guide and draft.kind == "input":
        ctx.error(ref.span, f"Input node '{draft.name}' is given, not modelled: it cannot have parents.")
        return None
    return draft


def _lookup(ctx: Context, ref: s.Ref, drafts: dict[str, Draft]) -> Draft | None:
    draft = drafts.get(ref.name.text)
    if draft is None:
        ctx.unknown("node", ref.name, drafts, listed=False)
    return draft


def _index_fits(ctx: Context, ref: s.Ref, draft: Draft, time: ir.Time | None) -> bool:
    name, index = ref.name.text, ref.index
    if draft.timed and index is None:
        var = ctx.time_var
        ctx.error(ref.span, f"'{name}' is time-indexed: write {name}[{var}], {name}[{var}-1] or {name}[{var}+1], "
                  f"or one step such as {name}[{time.last if time else 1}].")
        return False
    if not draft.timed and index is not None:
        ctx.error(index.span, f"'{name}' has no time dimension: write {name} without an index, "
                  f"or declare it as {name}[{ctx.time_var}].")
        return False
    if index is None or index.var is None or time is None or index.var.text == time.var:
        return True
    const = ctx.consts.get(index.var.text)
    if const is None or const != int(const):
        ctx.error(index.var.span, f"Unknown time variable '{index.var.text}': the model's is '{time.var}' "
                  "(a fixed step is a number or an integer constant).")
        return False
    return True


def _connect(ctx: Context, target: Draft, parent: ir.Parent, drafts: dict[str, Draft], guide: bool) -> None:
    parents = target.guide_parents if guide else target.parents
    source = drafts[parent.name]
    if any((p.name, p.lag, p.at) == (parent.name, parent.lag, parent.at) for p in parents):
        ctx.error(parent.span, f"The edge {parent.name} -> {target.name} is given twice.")
        return
    if source.in_guide and not guide and not target.in_guide:
        ctx.error(parent.span, f"'{parent.name}' is the guide's own state: the model cannot read it "
                  "(declare it outside the guide block to share it).")
        return
    if parent.at is not None and target.timed:
        ctx.error(parent.span, f"'{target.name}' is time-indexed: it reads '{parent.name}' relative to its own step "
                  f"({parent.name}[{ctx.time_var}], {parent.name}[{ctx.time_var}-1]); one fixed step is read by a "
                  "node without a time dimension.")
        return
    if source.timed and not target.timed and parent.at is None:
        first, last = ctx.steps or (1, 1)
        ctx.error(parent.span, f"'{target.name}' has no time dimension, so it cannot depend on the "
                  f"time-indexed '{parent.name}' step by step: read one step of it, {parent.name}[{last}] (the last) "
                  f"or {parent.name}[{first}] (the first).")
        return
    parents.append(parent)


def _set_network(ctx: Context, target: Draft, net: ir.Network | None, via: s.Network, guide: bool) -> None:
    previous = target.guide_via if guide else target.via
    if previous is not None:
        where = "guide network" if guide else "network"
        ctx.error(via.span, f"The {where} of '{target.name}' is already given on line {previous.span.line}.")
        return
    if guide:
        target.guide_via, target.guide_net = via, net
    else:
        target.via, target.net = via, net
    if net is not None and NETWORKS[net.name].recurrent and (guide or target.kind != "deterministic"):
        ctx.error(via.span, f"A recurrent cell ({net.name}) computes a deterministic state; "
                  f"'{target.name}' is {'inferred by the guide' if guide else target.kind}: use mlp or linear.")


def _check_node_edges(ctx: Context, draft: Draft) -> None:
    if draft.kind == "deterministic" and not draft.parents:
        ctx.error(draft.decl.name.span, f"Deterministic node '{draft.name}' has no parents: it would be "
                  "a constant. Give it parents (`a -> " + draft.name + "`) or make it an input.")
    # (A recurrent cell on a node that is not deterministic is already an error.)
    recurrent = draft.kind == "deterministic" and draft.net is not None and NETWORKS[draft.net.name].recurrent
    if recurrent and not draft.timed:
        ctx.error(draft.via.span, f"A recurrent cell ({draft.net.name}) carries a state from step to step, "
                  f"but '{draft.name}' has no time dimension: declare it {draft.name}[{ctx.time_var}].")
    elif recurrent and not any(p.name == draft.name and abs(p.lag) == 1 for p in draft.parents):
        ctx.error(draft.via.span, f"A recurrent cell ({draft.net.name}) carries the previous state of "
                  f"'{draft.name}': add {draft.name}[{ctx.time_var}-1] as a parent (or {draft.name}[{ctx.time_var}+1], "
                  "run backward).")
    family = FAMILIES.get(draft.type)
    if family is None or not draft.parents:
        return
    for arg in draft.decl.args:
        if arg.key and arg.key.text in family.root_only and isinstance(draft.params.get(arg.key.text),
                                                                        int | float | tuple):
            ctx.error(arg.span, f"'{arg.key.text}' can be fixed only on a node without parents; the "
                      f"network of '{draft.name}' computes it from its parents.")


def add_inits(ctx: Context, spec: s.Spec, drafts: dict[str, Draft]) -> None:
    """`init h = 0`, then every `h[t-1]` (or `g[t+1]`) must have one: the value beyond the
    sequence, read at the first step (or after the last)."""
    inits = [*stmts_of(spec, s.InitStmt), *(i for block in stmts_of(spec, s.GuideBlock) for i in block.inits)]
    for stmt in sorted(inits, key=lambda i: i.span.start):
        draft = drafts.get(stmt.name.text)
        if draft is None:
            ctx.unknown("node", stmt.name, drafts, listed=False)
        elif not draft.timed:
            ctx.error(stmt.name.span, f"'{draft.name}' has no time dimension, so it has no initial value.")
        elif draft.init_stmt is not None:
            ctx.error(stmt.span, f"The initial value of '{draft.name}' is already given on line "
                      f"{draft.init_stmt.span.line}.")
        else:
            draft.init_stmt = stmt
            if stmt.family is None:
                draft.init = ctx.number_or_learned(stmt.value, f"The initial value of '{draft.name}'")
            else:
                draft.initial = _initial_distribution(ctx, stmt, draft)
    lagged = sorted((p for d in drafts.values() for p in (*d.parents, *d.guide_parents) if p.lag),
                    key=lambda p: p.span.start)
    read_lagged: dict[str, list[ir.Parent]] = {}
    for parent in lagged:
        read_lagged.setdefault(parent.name, []).append(parent)
    for name, reads in read_lagged.items():  # a missing init is reported once, at the first read
        _check_boundary(ctx, drafts[name], reads)
    for draft in drafts.values():
        if draft.init_stmt is not None and draft.name not in read_lagged:
            ctx.warn(draft.init_stmt.span, f"The initial value of '{draft.name}' is never used: "
                     f"no edge reads {draft.name}[{ctx.time_var}-1] or {draft.name}[{ctx.time_var}+1].")


def _check_boundary(ctx: Context, source: Draft, reads: list[ir.Parent]) -> None:
    """A node read at another step needs its value beyond the sequence: a number or
    `learned` serves any such read; a draw from a distribution stands for one step on one
    side (`z[0]` read as z[t-1], or `z[T+1]` read as z[t+1])."""
    first, var = reads[0], ctx.time_var
    if source.init_stmt is None:
        drawn = f", or `~ {source.type}(...)`" if source.kind == "latent" and source.type in FAMILIES else ""
        when = "at the first step, before" if first.lag > 0 else "at the last step, after"
        ctx.error(first.span, f"{first.ref(var)} is read {when} '{source.name}' has a value: add "
                  f"`init {source.name} = 0` (or `= learned`{drawn}).")
        return
    if source.initial is None:
        return
    far = next((p for p in reads if abs(p.lag) > 1), None)
    if far is not None:
        ctx.error(far.span, f"{far.ref(var)} reaches {abs(far.lag)} steps, but the draw of '{source.name}' beyond "
                  f"the sequence stands for one step: read {source.name}[{var}-1] (or {source.name}[{var}+1]), or "
                  f"give a number (`init {source.name} = 0`).")
    elif len({p.lag for p in reads}) > 1:
        other = next(p for p in reads if p.lag != first.lag)
        ctx.error(other.span, f"'{source.name}' is read at {first.ref(var)} and {other.ref(var)}, but its draw "
                  "beyond the sequence stands at one end: give a number instead (`init "
                  f"{source.name} = 0`).")


def _initial_distribution(ctx: Context, stmt: s.InitStmt, draft: Draft) -> dict[str, ir.Param] | None:
    """`init z ~ Normal(loc = 0)`: the node's own family, every parameter a number or
    `learned` (the default: nothing is computed before the first step); settings such
    as a temperature are the node's."""
    family = FAMILIES.get(draft.type) if draft.kind == "latent" else None
    if draft.kind != "latent":
        ctx.error(stmt.family.span, f"Only a latent node's initial value can be drawn from a distribution; "
                  f"'{draft.name}' is {draft.kind}: give it `init {draft.name} = 0` (or `= learned`).")
        return None
    if family is None:
        return None  # its declaration is already reported
    if stmt.family.text != family.name:
        ctx.error(stmt.family.span, f"The initial distribution of '{draft.name}' is of its own family, "
                  f"{family.name}, not {stmt.family.text}.")
        return None
    given = ctx.keyword_args(stmt.args, tuple(family.spec_params), f"The initial {family.name}")
    params = family_params(ctx, family, given, draft.size)
    return {k: LEARNED if v == UNSET else v for k, v in params.items()}
