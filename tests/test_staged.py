"""The `staged` method: local for the spec's `stage` share of the steps, then ours, on
one optimiser and one stream of draws."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.distillation.distill import distill

ROOT = Path(__file__).resolve().parents[1]


def test_staged_is_local_then_ours() -> None:
    model = dgmc.load(ROOT / "specs/hm.dgm")
    model = model.model_copy(update={"distill": model.distill.model_copy(update={"stage": 0.4})})
    torch.manual_seed(0)
    teacher = dgmc.compile(model).eval()
    runs = {method: distill(model, teacher, 0.25, method, seed=3, steps=50, progress=False, lam=1.0)[1]
            for method in ("staged", "local", "ours")}
    staged, local, ours = (runs[m]["loss"] for m in ("staged", "local", "ours"))
    assert staged[:20] == local[:20]  # the same draws, the same student: local's first 20 steps exactly
    assert staged[20:] != local[20:] and staged[20:] != ours[20:]  # then ours' loss, from local's student


def test_stage_is_a_spec_and_command_line_setting(tmp_path: Path, capsys) -> None:
    spec = (ROOT / "specs/hm.dgm").read_text().replace("seed = [0, 1, 2])", "seed = [0, 1, 2], stage = 0.3)")
    assert dgmc.loads(spec).distill.stage == 0.3
    with pytest.raises(dgmc.DgmError, match="between 0 and 1"):
        dgmc.loads(spec.replace("stage = 0.3", "stage = 1.5"))
    assert dgmc.load(ROOT / "specs/hm.dgm").distill.methods == ("ours", "local", "scratch")  # not a default method
    assert main(["distill", str(ROOT / "specs/hm.dgm"), "--teacher", "x.pt", "--method", "staged",
                 "--stage", "0"]) == 1
    assert "--stage is the share of the steps spent on local" in capsys.readouterr().err
