"""The objectives' registry and options: a constant KL weight (`beta`, the beta-VAE of
Higgins et al. 2017) and objectives registered from Python."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.core.registry import RegistryError
from dgmc.lower import compile_model
from dgmc.training.loop import fit
from dgmc.training.objectives import OBJECTIVES, Objective, elbo

ROOT = Path(__file__).resolve().parents[1]
BETA_VAE = (ROOT / "specs/vae.dgm").read_text().replace("warmup = 500)", "warmup = 4, beta = 4)")


def test_beta_weighs_every_kl_term_times_the_warm_up() -> None:
    """`train elbo(beta = 4, warmup = 4)`: the KL weight is 4 x the ramp min(1, step / 4),
    so 1, 2, 3, 4, 4 over five steps; the loss is nll + weight x kl and the logged -ELBO
    the true one."""
    model = dgmc.loads(BETA_VAE)
    assert model.train.beta == 4
    seen: list[float] = []

    def recorded(module, batch, generator=None, beta=1.0, free_bits=0.0):
        seen.append(beta)
        loss, terms = elbo(module, batch, generator, beta, free_bits)
        torch.testing.assert_close(loss.detach(), terms["nll[x]"] + beta * terms["kl[z]"])
        torch.testing.assert_close(terms["-elbo"], terms["nll[x]"] + terms["kl[z]"])
        return loss, terms

    original = OBJECTIVES["elbo"]
    OBJECTIVES.register("elbo", Objective("elbo", recorded, original.doc, latents=True, options=original.options),
                        replace=True)
    try:
        torch.manual_seed(0)
        data = {"x": torch.bernoulli(torch.full((64, 64), 0.3))}
        recipe = model.train.model_copy(update={"batch": 16})
        fit(compile_model(model), recipe, data, steps=5, seed=0, progress=False)
    finally:
        OBJECTIVES.register("elbo", original, replace=True)
    assert seen == [1.0, 2.0, 3.0, 4.0, 4.0]


def test_an_objective_registered_from_python_trains_a_spec() -> None:
    """`dgmc.register_objective`: a spec names it in `train`, the checker knows its options,
    and training calls it."""
    calls: list[int] = []

    def half_elbo(module, batch, generator=None, beta=1.0):
        calls.append(1)
        loss, terms = elbo(module, batch, generator, beta)
        return 0.5 * loss, terms

    objective = dgmc.register_objective(Objective("half_elbo", half_elbo, "half the -ELBO, for a test", latents=True,
                                                  discrete_latents=False, options=("warmup",)))
    try:
        text = (ROOT / "specs/vae.dgm").read_text().replace("train elbo(", "train half_elbo(")
        model = dgmc.loads(text)
        assert model.train.objective == "half_elbo" and OBJECTIVES.origin_of("half_elbo") == "python"
        fit(compile_model(model), model.train.model_copy(update={"batch": 8}),
            {"x": torch.bernoulli(torch.full((16, 64), 0.3))}, steps=2, seed=0, progress=False)
        assert len(calls) == 2
        with pytest.raises(dgmc.DgmError, match="free_bits"):
            dgmc.loads(text.replace("warmup = 500", "free_bits = 1"))  # not one of its options
        with pytest.raises(RegistryError):
            dgmc.register_objective(objective)  # the name is taken
        with pytest.raises(RegistryError, match=r"takes a dgmc\.Objective"):
            dgmc.register_objective(half_elbo)  # type: ignore[arg-type]
    finally:
        OBJECTIVES.unregister("half_elbo")
