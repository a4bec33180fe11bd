"""Continual-learning methods as registry entries (`CONTINUAL_METHODS`): an entry, not
its name, decides what `learn` fits or steps on, whether its checkpoints carry the
distiller, and its role in the report; `dgmc plugins` lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.api import listing
from dgmc.core.errors import UserError
from dgmc.datasets import load_split
from dgmc.distillation import continual as continual_module
from dgmc.distillation.continual import CONTINUAL_METHODS, ContinualMethod, Mixing, classes_of, continual, learn, roles
from dgmc.lower import compile_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cvae():
    """The class-conditional spec, its old and new classes, the common split, an old model."""
    model = dgmc.load(ROOT / "specs" / "cvae.dgm")
    old, new = classes_of(model, None)
    split = load_split(continual_module._with_classes(model, tuple(sorted(old + new))))
    torch.manual_seed(0)
    return model, old, new, split, compile_model(model)


@pytest.fixture
def registered():
    """Registers continual methods for one test; removes them after."""
    names = []

    def register(name: str, method: ContinualMethod) -> None:
        CONTINUAL_METHODS.register(name, method, origin="python")
        names.append(name)

    yield register
    for name in names:
        CONTINUAL_METHODS.unregister(name)


def test_a_registered_plain_method_fits_the_rows_its_entry_chooses(cvae, registered, monkeypatch) -> None:
    model, old, new, split, old_model = cvae
    chosen = {"marker": torch.zeros(1)}
    registered("mine", ContinualMethod("for a test", fits=lambda split, new_data: chosen))
    seen = {}
    monkeypatch.setattr(continual_module, "fit", lambda learner, train, data, *args, **kwargs: seen.update(data=data))
    learn(model, old_model, split, old, new, "mine", seed=0, steps=2, progress=False)
    assert seen["data"] is chosen


def test_a_registered_step_method_is_stepped_with_the_mixing(cvae, registered) -> None:
    model, old, new, split, old_model = cvae
    calls: list[tuple[Mixing, int, int]] = []

    def step(mixing: Mixing, fresh, inputs):
        calls.append((mixing, len(next(iter(fresh.values()))), len(next(iter(inputs.values())))))
        return continual_module.elbo(mixing.learner, fresh, mixing.generator)

    registered("mine", ContinualMethod("for a test", step=step))
    learn(model, old_model, split, old, new, "mine", seed=0, steps=2, progress=False)
    (mixing, fresh, drawn), = set(calls[:1])
    assert len(calls) == 2 and mixing.share == len(new) / (len(old) + len(new))
    assert fresh + drawn == model.distill.batch and drawn == mixing.old_count


def test_an_entry_gives_exactly_one_way_to_learn() -> None:
    with pytest.raises(ValueError, match="exactly one of `fits` and `step`"):
        ContinualMethod("neither")


def test_the_report_roles_come_from_the_entries(registered) -> None:
    assert roles(["finetune", "replay", "ours", "joint"]) == (
        ["ours"], ["finetune", "replay"], "; joint, which keeps the old data, is a reference, not a rival")
    registered("oracle", ContinualMethod("for a test", fits=lambda split, new_data: split.train, reference=True))
    registered("rehearse", ContinualMethod("for a test", fits=lambda split, new_data: new_data, contender=True))
    contenders, rivals, note = roles(["finetune", "ours", "rehearse", "oracle", "gone"])
    assert contenders == ["ours", "rehearse"] and rivals == ["finetune", "gone"]
    assert note == "; joint and oracle, which keep the old data, are references, not rivals"


def test_only_distilled_methods_tag_their_checkpoints() -> None:
    assert [m for m, how in CONTINUAL_METHODS.items() if how.distilled] == ["ours"]


def test_unknown_methods_are_refused_before_anything_runs(tmp_path: Path) -> None:
    model = dgmc.load(ROOT / "specs" / "cvae.dgm")
    with pytest.raises(UserError, match=r"Unknown continual method 'finetun' \(known: finetune, replay, ours, "
                                         r"joint\)\. Did you mean 'finetune'\?"):
        continual(model, tmp_path, methods=("finetun",))
    assert list(tmp_path.iterdir()) == []


def test_plugins_list_every_registry() -> None:
    listed = listing()
    for concept in ("families", "networks", "datasets", "divergences", "objectives", "methods", "metrics",
                    "readers", "continual methods"):
        assert f"\n{concept}:\n" in "\n" + listed
    assert "continual methods:\n  finetune  dgmc\n  replay    dgmc\n  ours      dgmc\n  joint     dgmc\n" in listed
