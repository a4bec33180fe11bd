"""The generated distillation loss, L = L_sd + lambda * sum_i L_z,i (the paper's): one
surrogate term per observed node and one latent term per latent node, read off the graph
IR. `describe` prints it as `dgmc compile --emit losses` shows it.

The terms are the same for every method (`dgmc.losses.methods`); what the student is fed, and
whether lambda weighs the latent terms, differ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import ir
from ..families import FAMILIES
from . import elbo
from .divergences import DIVERGENCES, REDUCTIONS, is_closed
from .methods import METHODS


@dataclass(frozen=True)
class Term:
    node: str
    kind: str
    """`surrogate` (an observed node, part of L_sd) or `latent` (L_z of a latent node)."""
    family: str
    divergence: str
    weight: float
    reduction: str
    timed: bool
    closed: bool
    """Exact (a closed form) rather than a Monte Carlo estimate on the shared noise."""


def generate(model: ir.Model, method: str = "ours", lam: float | None = None) -> tuple[Term, ...]:
    """The terms of the loss, in topological order; latent terms of `ours` weighted by
    `lam` (default: the spec's first lambda). An initial distribution with learned
    parameters (`init z ~ Normal`) is a latent of its own, `z[0]`, with the node's
    divergence; a fixed one is the same in teacher and student and needs no term."""
    lam = model.distill.lambdas[0] if lam is None else lam
    latent_weight = lam if METHODS[method].weighs_latents else 1.0
    terms = [_term(model, node, model.initial_name(node.name), latent_weight, timed=False)
             for node in model.initials() if "learned" in node.initial.values()]
    for name in model.order:
        node = model.node(name)
        if node.kind in ("observed", "latent"):
            weight = 1.0 if node.kind == "observed" else latent_weight
            terms.append(_term(model, node, name, weight, node.timed))
    return tuple(terms)


def guide_terms(model: ir.Model, method: str = "ours") -> tuple[Term, ...]:
    """The guide's terms (of a `fully_guided` model): the terms of `generate` on the
    inference graph of every node with a guide (latents, and observed nodes the guide
    predicts), each weighted 1 (there is no surrogate to weigh them against); a latent
    summed out of the model has no guide, so no term."""
    guided = {n.name for n in model.of_kind("latent", "observed") if n.guide is not None}
    return tuple(replace(t, weight=1.0) for t in generate(model, method) if t.node in guided)


def guide_fed(model: ir.Model, method: str) -> tuple[str, ...]:
    """The teacher guide's latents the student's guide is fed under `method`: those of
    the nodes the method feeds (`local`: every latent, each guide conditional fed the
    teacher guide's parents; `ours`: none, the student's guide runs on its own)."""
    latents = {n.name for n in model.of_kind("latent")}
    return tuple(n for n in METHODS[method].feeds(model) if n in latents)


def _term(model: ir.Model, node: ir.Node, name: str, weight: float, timed: bool) -> Term:
    divergence = model.distill.divergences[node.name]
    family = FAMILIES[node.type]
    assert divergence in family.divergences, (divergence, node.type)
    return Term(node=name, kind="surrogate" if node.kind == "observed" else "latent", family=node.type,
                divergence=divergence, weight=weight, reduction=DIVERGENCES[divergence].reduction,
                timed=timed, closed=is_closed(family, divergence))


def describe(model: ir.Model, method: str = "ours", lam: float | None = None) -> str:
    """The loss as a formula, then one line per term, each marked exact or estimated;
    for a guided model, the ELBO's terms after it (`elbo.describe`)."""
    text = _describe_distillation(model, method, lam)
    return text + "\n" + elbo.describe(model) if model.has_elbo() else text


def _describe_distillation(model: ir.Model, method: str, lam: float | None) -> str:
    how = METHODS[method]
    if not how.distills:
        return f"# {model.name}, {method}: the student minimises the teacher's objective ({model.train.objective}) " \
               "on data; no distillation terms.\n"
    terms = generate(model, method, lam)
    surrogate = [t for t in terms if t.kind == "surrogate"]
    latent = [t for t in terms if t.kind == "latent"]
    weight = f"{latent[0].weight:g} * " if how.weighs_latents and latent else ""
    formula = " + ".join(f"L_sd[{t.node}]" for t in surrogate) or "0"
    if latent:
        formula += f" + {weight}(" + " + ".join(f"L_z[{t.node}]" for t in latent) + ")"
    lines = [f"# {model.name}, method {method}: {how.fed}", f"L = {formula}", ""]
    width = max(len(t.node) for t in terms) if terms else 4
    given = how.given + (", inputs" if model.of_kind("input") and how.given == "| eps" else "")
    for t in terms:
        name = ("L_sd" if t.kind == "surrogate" else "L_z") + f"[{t.node}]"
        exact = "closed form" if t.closed else "Monte Carlo on the shared noise"
        lines.append(f"{name:<{width + 6}} = E {t.divergence}(p_T({t.node} {given}), p_S({t.node} {given}))"
                     f"  weight {t.weight:g}, {t.family}, {exact}, {REDUCTIONS[t.reduction]}")
    if not latent:
        lines += ["", "No latent nodes: L is vanilla knowledge distillation of the outputs."]
    return "\n".join(lines) + "\n"
