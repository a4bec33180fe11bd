"""What the code used to decide by a name is a property of the registry entry: a method,
divergence or objective registered by a plugin with the same properties is treated the
same way as the built-in that has them."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dgmc.families import FAMILIES
from dgmc.losses.divergences import DIVERGENCES, divergence_form, is_closed
from dgmc.losses.methods import METHODS
from dgmc.report.report import pairs
from dgmc.training.objectives import OBJECTIVES


@pytest.fixture
def registered():
    """Registers (registry, name, entry) for one test; removes them after."""
    made = []

    def register(registry, name: str, entry) -> None:
        registry.register(name, entry, origin="python")
        made.append((registry, name))

    yield register
    for registry, name in made:
        registry.unregister(name)


def test_verdict_pairs_follow_the_contender_property(registered) -> None:
    methods = ["ours", "local", "scratch", "staged"]
    assert pairs(methods) == [("ours", "local"), ("ours", "scratch"), ("staged", "ours"), ("staged", "local"),
                              ("staged", "scratch")]
    registered(METHODS, "mine", replace(METHODS["local"], name="mine", contender=True))
    assert pairs(["ours", "mine", "local"]) == [("ours", "local"), ("mine", "ours"), ("mine", "local")]


def test_lambda_throughout_is_weighing_latents_without_phases() -> None:
    assert [name for name, how in METHODS.items() if how.lambda_throughout] == ["ours"]


def test_a_divergence_computed_from_the_parameters_is_exact_and_needs_no_noise(registered) -> None:
    registered(DIVERGENCES, "sq", replace(DIVERGENCES["mse"], name="sq"))
    normal = replace(FAMILIES["Normal"], divergences=(*FAMILIES["Normal"].divergences, "sq"))
    t = {"loc": torch.zeros(2, 3), "scale": torch.ones(2, 3)}
    s = {"loc": torch.ones(2, 3), "scale": torch.ones(2, 3)}
    assert is_closed(normal, "sq")
    assert torch.equal(divergence_form(normal, "sq")(t, s, None), divergence_form(normal, "mse")(t, s, None))


def test_a_reverse_divergence_uses_the_forward_closed_form_swapped(registered) -> None:
    registered(DIVERGENCES, "back", replace(DIVERGENCES["reverse_kl"], name="back"))
    normal = FAMILIES["Normal"]
    t = {"loc": torch.zeros(4), "scale": torch.ones(4)}
    s = {"loc": torch.full((4,), 0.5), "scale": torch.full((4,), 2.0)}
    assert is_closed(normal, "back")
    assert torch.equal(divergence_form(normal, "back")(t, s, None), normal.closed["kl"](normal, s, t))


def test_fidelity_measures_only_bce_in_another_divergences_place() -> None:
    assert {name: kind.measured_as for name, kind in DIVERGENCES.items() if kind.measured_as} == {"bce": "kl"}
    assert [name for name, kind in DIVERGENCES.items() if kind.samples_student] == ["reverse_kl"]


def test_each_objective_names_its_generated_function() -> None:
    assert {name: how.parts for name, how in OBJECTIVES.items()} == {
        "elbo": "elbo_parts", "wake_sleep": "wake_sleep_parts", "mle": "mle_parts", "iwae": None}
