"""What generated code calls at run time, and nothing else: the printed module of
`dgmc compile --emit code` imports this module only, and a compiled model's generated
functions run with its names in scope (`NAMESPACE`).

The written-out forms compute exactly the operations torch.distributions performs (the
tests hold them equal, bit for bit); the code generator (`generate`, `generate_losses`)
decides where each is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch
from torch import Tensor
from torch.distributions import Distribution

from ..families import Family, Params
from ..losses.divergences import divergence_form
from .trace import Trace, stack_params


class Model(Protocol):
    """What `kl_per_row` reads of a compiled model (a `CompiledModel`, which this module
    does not import: the module imports this one)."""

    families: Mapping[str, Family]

    def distribution(self, node: str, params: Params) -> Distribution: ...

__all__ = ["Trace", "bernoulli_nll", "divergence_form", "kl_per_row", "kl_standard_normal", "stack_params"]


def bernoulli_nll(logits, value):
    """-log Bernoulli(value; logits) per row, as torch computes it: Bernoulli.log_prob is
    -binary_cross_entropy_with_logits, and Independent sums the last dimension."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)


def kl_standard_normal(loc, scale):
    """KL(N(loc, scale) || N(0, 1)) per row, as torch computes it with a N(0, 1) prior."""
    var_ratio = scale.pow(2)
    return (0.5 * (var_ratio + loc.pow(2) - 1 - var_ratio.log())).sum(-1)


def kl_per_row(model: Model, node: str, q: Trace, p: Trace) -> Tensor:
    """KL(q || p) of one latent per batch row, summed over dims and time steps: a
    discrete family's own closed form (torch's saturates: a probability that rounds to 1
    in float32 makes its KL infinite, though the logits say otherwise), else torch's
    closed form for the pair where it has one, else a one-sample estimate on q's value."""
    family = model.families[node]
    if family.discrete and "kl" in family.closed:
        kl = family.closed["kl"](family, q.params[node], p.params[node])
        return kl.flatten(1).sum(1) if kl.dim() > 1 else kl
    q_dist = model.distribution(node, q.params[node])
    p_dist = model.distribution(node, p.params[node])
    try:
        kl = torch.distributions.kl_divergence(q_dist, p_dist)
    except NotImplementedError:
        value = q.values[node]
        kl = q_dist.log_prob(value) - p_dist.log_prob(value)
    return kl.sum(-1) if kl.dim() > 1 else kl


NAMESPACE: dict[str, object] = {"torch": torch, **{name: globals()[name] for name in __all__}}
"""The names generated code may use."""
