"""The average effect of one node on another under intervention, for models whose guide
infers the latents from the observed values (the causal effect VAE, Louizos et al. 2017):

    ATE = mean over rows of  E[outcome | z, do(treatment = 1)] - E[outcome | z, do(treatment = 0)],

z drawn from the guide given each row's observed values, the outcome's mean taken from
its conditional under each setting of the treatment (nothing else recomputed: the
treatment's other descendants keep their values unless they lie between it and the
outcome, which the generative pass recomputes from the set value).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ..core.errors import UserError
from ..lower import CompiledModel


def average_effect(module: CompiledModel, data: Mapping[str, Tensor], treatment: str, outcome: str,
                   seed: int = 0, values: tuple[float, float] = (1.0, 0.0)) -> float:
    """The mean difference of the outcome's conditional mean between the treatment set to
    `values[0]` and to `values[1]`, the latents inferred by the guide from `data`."""
    model = module.ir
    for name, kinds in ((treatment, ("observed", "input")), (outcome, ("observed",))):
        if not model.has(name) or model.node(name).kind not in kinds:
            raise UserError(f"'{name}' is not an {' or '.join(kinds)} node of '{model.name}'.")
    if not model.fully_guided():
        raise UserError(f"'{model.name}' has no guide to infer its latents with.")
    latents = [n.name for n in model.of_kind("latent")]
    with torch.no_grad():
        q = module.infer(data, generator=torch.Generator(module._anchor.device).manual_seed(seed))
        given = {**{n: q.values[n] for n in latents}, **{n: v for n, v in data.items() if model.has(n)
                                                          and model.node(n).kind == "input"}}
        means = []
        for value in values:
            set_to = torch.full_like(data[treatment], value)
            p = module.run({}, given={**given, treatment: set_to},
                           generator=torch.Generator(module._anchor.device).manual_seed(seed))
            means.append(module.families[outcome].mean(p.params[outcome]))
    return float((means[0] - means[1]).mean())
