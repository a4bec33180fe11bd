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
