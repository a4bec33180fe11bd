"""Divergences between a teacher's and a student's conditional: the registry `DIVERGENCES`
of divergence kinds, and `divergence`, which evaluates one for a family.

A family lists the divergences that fit it (`Family.divergences`) and gives the closed
forms it has (`Family.closed`). Where it has none, a kind's Monte Carlo estimate on the
shared noise is used: with eps the noise the teacher drew,

    kl:          log p_T(z_T) - log p_S(z_T),   z_T = g(eps, teacher's params)
    reverse_kl:  log p_S(z_S) - log p_T(z_S),   z_S = g(eps, student's params)

Each is unbiased for its KL per row; its variance is that of the log-ratio under the
sampling distribution, divided by the batch (it vanishes as the student approaches the
teacher, since the log-ratio tends to 0 everywhere). `mse` needs no family knowledge.

Values are per dimension, [batch, (steps,) size], for factorized families, or per
event, [batch, (steps,)], for event families; `reduce` applies the term's reduction.
Teacher parameters are constants (the caller detaches them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.registry import Registry
from ..families import Family, Params

if TYPE_CHECKING:
    from torch import Tensor

Estimate = Callable[[Family, Params, Params, "Tensor"], "Tensor"]


@dataclass(frozen=True)
class DivergenceKind:
    """A divergence a spec can name: what it is, its default reduction, and how it is
    estimated for a family without its closed form (None: only closed forms)."""

    name: str
    doc: str
    reduction: str = "sum"
    estimate: Estimate | None = None
    zero_when_equal: bool = False
    """Exactly 0 between equal distributions (a divergence, not a cross-entropy): a node
    whose parameters are all fixed, the same in teacher and student, needs no term."""
    reverse_of: str | None = None
    """The divergence whose closed form, teacher and student swapped, is this one's
    (reverse_kl: kl), so a family's forward closed form serves both directions."""
    from_params: bool = False
    """Computed from the two parameter sets alone (mse): exact for every family, needing
    no noise, its values per parameter entry even for an event family."""
    measured_as: str | None = None
    """The divergence fidelity measures in its place, so that 0 means perfect imitation
    (bce: kl, the same minimiser less the teacher's entropy)."""
    samples_student: bool = False
    """Estimated on the student's own sample (reverse_kl): on a discrete family no
    gradient passes through it (`check --pedantic` warns)."""


def _kl_estimate(family: Family, t: Params, s: Params, eps: Tensor) -> Tensor:
    z = family.reparam(eps, t).detach()
    return family.log_density(t, z) - family.log_density(s, z)


def _reverse_kl_estimate(family: Family, t: Params, s: Params, eps: Tensor) -> Tensor:
    z = family.reparam(eps, s)
    return family.log_density(s, z) - family.log_density(t, z)


def _mse(family: Family, t: Params, s: Params, eps: Tensor) -> Tensor:
    """Squared error of every parameter, summed over the family's parameters."""
    return sum((t[k] - s[k]) ** 2 for k in t)


DIVERGENCES: Registry[DivergenceKind] = Registry("divergence")
for _kind in (
    DivergenceKind("kl", "KL(teacher || student): closed form where the family has one, else estimated",
                   estimate=_kl_estimate, zero_when_equal=True),
    DivergenceKind("reverse_kl", "KL(student || teacher): closed form where the family has one, else estimated",
                   estimate=_reverse_kl_estimate, zero_when_equal=True, reverse_of="kl", samples_student=True),
    DivergenceKind("w2", "squared 2-Wasserstein distance (Normal)", reduction="mean", zero_when_equal=True),
    DivergenceKind("bce", "binary cross-entropy of student logits against teacher probabilities (Bernoulli)",
                   measured_as="kl"),
    DivergenceKind("mse", "squared error between the two parameter vectors", estimate=_mse, zero_when_equal=True,
                   from_params=True),
):
    DIVERGENCES.register(_kind.name, _kind, origin="dgmc")


def is_closed(family: Family, name: str) -> bool:
    """Whether the term is exact (a closed form, or mse on the parameters) rather than a
    Monte Carlo estimate on the shared noise."""
    if name in family.closed:
        return True
    kind = DIVERGENCES[name]
    return kind.reverse_of in family.closed or kind.from_params


def divergence(family: Family, name: str, t: Params, s: Params, eps: Tensor | None) -> Tensor:
    """The divergence `name` between teacher and student for one node, per dimension
    (per event); `eps` is the teacher's noise for the node (for estimates)."""
    return divergence_form(family, name)(t, s, eps)


def divergence_form(family: Family, name: str) -> Callable[[Params, Params, Tensor | None], Tensor]:
    """How `divergence` computes `name` for `family`, decided once: its closed form, the
    reverse of the forward closed form, or the kind's estimate on the teacher's noise.
    Generated distillation code binds it before the first step."""
    if name in family.closed:
        closed = family.closed[name]
        return lambda t, s, eps: closed(family, t, s)
    kind = DIVERGENCES[name]
    if kind.reverse_of in family.closed:
        forward = family.closed[kind.reverse_of]
        return lambda t, s, eps: forward(family, s, t)
    estimate = kind.estimate
    if estimate is None or name not in family.divergences:
        raise ValueError(f"the divergence {name} does not fit {family.name}")

    def estimated(t: Params, s: Params, eps: Tensor | None) -> Tensor:
        if eps is None and not kind.from_params:
            raise ValueError(f"estimating {name} for {family.name} needs the teacher's noise")
        return estimate(family, t, s, eps)
    return estimated


REDUCTIONS: dict[str, str] = {
    "sum": "summed over the node's dimensions and time steps, averaged over the batch",
    "mean": "averaged over the node's dimensions, summed over time steps, averaged over the batch",
}
"""w2 averages over dimensions, as the authors' VAE code did; every other divergence sums,
so that a term is the divergence of the node's whole distribution."""


def reduce(values: Tensor, reduction: str, event: bool) -> Tensor:
    """[batch, (steps,) (size)] -> a scalar. `event` is False when the last dimension
    holds per-dimension values (factorized families)."""
    if not event:
        values = values.mean(-1) if reduction == "mean" else values.sum(-1)
    if values.dim() > 1:
        values = values.sum(-1)
    return values.mean()
