"""Sample-based evaluation (`dgmc.evaluation`), free bits, and continual learning:
- a student that IS its teacher scores exactly the teacher's noise floor on every -T
  metric, and a random student scores far above it;
- the references hold the test rows (of the chosen classes only, when asked);
- active units: a guide whose output ignores the data has none;
- free bits: a layer's KL below its floor adds a constant to the loss, so no gradient
  pulls it onto the prior;
- `dgmc continual --quick`: ours keeps the old classes closer to the old model than
  fine-tuning does, and the report says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.datasets import load_split
from dgmc.distillation.continual import continual
from dgmc.evaluation.evaluate import active_units, columns, measure, setting
from dgmc.lower import compile_model
from dgmc.training.objectives import _elbo_parts, elbo

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> dgmc.Model:
    return dgmc.load(ROOT / "specs" / f"{name}.dgm")


def test_a_student_that_is_its_teacher_scores_the_floor() -> None:
    model = load("vae")
    split = load_split(model)
    torch.manual_seed(0)
    teacher, twin, far = compile_model(model), compile_model(model), compile_model(model)
    twin.load_state_dict(teacher.state_dict())
    far.load_state_dict(teacher.state_dict())
    with torch.no_grad():
        far.nets["p_x"][-1].bias += 2.0  # the pixels' logits shifted: most pixels on
    where = setting(model, split)
    results = measure(where, teacher, {"twin": twin, "far": far})
    assert set(results) == {"teacher", "twin", "far"}
    assert set(results["teacher"]) == set(columns(where)) and len(columns(where)) == 16  # 2 spaces x 4 x 2
    assert results["twin"] == results["teacher"]  # same weights, same noise: the same numbers
    floor, shifted = results["teacher"], results["far"]
    for key in (k for k in columns(where) if k.endswith("-T")):
        assert shifted[key] > floor[key], key
    for key in ("features:FD-T", "features:MMD-T", "raw:FD-T", "raw:MMD-T"):  # EMD of 64-d binary draws: a high floor
        assert shifted[key] > 1.5 * floor[key], key
    assert 0.4 < floor["features:1NN-T"] < 0.6  # two draws of one model: near 0.5
    assert shifted["raw:1NN-T"] > 0.9


def test_references_are_test_rows_of_the_chosen_classes() -> None:
    model = load("cvae").model_copy()
    model = model.model_copy(update={"data": model.data.model_copy(update={"classes": None})})
    split = load_split(model)
    where = setting(model, split, classes=(5, 6))
    labels = split.test_labels.numpy()
    assert len(where.data) == int(np.isin(labels, (5, 6)).sum())
    assert set(where.data_inputs["c"].argmax(-1).tolist()) == {5, 6}
    assert set(where.teacher_inputs["c"].argmax(-1).tolist()) == {5, 6}
    test_rows = {tuple(row) for row in split.test["x"].numpy().astype(int)}
    assert all(tuple(row) in test_rows for row in where.data.astype(int))


def test_a_guide_that_ignores_the_data_has_no_active_units() -> None:
    model = load("vae")
    split = load_split(model)
    torch.manual_seed(0)
    compiled = compile_model(model)
    with torch.no_grad():
        for param in compiled.guide_parameters():
            param.mul_(20.0)  # a large random guide: every dimension moves with x
    assert active_units(compiled, split) == {"z": (16, 16)}
    with torch.no_grad():
        for param in compiled.guide_parameters():
            param.zero_()
    assert active_units(compiled, split) == {"z": (0, 16)}


def test_free_bits_hold_a_layer_at_its_floor() -> None:
    model = load("hvae")
    assert model.train.free_bits == 0.5
    torch.manual_seed(0)
    compiled = compile_model(model)
    batch = {k: v[:64] for k, v in load_split(model).train.items()}
    draws = _elbo_parts(compiled, batch, torch.Generator().manual_seed(3))
    parts = {k: float(v.detach().mean()) for k, v in draws.items()}
    floors = {"kl[z3]": 0.5 * 4, "kl[z2]": 0.5 * 8, "kl[z1]": 0.5 * 16}
    loss, logged = elbo(compiled, batch, torch.Generator().manual_seed(3), free_bits=0.5)
    expected = parts["nll[x]"] + sum(max(parts[k], floor) for k, floor in floors.items())
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert logged["-elbo"] == pytest.approx(sum(parts.values()), rel=1e-5)  # the logged terms are the true ones
    assert any(parts[k] < floor for k, floor in floors.items())  # a fresh model: some layer below its floor

    def gradients(free_bits: float, kl: bool) -> list[torch.Tensor]:
        compiled.zero_grad()
        if kl:
            loss = elbo(compiled, batch, torch.Generator().manual_seed(3), free_bits=free_bits)[0]
        else:
            loss = _elbo_parts(compiled, batch, torch.Generator().manual_seed(3))["nll[x]"].mean()
        loss.backward()
        return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in compiled.parameters()]

    # every layer far below a high floor: the KL adds a constant, only the likelihood trains
    for with_floor, likelihood_only in zip(gradients(100.0, True), gradients(0.0, False), strict=True):
        torch.testing.assert_close(with_floor, likelihood_only)
    assert any(not torch.equal(a, b) for a, b in zip(gradients(0.0, True), gradients(0.0, False), strict=True))


def test_negative_free_bits_is_an_error(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "fb.dgm"
    spec.write_text((ROOT / "specs/vae.dgm").read_text().replace("warmup = 500", "warmup = 500, free_bits = -1"))
    assert main(["check", str(spec)]) == 1
    assert "free_bits is a floor in nats per latent dimension, so >= 0, not -1." in capsys.readouterr().err


def test_continual_quick_keeps_the_old_classes(tmp_path: Path) -> None:
    model = load("cvae")
    results = continual(model, tmp_path, seeds=(0,), methods=("finetune", "ours"), quick=True, progress=False,
                        log=lambda *_: None)
    assert results["old classes"] == [0, 1, 2, 3, 4] and results["new classes"] == [5, 6, 7, 8, 9]
    rows = results["models"]
    assert set(rows) == {"old model", "finetune_s0", "ours_s0"}
    for space in ("features", "raw"):  # fine-tuning forgets; ours keeps the old model's classes
        assert rows["ours_s0"]["old"][f"{space}:FD-T"] < rows["finetune_s0"]["old"][f"{space}:FD-T"]
    assert rows["finetune_s0"]["new"]["-ELBO"] < rows["old model"]["new"]["-ELBO"]  # and both learn the new
    assert rows["ours_s0"]["new"]["-ELBO"] < rows["old model"]["new"]["-ELBO"]
    report = (tmp_path / "report.md").read_text()
    assert "Does ours beat finetune?" in report
    for space in ("features", "raw"):  # one table per space, a row per method
        table = report.split(f"### {space}")[1].split("Does ours beat")[0]
        assert [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")][1:] == [
            "| old model", "| finetune", "| ours"]
    assert json.loads((tmp_path / "continual.json").read_text())["steps"] == 100
    assert {p.name for p in tmp_path.glob("*.pt")} == {"old.pt", "finetune_s0.pt", "ours_s0.pt"}


def test_continual_refuses_a_model_without_classes(tmp_path: Path, capsys) -> None:
    assert main(["continual", str(ROOT / "specs/vae.dgm"), "--out", str(tmp_path), "--quick"]) == 1
    assert "continual learning needs the classes it learns first" in capsys.readouterr().err
