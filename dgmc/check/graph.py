"""Whole-graph checks on the drafts: cycles in the model and in the guide, and the
warning for nodes that nothing observed depends on."""

from __future__ import annotations

from .. import order
from .context import Context
from .nodes import Draft


def check_cycles(ctx: Context, drafts: dict[str, Draft], rank: dict[str, int]) -> None:
    for guide in (False, True):
        edges = [(p.name, d.name, p.lag) for d in drafts.values()
                 for p in (d.guide_parents if guide else d.parents)]
        graph = order.build(drafts, edges)
        for cycle in order.find_cycles(graph, rank):
            closing = drafts[cycle[0]]
            parents = closing.guide_parents if guide else closing.parents
            span = next(p.span for p in parents if p.name == cycle[-2] and p.lag == 0)
            where = "The guide's nodes" if guide else "These nodes"
            ctx.error(span, f"{where} form a cycle: {' -> '.join(cycle)}. A directed graphical model "
                      "must be acyclic; to depend on the previous step, write x[t-1].")


def warn_unobserved(ctx: Context, drafts: dict[str, Draft]) -> None:
    edges = [(p.name, d.name, p.lag) for d in drafts.values() for p in d.parents]
    graph = order.build(drafts, edges)
    useful = order.ancestors_of(graph, [d.name for d in drafts.values() if d.kind == "observed"])
    for draft in drafts.values():
        if draft.name not in useful:
            ctx.warn(draft.decl.name.span, f"Nothing observed depends on '{draft.name}': it cannot be "
                     "learned from data, and distilling it changes no output.")
