"""Syntax IR -> graph IR: every check of a spec, with all errors collected.

The stages run in file-independent order (declarations, edges and guides, initial
values, shapes along the edges, data, recipes, cycles); each reports through the shared
`Context` and carries on, so one run reports every mistake. Only a spec with no errors
becomes a `Model`. `load` runs the front end and the checker together (`dgmc.load`).
"""

from __future__ import annotations

from .. import ir
from ..core.base import gc_paused
from ..core.errors import DgmError, Diagnostic
from ..frontend import syntax as s
from ..ir import order
from .conditionals import add_conditionals
from .context import Context, stmts_of
from .data import check_data
from .edges import add_edges, add_inits, declare_networks, default_network
from .graph import check_cycles, warn_unobserved
from .nodes import declare_consts, declare_nodes, declare_time
from .recipes import check_bound, check_distill, check_train
from .shapes import check_shapes, check_shared


@gc_paused
def check(spec: s.Spec, source: str, filename: str) -> tuple[ir.Model, list[Diagnostic]]:
    """The checked model and its warnings; raises `DgmError` with every error found."""
    ctx = Context()
    ctx.not_keyword(spec.name)
    declare_consts(ctx, spec)
    time = declare_time(ctx, spec)
    drafts = declare_nodes(ctx, spec, time)
    declare_networks(ctx, spec)
    default_net = default_network(ctx, spec)
    add_edges(ctx, spec, drafts, time)
    add_conditionals(ctx, spec, drafts, time)
    add_inits(ctx, spec, drafts)
    check_shapes(ctx, drafts, default_net)
    check_shared(ctx, drafts)
    data = check_data(ctx, spec, drafts, time)
    # A data statement that did not check is reported there, not again as a missing one.
    train = check_train(ctx, spec, drafts, bool(stmts_of(spec, s.DataStmt)))
    check_bound(ctx, spec, drafts, data, train)
    distill = check_distill(ctx, spec, drafts, train)
    rank = {name: i for i, name in enumerate(drafts)}
    check_cycles(ctx, drafts, rank)
    if ctx.failed:
        raise DgmError(ctx.diagnostics, source, filename)
    warn_unobserved(ctx, drafts)
    nodes = tuple(d.freeze(default_net) for d in drafts.values())
    graph = order.build(drafts, [(p.name, n.name, p.lag) for n in nodes for p in n.parents])
    model = ir.Model(
        name=spec.name.text, consts=ctx.consts, time=time, nodes=nodes,
        order=tuple(order.topological_order(graph, rank)), data=data, train=train,
        distill=distill, span=spec.span,
    )
    order.lint(model)
    model._source = (source, filename)
    return model, ctx.diagnostics
