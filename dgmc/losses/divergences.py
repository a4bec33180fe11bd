"""Divergences between a teacher's and a student's conditional, registered per
(divergence, family) pair: `DIVERGENCES[("kl", "Normal")](teacher_params, student_params)`.

Each returns the divergence per dimension, [batch, (steps,) size], for the factorized
families, or per event, [batch, (steps,)], for Categorical; `reduce` then applies the
term's documented reduction. Teacher parameters are constants (the caller detaches them);
all closed forms are written out so that each is testable against torch's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..families import FAMILIES
from ..lower.families import Params

Divergence = Callable[[Params, Params], Tensor]
DIVERGENCES: dict[tuple[str, str], Divergence] = {}


def register(name: str, *families: str) -> Callable[[Divergence], Divergence]:
    def add(fn: Divergence) -> Divergence:
        for family in families:
            DIVERGENCES[(name, family)] = fn
        return fn
    return add


@register("kl", "Normal")
def kl_normal(t: Params, s: Params) -> Tensor:
    ratio = (t["scale"] / s["scale"]) ** 2
    return 0.5 * (ratio + ((t["loc"] - s["loc"]) / s["scale"]) ** 2 - 1 - torch.log(ratio))


@register("kl", "Laplace")
def kl_laplace(t: Params, s: Params) -> Tensor:
    gap = (t["loc"] - s["loc"]).abs()
    return (torch.log(s["scale"] / t["scale"]) + gap / s["scale"]
            + t["scale"] / s["scale"] * torch.exp(-gap / t["scale"]) - 1)


@register("kl", "Bernoulli")
def kl_bernoulli(t: Params, s: Params) -> Tensor:
    p = torch.sigmoid(t["logits"])
    return (p * (F.logsigmoid(t["logits"]) - F.logsigmoid(s["logits"]))
            + (1 - p) * (F.logsigmoid(-t["logits"]) - F.logsigmoid(-s["logits"])))


@register("kl", "Categorical")
def kl_categorical(t: Params, s: Params) -> Tensor:
    log_t, log_s = F.log_softmax(t["logits"], -1), F.log_softmax(s["logits"], -1)
    return (log_t.exp() * (log_t - log_s)).sum(-1)


def _reverse(kl: Divergence) -> Divergence:
    return lambda t, s: kl(s, t)


for _family in FAMILIES:
    register("reverse_kl", _family)(_reverse(DIVERGENCES[("kl", _family)]))


@register("w2", "Normal")
def w2_normal(t: Params, s: Params) -> Tensor:
    """Squared 2-Wasserstein distance of two diagonal Gaussians, per dimension."""
    return (t["loc"] - s["loc"]) ** 2 + (t["scale"] - s["scale"]) ** 2


@register("bce", "Bernoulli")
def bce_bernoulli(t: Params, s: Params) -> Tensor:
    """Cross-entropy of the student's logits against the teacher's probabilities (the
    authors' HM latent loss): KL plus the teacher's entropy, the same gradient."""
    return F.binary_cross_entropy_with_logits(s["logits"], torch.sigmoid(t["logits"]), reduction="none")


def mse(t: Params, s: Params) -> Tensor:
    """Squared error of every parameter, summed over the family's parameters."""
    return sum((t[k] - s[k]) ** 2 for k in t)


for _family in FAMILIES:
    register("mse", _family)(mse)


Reduction = str
REDUCTIONS: dict[Reduction, str] = {
    "sum": "summed over the node's dimensions and time steps, averaged over the batch",
    "mean": "averaged over the node's dimensions, summed over time steps, averaged over the batch",
}
DEFAULT_REDUCTION = {"w2": "mean"}
"""w2 averages over dimensions, as the authors' VAE code did; every other divergence sums,
so that a term is the divergence of the node's whole distribution."""


def reduce(values: Tensor, reduction: Reduction, event: bool) -> Tensor:
    """[batch, (steps,) (size)] -> a scalar. `event` is False when the last dimension
    holds per-dimension values (factorized families)."""
    if not event:
        values = values.mean(-1) if reduction == "mean" else values.sum(-1)
    if values.dim() > 1:
        values = values.sum(-1)
    return values.mean()
