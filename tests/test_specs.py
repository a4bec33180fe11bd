"""Every shipped spec (specs/*.dgm) runs end to end as `dgmc run --quick` does: the
teacher, a student, the evaluation and the report. A spec that trains and then dies in
evaluation (relaxed_vae once did: its family has no mean) fails here. To keep the suite
short, each run is the cheapest one: one student (one seed of ours at the spec's
smallest width and first lambda), recipes cut to `STEPS` steps (a quick run takes at
most the recipe's steps), and the large built-in datasets thinned to about `ROWS` rows
(every k-th, so every kind of row stays), which the evaluation reads whole: a
convolutional spec then costs seconds, not minutes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import dgmc
from dgmc import ir
from dgmc.datasets import DATASETS
from dgmc.run import run

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.dgm"))


STEPS = 3
ROWS = 600


def every_kth(load: Callable[[], dict[str, np.ndarray]], every: int) -> dict[str, np.ndarray]:
    return {column: values[::every] for column, values in load().items()}


@pytest.fixture(autouse=True)
def thinned() -> Iterator[None]:
    """Each built-in dataset of over `ROWS` rows registered again with every k-th row."""
    originals = {name: entry for name, entry in DATASETS.items() if entry.rows > ROWS}
    for name, entry in originals.items():
        every = entry.rows // ROWS
        DATASETS.register(name, dataclasses.replace(entry, load=functools.partial(every_kth, entry.load, every),
                                                    rows=len(range(0, entry.rows, every))),
                          origin=DATASETS.origin_of(name), replace=True)
    yield
    for name, entry in originals.items():
        DATASETS.register(name, entry, origin=DATASETS.origin_of(name), replace=True)


def cheapest(spec: Path) -> ir.Model:
    """The spec with one student and `STEPS` steps of training and of distillation, as
    `dgmc run`'s flags and a shorter recipe would make it."""
    model = dgmc.load(spec)
    recipe = model.distill
    distill = recipe.model_copy(update={"widths": (min(recipe.widths),), "methods": ("ours",), "seeds": (0,),
                                        "lambdas": recipe.lambdas[:1], "steps": STEPS})
    return model.model_copy(update={"train": model.train.model_copy(update={"steps": STEPS}), "distill": distill})


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.stem)
def test_every_shipped_spec_runs_to_its_report(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(cheapest(spec), spec.read_text(), out, quick=True, progress=False, log=lambda line: None)
    rows = json.loads((out / "metrics.json").read_text())
    assert [row["model"] for row in rows] == ["teacher", "student"]
    assert [row["steps"] for row in rows] == [STEPS, STEPS]
    assert set(json.loads((out / "eval.json").read_text())["models"]) == {"teacher", rows[1]["name"]}
    assert (out / "report.md").read_text().startswith(f"# dgmc run: {spec.stem}")
    assert "<html" in (out / "report.html").read_text()


def _cheapest_run(name: str, out: Path) -> list[dict]:
    spec = ROOT / f"specs/{name}.dgm"
    run(cheapest(spec), spec.read_text(), out, quick=True, progress=False, log=lambda line: None)
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("name", ["dmm", "srnn"])
def test_a_smoothing_model_distils_its_backward_state(name: str, tmp_path: Path) -> None:
    """A shipped spec whose guide runs a backward RNN: the student distils its guide with
    the backward state, and its test -ELBO through its own guide and the teacher's is finite."""
    student = _cheapest_run(name, tmp_path / name)[1]
    assert np.isfinite(student["test_objective"]) and np.isfinite(student["test_objective_teacher_guide"])
    import torch

    state = torch.load(tmp_path / name / "students" / f"{student['name']}.pt", weights_only=False)["state_dict"]
    assert f"nets.{'p_g' if name == 'dmm' else 'p_a'}.weight_hh" in state  # the student's own backward RNN


def test_m2_reports_the_accuracy_of_its_guide_and_of_its_students(tmp_path: Path) -> None:
    """specs/m2.dgm: teacher and student report test_accuracy[y] (the guide's, labels hidden),
    the teacher the share of training rows that miss the label, and the report shows it."""
    rows = _cheapest_run("m2", tmp_path / "m2")
    assert all(0 <= row["test_accuracy[y]"] <= 1 and np.isfinite(row["test_objective"]) for row in rows)
    assert 0.85 < rows[0]["train_missing[y]"] < 0.95
    assert "test accuracy[y]" in (tmp_path / "m2" / "report.md").read_text()
