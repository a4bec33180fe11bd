"""`dgmc check --pedantic`: warnings about a distillation that is valid but likely not
what was meant (as stanc's --warn-pedantic warns about valid but suspicious models).

- a student as large as its teacher (linear networks do not shrink with the width, and a
  small width can round every layer back up);
- a lambda list that no run uses (lambda weighs the latent terms of `ours` and `staged`,
  and neither is among the methods);
- a divergence estimated through a discrete sample (its estimate carries no gradient
  through the sample: reverse_kl without a closed form on a discrete family);
- a discrete latent under `ours` with lambda 0: nothing trains its conditional (its
  value passes no gradient, and its own term weighs 0).

Counting parameters compiles the teacher and each student, so this imports torch.
"""

from __future__ import annotations

from .. import ir
from ..core.errors import Diagnostic
from ..families import FAMILIES
from ..losses.divergences import DIVERGENCES, is_closed
from ..losses.methods import METHODS


def pedantic(model: ir.Model) -> list[Diagnostic]:
    recipe = model.distill
    out: list[Diagnostic] = []

    def warn(message: str, span=recipe.span) -> None:
        out.append(Diagnostic(severity="warning", phase="semantic", span=span, message=message))

    teacher, students = _parameters(model)
    for width, count in students.items():
        if count >= teacher:
            warn(f"The student of width {width:g} has {count:,} generative parameters, as many as the teacher "
                 f"({teacher:,}) or more: nothing is compressed (linear networks do not shrink, and small hidden "
                 "layers round up to 1 unit).")
    weighing = [m for m, how in METHODS.items() if how.weighs_latents]
    if len(recipe.lambdas) > 1 and not set(weighing) & set(recipe.methods):
        warn(f"lambda lists {len(recipe.lambdas)} values, but only {' and '.join(weighing)} use lambda and the "
             f"methods are {', '.join(recipe.methods)}: no run uses them.")
    for node in model.of_kind("latent", "observed"):
        family = FAMILIES[node.type]
        divergence = recipe.divergences[node.name]
        if family.discrete and DIVERGENCES[divergence].samples_student and not is_closed(family, divergence):
            warn(f"Node '{node.name}' ({node.type}) is distilled by {divergence}, estimated on the student's own "
                 "discrete sample, through which no gradient passes: use kl (or bce for Bernoulli).", node.span)
    discrete = [n.name for n in model.of_kind("latent") if FAMILIES[n.type].discrete]
    throughout = [m for m in recipe.methods if METHODS[m].lambda_throughout]
    if discrete and throughout and 0 in recipe.lambdas:
        which = f"Latents {', '.join(discrete)} are" if len(discrete) > 1 else f"Latent {discrete[0]} is"
        warn(f"{which} discrete: under {' and '.join(throughout)} with lambda 0 "
             "nothing trains their conditionals (a discrete value passes no gradient, and their own terms weigh "
             "0), so that student keeps them as initialised.")
    return out


def _parameters(model: ir.Model) -> tuple[int, dict[float, int]]:
    """The teacher's generative parameter count and each student width's."""
    from ..lower import compile_model

    def count(width: float | None) -> int:
        return sum(p.numel() for p in compile_model(model, width).generative_parameters())

    return count(None), {width: count(width) for width in model.distill.widths}
