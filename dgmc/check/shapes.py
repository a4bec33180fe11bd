"""Shapes along the edges: every network that reads shapes (a conv encoder, a decoder, a
plugin's) is asked whether it can map its parents' shapes to its node's output, in the
model and in the guide; a refusal is an error at the `via`, printing both shapes."""

from __future__ import annotations

import math

from .. import ir
from ..families import FAMILIES, param_spec
from ..frontend import syntax as s
from ..networks import NETWORKS, Shape, output_shape
from .context import Context
from .nodes import UNSET, Draft


def check_shapes(ctx: Context, drafts: dict[str, Draft], default_net: ir.Network) -> None:
    for draft in drafts.values():
        if draft.parents and draft.cond is None:
            _check(ctx, drafts, draft, draft.net or default_net, draft.parents, draft.via, guide=False)
        if draft.guide_parents and draft.guide_cond is None:
            _check(ctx, drafts, draft, draft.guide_net or default_net, draft.guide_parents, draft.guide_via, guide=True)


def check_shared(ctx: Context, drafts: dict[str, Draft]) -> None:
    """Every conditional that names a shared network uses its one set of weights, so all
    read the same input shapes and give the same output; and they all belong to the model,
    or all to the guide (whose networks are trained and distilled apart)."""
    first: dict[str, tuple[Draft, bool, tuple, Shape]] = {}
    uses = [(d, d.net, d.parents, d.via, False) for d in drafts.values()]
    uses += [(d, d.guide_net, d.guide_parents, d.guide_via, True) for d in drafts.values()]
    for draft, net, parents, via, guide in uses:
        if net is None or not net.shared or via is None or draft.size is None:
            continue
        inputs = [drafts[p.name] for p in parents]
        out = _output(draft, guide)
        if out is None or any(d.size is None for d in inputs):
            continue
        shapes = tuple(d.dims for d in inputs)
        reads = shapes if NETWORKS[net.name].shaped else (sum(math.prod(s) for s in shapes),)
        seen = first.setdefault(net.shared, (draft, guide, reads, out))
        other, other_guide, other_reads, other_out = seen
        where = "the guide" if other_guide else "the model"
        if guide != other_guide:
            ctx.error(via.span, f"The shared network '{net.shared}' serves {where} ('{other.name}'), so it "
                      f"cannot also {'infer' if guide else 'generate'} '{draft.name}': the model's and the "
                      "guide's networks are trained and distilled apart.")
        elif (reads, out) != (other_reads, other_out):
            ctx.error(via.span, f"The shared network '{net.shared}' maps {_shapes(other_reads)} to "
                      f"{_shapes((other_out,))} for '{other.name}', but '{draft.name}' needs "
                      f"{_shapes(reads)} to {_shapes((out,))}: the conditionals that share a network read "
                      "the same shapes and give the same.")


def _shapes(shapes: tuple) -> str:
    return ", ".join("[" + ", ".join(map(str, s if isinstance(s, tuple) else (s,))) + "]" for s in shapes)


def _check(ctx: Context, drafts: dict[str, Draft], draft: Draft, net: ir.Network | None,
           parents: list[ir.Parent], via: s.Network | None, guide: bool) -> None:
    kind = NETWORKS.get(net.name) if net is not None else None
    if kind is None or kind.fits is None or draft.size is None:
        return
    inputs = [drafts[p.name] for p in parents]
    if any(d.size is None for d in inputs):
        return  # reported at its declaration
    in_shapes = tuple(d.dims for d in inputs)
    out = _output(draft, guide)
    if out is None:
        return
    why = kind.fits(net, in_shapes, out)
    if why:
        given = ", ".join(f"{d.name} [{', '.join(map(str, s))}]" for d, s in zip(inputs, in_shapes, strict=True))
        role = "the guide of" if guide else "the parameters of"
        span = via.span if via is not None else draft.decl.name.span
        ctx.error(span, f"{net.label()} cannot compute {role} '{draft.name}' "
                  f"({draft.type}[{', '.join(map(str, draft.dims))}], output [{', '.join(map(str, out))}]) "
                  f"from {given}: {why}.")


def _output(draft: Draft, guide: bool) -> Shape | None:
    """What the network gives: a deterministic state, or the computed parameters of the
    node's family (all of them in the guide), stacked on an image's channels."""
    family = FAMILIES.get(draft.type)
    if family is None:
        return (draft.size,) if draft.kind == "deterministic" else None
    if guide:
        computed = family.params
    else:
        params = {k: ("computed" if v == UNSET else v) for k, v in draft.params.items()}
        computed = param_spec(family, params).computed
    return output_shape(draft.dims, family.raw_size(draft.size, computed))
