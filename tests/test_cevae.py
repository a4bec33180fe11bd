"""Auxiliary predictors (guide edges into observed nodes) on specs/cevae.dgm, the causal
effect VAE: its objective held to a hand-written CEVAE ELBO with the predictors' terms on
the same weights and noise; `aux` weighing them; the predictors filling in missing
values; and the average treatment effect recovered on data whose confounder is hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
import references as ref
import torch

import dgmc
from dgmc.datasets import load_split
from dgmc.datasets.builtin import CONFOUNDED_EFFECT
from dgmc.lower import compile_model
from dgmc.training.loop import fit
from dgmc.training.objectives import elbo

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs/cevae.dgm"


def _batch(rows: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(4)
    return {"x": torch.randn(rows, 5, generator=g), "t": torch.bernoulli(torch.full((rows, 1), 0.5), generator=g),
            "y": torch.randn(rows, 1, generator=g)}


def test_objective_matches_a_hand_written_cevae() -> None:
    """-ELBO = -log p(x | z) - log p(t | z) - log p(y | z, t) + KL(q(z | x, t, y) || N(0, I)),
    and the loss adds aux x (-log q(t | x) - log q(y | x, t)), by hand."""
    torch.manual_seed(0)
    module = compile_model(dgmc.load(SPEC))
    batch = _batch()
    eps = module.infer(batch, generator=torch.Generator().manual_seed(2)).noise["z"]  # t and y are given: no draw
    loss, terms = elbo(module, batch, torch.Generator().manual_seed(2))
    x, t, y = batch["x"], batch["t"], batch["y"]
    q_t = ref.ReluMLP.of(module.nets["q_t"], 5, 1, depth=1)
    q_y = ref.ReluMLP.of(module.nets["q_y"], 6, 2, depth=2)
    q_z = ref.ReluMLP.of(module.nets["q_z"], 7, 8, depth=2)
    p_x, p_t = ref.ReluMLP.of(module.nets["p_x"], 4, 10, depth=1), ref.ReluMLP.of(module.nets["p_t"], 4, 1, depth=1)
    p_y = ref.ReluMLP.of(module.nets["p_y"], 5, 2, depth=2)
    z_params = ref.normal_from_raw(q_z(torch.cat([x, t, y], -1)), 4)
    z = ref.normal_sample(z_params, eps)
    nll = -(ref.normal_log_density(x, ref.normal_from_raw(p_x(z), 5))
            + ref.bernoulli_log_mass(t, {"logits": p_t(z)})
            + ref.normal_log_density(y, ref.normal_from_raw(p_y(torch.cat([z, t], -1)), 1)))
    kl = (0.5 * (z_params["scale"] ** 2 + z_params["loc"] ** 2 - 1 - torch.log(z_params["scale"] ** 2))).sum(-1)
    aux = -(ref.bernoulli_log_mass(t, {"logits": q_t(x)})
            + ref.normal_log_density(y, ref.normal_from_raw(q_y(torch.cat([x, t], -1)), 1)))
    largest = max(float((terms["-elbo"] - (nll + kl).mean()).abs()),
                  float((loss.detach() - (nll + kl + aux).mean()).abs()))
    assert largest < 1e-4, largest
    assert set(terms) >= {"aux[t]", "aux[y]"}


def test_aux_weighs_the_predictors_terms() -> None:
    torch.manual_seed(0)
    text = SPEC.read_text().replace("aux = 1)", "aux = 0.25)")
    module = compile_model(dgmc.loads(text))
    loss, terms = elbo(module, _batch(), torch.Generator().manual_seed(2))
    expected = terms["-elbo"] + 0.25 * (terms["aux[t]"] + terms["aux[y]"])
    assert abs(float(loss.detach() - expected)) < 1e-4


def test_the_predictors_fill_in_what_the_data_lack() -> None:
    """Without t and y, the guide's pass draws them from q(t | x) and q(y | x, t) and
    infers z from those."""
    torch.manual_seed(0)
    module = compile_model(dgmc.load(SPEC))
    x = _batch()["x"]
    trace = module.infer({"x": x}, generator=torch.Generator().manual_seed(0))
    assert set(trace.values) >= {"t", "y", "z"} and set(trace.values["t"].unique().tolist()) <= {0.0, 1.0}


def test_the_average_effect_is_recovered_where_the_naive_one_is_confounded() -> None:
    """After 1500 steps the ATE estimate is near the true 1, while the difference of the
    outcome between treated and untreated test rows is near 2."""
    torch.manual_seed(0)
    model = dgmc.load(SPEC)
    module = compile_model(model)
    split = load_split(model)
    fit(module, model.train.model_copy(update={"steps": 1500}), split.train, 1500, 0, False)
    effect = dgmc.average_effect(module, "t", "y")
    test = split.test
    naive = float(test["y"][test["t"][:, 0] == 1].mean() - test["y"][test["t"][:, 0] == 0].mean())
    assert abs(naive - 2 * CONFOUNDED_EFFECT) < 0.3, naive
    assert abs(effect - CONFOUNDED_EFFECT) < 0.3, effect


def test_average_effect_refuses_a_node_that_is_not_observed() -> None:
    module = compile_model(dgmc.load(SPEC))
    with pytest.raises(dgmc.UserError, match="'z' is not an observed"):
        dgmc.average_effect(module, "t", "z")
