"""Distillation settings given on the command line (or to a Python call) in place of the
spec's: checked by the spec's own rule, refused with a located error, and recorded in the
run directory's spec.dgm, so that every checkpoint a run wrote loads back from it."""

from __future__ import annotations

from pathlib import Path

import pytest

import dgmc
from dgmc.check.overrides import Overrides, apply, recorded
from dgmc.cli import main
from dgmc.core.base import without_spans

ROOT = Path(__file__).resolve().parents[1]
HM = ROOT / "specs" / "hm.dgm"
SMALL = ["--quick", "--no-progress", "--widths", "0.25", "--seeds", "0", "--methods", "ours", "--lambdas", "1"]


def _same(a: dgmc.Model, b: dgmc.Model) -> bool:
    return without_spans(a.model_dump(mode="json")) == without_spans(b.model_dump(mode="json"))


def test_a_run_with_revive_0_records_it_and_its_students_load_back(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(HM), "--out", str(out), *SMALL, "--revive", "0"]) == 0
    spec = dgmc.load(out / "spec.dgm")
    assert spec.distill.revive == 0 and spec.distill.widths == (0.25,) and spec.distill.methods == ("ours",)
    students = sorted(p.stem for p in (out / "students").glob("*.pt") if not p.stem.endswith(".last_good"))
    assert students
    for name in students:
        assert dgmc.load_checkpoint(out / "students" / f"{name}.pt") is not None
        assert dgmc.load_checkpoint(out, student=name) is not None
    assert dgmc.load_checkpoint(out) is not None  # the teacher


def test_the_recorded_spec_reparses_to_the_runs_model() -> None:
    text = HM.read_text()
    argv = ["run", str(HM), "--stage", "0.3", "--revive=0", "--widths", "0.5", ".25", "--lambdas", "2"]
    given = {"--widths": ("width", [0.5, 0.25]), "--lambdas": ("lambda", [2.0]), "--seeds": ("seed", None),
             "--stage": ("stage", 0.3), "--revive": ("revive", 0)}
    overrides = Overrides.from_argv(argv, given)
    model = apply(dgmc.loads(text, str(HM)), overrides)
    assert (model.distill.widths, model.distill.lambdas) == ((0.5, 0.25), (2.0,))
    assert (model.distill.stage, model.distill.revive, model.distill.seeds) == (0.3, 0, (0, 1, 2))
    again = recorded(text, str(HM), overrides)
    assert _same(dgmc.loads(again), model)
    assert "# Recognition networks" in again  # comments kept
    assert recorded(text, str(HM), Overrides()) == text  # no overrides: the spec as written


def test_a_spec_without_a_distill_statement_gets_one() -> None:
    text = HM.read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("distill")]
    text = "\n".join(lines) + "\n"
    overrides = Overrides.from_argv(["run", "x", "--revive", "0"], {"--revive": ("revive", 0)})
    model = apply(dgmc.loads(text), overrides)
    assert _same(dgmc.loads(recorded(text, "x", overrides)), model)


@pytest.mark.parametrize("bad, said", [
    (["--stage", "1.5"], "--stage is the share of the steps spent on local before ours, between 0 and 1 "
                         "(exclusive), not 1.5."),
    (["--lambdas", "1", "-1"], "lambda weighs the latent terms and must be >= 0, not -1."),
    (["--widths", "0"], "A width must be positive, not 0."),
    (["--revive", "-3"], "--revive must be an integer >= 0, not -3."),
    (["--seeds", "0", "0"], "'--seeds' lists 0 twice."),
])
def test_an_invalid_override_is_refused_located_on_the_command_line(bad: list[str], said: str, tmp_path: Path,
                                                                     capsys) -> None:
    out = tmp_path / "run"
    assert main(["run", str(HM), "--out", str(out), "--quick", "--no-progress", *bad]) == 1
    err = capsys.readouterr().err
    value = bad[-1]
    assert err.startswith("Semantic error in '<command line>', line 1, column ")
    excerpt = next(line for line in err.splitlines() if line.lstrip().startswith("1:"))
    carets = err.splitlines()[err.splitlines().index(excerpt) + 1]
    assert excerpt.rstrip().endswith(" ".join(bad))  # the command line as typed
    assert excerpt[carets.index("^"):].startswith(value) and carets.strip() == "^" * len(value)
    assert err.rstrip().endswith(said) and "Traceback" not in err
    assert not out.exists()  # refused before anything is written


def test_distill_refuses_a_bad_stage_located(capsys) -> None:
    assert main(["distill", str(HM), "--teacher", "x.pt", "--method", "staged", "--stage=0"]) == 1
    err = capsys.readouterr().err
    assert "'<command line>'" in err and "--stage=0" in err and "not 0." in err


def test_the_python_api_refuses_the_same_settings_located_in_the_call() -> None:
    model = dgmc.load(HM)
    teacher = dgmc.compile(model)
    with pytest.raises(dgmc.DgmError, match="A width must be positive, not 0") as error:
        dgmc.distill(model, teacher, width=0, steps=1)
    assert "dgmc.distill(width=0, seed=0)" in str(error.value)
    with pytest.raises(dgmc.DgmError, match="lambda weighs the latent terms and must be >= 0, not -1"):
        dgmc.distill(model, teacher, lam=-1.0, steps=1)
