"""The generated distillation loss, L = L_sd + lambda * sum_i L_z,i (METHOD.md): one
surrogate term per observed node and one latent term per latent node, read off the graph
IR. `describe` prints it as `dgmc compile --emit losses` shows it.

Methods (`Term`s are the same; what the student is fed differs, see `dgmc.distill`):
- ours: student run on the teacher's noise; observed nodes with children teacher-forced;
- local: every conditional of the student fed the teacher's parent values; all terms
  weighted 1, the sum over nodes of the local-distillation baseline;
- scratch: no distillation terms; the student is trained on data with the teacher's
  objective.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ir
from .divergences import DEFAULT_REDUCTION, DIVERGENCES, REDUCTIONS


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


def generate(model: ir.Model, method: str = "ours", lam: float | None = None) -> tuple[Term, ...]:
    """The terms of the loss, in topological order; latent terms of `ours` weighted by
    `lam` (default: the spec's first lambda)."""
    lam = model.distill.lambdas[0] if lam is None else lam
    terms = []
    for name in model.order:
        node = model.node(name)
        if node.kind not in ("observed", "latent"):
            continue
        divergence = model.distill.divergences[name]
        assert (divergence, node.type) in DIVERGENCES, (divergence, node.type)
        weight = 1.0 if node.kind == "observed" or method == "local" else lam
        terms.append(Term(
            node=name, kind="surrogate" if node.kind == "observed" else "latent", family=node.type,
            divergence=divergence, weight=weight, reduction=DEFAULT_REDUCTION.get(divergence, "sum"),
            timed=node.timed,
        ))
    return tuple(terms)


def describe(model: ir.Model, method: str = "ours", lam: float | None = None) -> str:
    """The loss as a formula, then one line per term."""
    terms = generate(model, method, lam)
    if method == "scratch":
        return f"# {model.name}, scratch: the student minimises the teacher's objective ({model.train.objective}) " \
               "on data; no distillation terms.\n"
    surrogate = [t for t in terms if t.kind == "surrogate"]
    latent = [t for t in terms if t.kind == "latent"]
    weight = "" if method == "local" or not latent else f"{latent[0].weight:g} * "
    formula = " + ".join(f"L_sd[{t.node}]" for t in surrogate) or "0"
    if latent:
        formula += f" + {weight}(" + " + ".join(f"L_z[{t.node}]" for t in latent) + ")"
    fed = ("each student conditional fed the teacher's parent values" if method == "local" else
           "student run on the teacher's noise eps; observed nodes with children teacher-forced")
    lines = [f"# {model.name}, method {method}: {fed}", f"L = {formula}", ""]
    width = max(len(t.node) for t in terms) if terms else 4
    for t in terms:
        name = ("L_sd" if t.kind == "surrogate" else "L_z") + f"[{t.node}]"
        given = ("| eps, inputs" if model.of_kind("input") else "| eps") if method == "ours" else "| teacher's parents"
        lines.append(f"{name:<{width + 6}} = E {t.divergence}(p_T({t.node} {given}), p_S({t.node} {given}))"
                     f"  weight {t.weight:g}, {t.family}, {REDUCTIONS[t.reduction]}")
    if not latent:
        lines += ["", "No latent nodes: L is vanilla knowledge distillation of the outputs."]
    return "\n".join(lines) + "\n"
