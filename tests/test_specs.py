"""Every shipped spec (specs/*.dgm) runs end to end under `dgmc run --quick`: the teacher,
a student, the evaluation and the report. A spec that trains and then dies in evaluation
(relaxed_vae once did: its family has no mean) fails here. One student per spec (one
seed of ours at the spec's smallest width and first lambda) keeps each run short; the
teacher's 100 quick steps are the bulk of a convolutional spec's minute or two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dgmc
from dgmc.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.dgm"))


def one_student(spec: Path) -> list[str]:
    """The cheapest student grid of a spec, in `dgmc run`'s flags."""
    recipe = dgmc.load(spec).distill
    return ["--seeds", "0", "--methods", "ours", "--widths", f"{min(recipe.widths):g}",
            "--lambdas", f"{recipe.lambdas[0]:g}"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.stem)
def test_every_shipped_spec_runs_to_its_report(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(out), "--quick", "--no-progress", *one_student(spec)]) == 0
    rows = json.loads((out / "metrics.json").read_text())
    assert [row["model"] for row in rows] == ["teacher", "student"]
    assert all(row["steps"] > 0 for row in rows)
    assert set(json.loads((out / "eval.json").read_text())["models"]) == {"teacher", rows[1]["name"]}
    assert (out / "report.md").read_text().startswith(f"# dgmc run: {spec.stem}")
    assert "<html" in (out / "report.html").read_text()
