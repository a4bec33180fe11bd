"""Whole-graph checks on the drafts: cycles in the model and in the guide, and the
warning for nodes that nothing observed depends on."""

from __future__ import annotations

from .. import ir
from ..ir import order
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
            must = "The guide must be acyclic too" if guide else "A directed graphical model must be acyclic"
            source = drafts[cycle[-2]].decl
            if source.time_var is not None:  # only a time-indexed node has a previous step
                must += f"; to depend on the previous step, write {source.name.text}[{source.time_var.text}-1]"
            ctx.error(span, f"{where} form a cycle: {' -> '.join(cycle)}. {must}.")
    if not ctx.failed:
        _check_inference_cycles(ctx, drafts, rank)
    if not ctx.failed:
        _check_directions(ctx, drafts, rank)


def _check_inference_cycles(ctx: Context, drafts: dict[str, Draft], rank: dict[str, int]) -> None:
    """Inference computes each latent from its guide parents and each deterministic node
    from its generative parents (`dgmc.ir.order.inference_edges`); a guide that reads a
    state computed from the very latent it infers (q(z | h) with z -> h) cannot run."""
    for cycle in order.find_cycles(order.build(drafts, _inference_edges(drafts)), rank):
        latent = next(drafts[n] for n in cycle if drafts[n].kind == "latent")
        reads = next(p for p in latent.guide_parents if p.name in cycle and p.lag == 0)
        ctx.error(reads.span, f"The guide of '{latent.name}' reads '{reads.name}', which is computed from "
                  f"'{latent.name}' itself ({' -> '.join(cycle)}): inference could never start. "
                  "Read an earlier step or other nodes.")


def warn_unobserved(ctx: Context, drafts: dict[str, Draft]) -> None:
    """Nodes nothing observed depends on: the model never uses them, and nothing learns
    them from data; a state only guides read (`order.guide_side`) is the guide's, trained
    with it, and an input only guides read (a mask of missing values) informs inference, so
    neither is one of them."""
    edges = [(p.name, d.name, p.lag) for d in drafts.values() for p in d.parents]
    graph = order.build(drafts, edges)
    useful = order.ancestors_of(graph, [d.name for d in drafts.values() if d.kind == "observed"])
    guide_edges = [(p.name, d.name, p.lag) for d in drafts.values() for p in d.guide_parents]
    useful |= order.guide_side({d.name: d.kind for d in drafts.values()}, edges, guide_edges)
    useful |= {p for p, _, _ in guide_edges if drafts[p].kind == "input"}  # given to the guide (a mask)
    for draft in drafts.values():
        if draft.name not in useful and draft.kind == "input":
            ctx.warn(draft.decl.name.span, f"Nothing observed depends on the input '{draft.name}': "
                     "the model never uses it.")
        elif draft.name not in useful:
            ctx.warn(draft.decl.name.span, f"Nothing observed depends on '{draft.name}': it cannot be "
                     "learned from data, and distilling it changes no output.")


def _check_directions(ctx: Context, drafts: dict[str, Draft], rank: dict[str, int]) -> None:
    """Time-indexed nodes run in scans, forward or backward; a group that reads both
    earlier and later steps of itself has neither (`order.both_ways`), in the model or in
    inference (a guide over the model's states)."""
    timed = [d.name for d in drafts.values() if d.timed]
    passes = {"model": [(p.name, d.name, p.lag) for d in drafts.values() for p in d.parents if not d.in_guide],
              "guide": _inference_edges(drafts)}
    reported: set[tuple[str, str, int]] = set()
    for where, edges in passes.items():
        for cycle in order.both_ways(order.build(drafts, edges), timed, rank):
            ahead = next(e for e in cycle if e[2] < 0)
            if ahead in reported:
                continue
            reported.add(ahead)
            var = ctx.time_var
            node = drafts[ahead[1]]
            span = next(p.span for p in (*node.parents, *node.guide_parents) if (p.name, p.lag) == ahead[::2])
            unrolled = ", ".join(f"{ir.Parent(name=p, lag=lag, span=span).ref(var) if lag else f'{p}[{var}]'} -> "
                                 f"{c}[{var}]" for p, c, lag in cycle)
            ctx.error(span, f"{'In the guide, the' if where == 'guide' else 'The'} cycle {unrolled} reads both "
                      "earlier and later steps, so neither a forward nor a backward scan can compute it. Read one "
                      "direction within a group of nodes, or carry the other through a state of its own.")


def _inference_edges(drafts: dict[str, Draft]) -> list[tuple[str, str, int]]:
    """Inference's edges: a latent from its guide parents, a deterministic node from its
    own (`dgmc.ir.order.inference_edges`)."""
    return [(p.name, d.name, p.lag) for d in drafts.values()
            for p in (d.guide_parents if d.kind == "latent" else d.parents if d.kind == "deterministic" else ())]
