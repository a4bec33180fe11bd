"""Edges, networks, guides and initial values, added to the node drafts.

A reference `h[t-1]` becomes a parent with lag 1 (a dependence on the previous step, not
a cycle); `t+1` and older steps are errors, as are indices on nodes that have no time
dimension. Every target of an edge statement gets its `via` network.
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
        if net is not None and not NETWORKS[net.name].recurrent:
            return net
        if net is not None:
            ctx.error(stmt.via.span, f"A recurrent cell ({net.name}) cannot be the default network.")
    kind = NETWORKS[DEFAULT_NET_NAME]
    return ir.Network(name=kind.name, hidden=DEFAULT_HIDDEN, options=kind.defaults(), span=spec.span)


def network(ctx: Context, net: s.Network) -> ir.Network | None:
    """Resolve `mlp(64, 64, act = tanh)` and friends against the kind's argument schema;
    None (with errors) if invalid."""
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
            for parent in parents:
                _connect(ctx, target, parent, drafts, guide)
            if stmt.via is not None:
                _set_network(ctx, target, net, stmt.via, guide)


def _parent(ctx: Context, ref: s.Ref, drafts: dict[str, Draft], time: ir.Time | None) -> ir.Parent | None:
    draft = _lookup(ctx, ref, drafts)
    if draft is None or not _index_fits(ctx, ref, draft, time):
        return None
    lag = -ref.index.offset if ref.index else 0
    if lag not in (0, 1):
        text = f"{ref.name.text}[{ref.index.var.text}{ref.index.offset:+d}]"
        if lag < 0:
            ctx.error(ref.index.span, f"{text} refers to a future step: a node can depend only on the "
                      f"current step ({ctx.time_var}) or the previous one ({ctx.time_var}-1).")
        else:
            ctx.error(ref.index.span, f"{text} reaches back {lag} steps; only the previous step "
                      f"({ctx.time_var}-1) can be referenced. Carry older values in a deterministic state.")
        return None
    return ir.Parent(name=draft.name, lag=lag, span=ref.span)


def _target(ctx: Context, ref: s.Ref, drafts: dict[str, Draft], time: ir.Time | None,
            guide: bool) -> Draft | None:
    draft = _lookup(ctx, ref, drafts)
    if draft is None or not _index_fits(ctx, ref, draft, time):
        return None
    if ref.index is not None and ref.index.offset != 0:
        ctx.error(ref.index.span, f"An edge defines the current step: point it at "
                  f"{ref.name.text}[{ref.index.var.text}], not at another step.")
        return None
    if guide and draft.kind != "latent":
        ctx.error(ref.span, f"The guide infers latent nodes; '{draft.name}' is {draft.kind}.")
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
    name = ref.name.text
    if draft.timed and ref.index is None:
        var = ctx.time_var
        ctx.error(ref.span, f"'{name}' is time-indexed: write {name}[{var}] or {name}[{var}-1].")
        return False
    if not draft.timed and ref.index is not None:
        ctx.error(ref.index.span, f"'{name}' has no time dimension: write {name} without an index, "
                  f"or declare it as {name}[{ctx.time_var}].")
        return False
    if ref.index is not None and time is not None and ref.index.var.text != time.var:
        ctx.error(ref.index.var.span, f"Unknown time variable '{ref.index.var.text}': the model's is '{time.var}'.")
        return False
    return True


def _connect(ctx: Context, target: Draft, parent: ir.Parent, drafts: dict[str, Draft], guide: bool) -> None:
    parents = target.guide_parents if guide else target.parents
    if any(p.name == parent.name and p.lag == parent.lag for p in parents):
        ctx.error(parent.span, f"The edge {parent.name} -> {target.name} is given twice.")
        return
    if drafts[parent.name].timed and not target.timed:
        ctx.error(parent.span, f"'{target.name}' has no time dimension, so it cannot depend on the "
                  f"time-indexed '{parent.name}'.")
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
    elif recurrent and not any(p.name == draft.name and p.lag == 1 for p in draft.parents):
        ctx.error(draft.via.span, f"A recurrent cell ({draft.net.name}) carries the previous state of "
                  f"'{draft.name}': add {draft.name}[{ctx.time_var}-1] as a parent.")
    family = FAMILIES.get(draft.type)
    if family is None or not draft.parents:
        return
    for arg in draft.decl.args:
        if arg.key and arg.key.text in family.root_only and isinstance(draft.params.get(arg.key.text),
                                                                        int | float | tuple):
            ctx.error(arg.span, f"'{arg.key.text}' can be fixed only on a node without parents; the "
                      f"network of '{draft.name}' computes it from its parents.")


def add_inits(ctx: Context, spec: s.Spec, drafts: dict[str, Draft]) -> None:
    """`init h = 0`, then every `h[t-1]` must have one."""
    for stmt in stmts_of(spec, s.InitStmt):
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
    read_lagged: set[str] = set()
    lagged = [p for d in drafts.values() for p in (*d.parents, *d.guide_parents) if p.lag == 1]
    for parent in sorted(lagged, key=lambda p: p.span.start):
        if parent.name not in read_lagged:  # a missing init is reported once, at the first read
            read_lagged.add(parent.name)
            if drafts[parent.name].init_stmt is None:
                source = drafts[parent.name]
                drawn = f", or `~ {source.type}(...)`" if source.kind == "latent" and source.type in FAMILIES else ""
                ctx.error(parent.span, f"{parent.name}[{ctx.time_var}-1] is read at the first step, before "
                          f"'{parent.name}' has a value: add `init {parent.name} = 0` (or `= learned`{drawn}).")
    for draft in drafts.values():
        if draft.init_stmt is not None and draft.name not in read_lagged:
            ctx.warn(draft.init_stmt.span, f"The initial value of '{draft.name}' is never used: "
                     f"no edge reads {draft.name}[{ctx.time_var}-1].")


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
