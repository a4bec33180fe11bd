"""`dgmc distill` and `dgmc run`: the run directory, its report, and restarts."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main

ROOT = Path(__file__).resolve().parents[1]
HM = str(ROOT / "specs/hm.dgm")


@pytest.fixture(scope="module")
def run_dir(hm_run: Path) -> Path:
    return hm_run


def test_run_writes_the_run_directory(run_dir: Path) -> None:
    recorded = dgmc.load(run_dir / "spec.dgm")  # the spec with the command line's settings (HM_RUN)
    assert recorded.nodes == dgmc.load(HM).nodes
    assert (recorded.distill.seeds, recorded.distill.methods, recorded.distill.lambdas) == (
        (0, 1), ("ours", "scratch"), (1.0, 10.0))
    assert (run_dir / "graph.dot").is_file()
    assert (run_dir / "teacher" / "teacher.pt").is_file()
    names = sorted(p.name for p in (run_dir / "students").glob("*.pt"))
    assert names == sorted([f"student_ours_w0.25_l{lam}_s{s}.pt" for lam in (1, 10) for s in (0, 1)]
                           + [f"student_scratch_w0.25_s{s}.pt" for s in (0, 1)])
    rows = json.loads((run_dir / "metrics.json").read_text())
    assert [r["model"] for r in rows] == ["teacher"] + ["student"] * 6
    assert all(r["test_exact_nll"] > 0 for r in rows)  # hm's binary latents summed out exactly
    # the IWAE estimate (a quick run's: 10 draws, on at most 64 rows, here Old Faithful's whole test split)
    # bounds the exact NLL from above in expectation: on 54 rows, within the noise of 10 draws
    assert all(r["test_iwae"] > r["test_exact_nll"] - 0.1 and r["iwae_k"] == 10 for r in rows)
    assert [r["lambda"] for r in rows[1:]] == [1, 1, 10, 10, None, None]
    assert all(set(f"fidelity[{n}]" for n in ("z4", "z3", "y2", "z2", "z1", "y1")) <= set(r) for r in rows[1:])
    with (run_dir / "metrics.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 7


def test_report_has_the_papers_layout(run_dir: Path) -> None:
    report = (run_dir / "report.md").read_text()
    assert ("| student | method | #params | test -ELBO | test -ELBO (teacher's guide) | test NLL (IWAE-10) | "
            "test NLL (exact) | dead units | dead layers | revived | L (fidelity) | L[z4] |") in report
    training, samples = report.split("## Samples")
    students, heat = training.split("### Distillation terms per node")
    table = [line for line in students.splitlines() if line.startswith("| width 0.25")]
    assert [line.split(" | ")[1] for line in table] == ["ours (λ=1)", "ours (λ=10)", "scratch"]
    assert all("±" in line for line in table)  # two seeds: mean and std
    assert "| student | method | z4 | z3 | y2 | z2 | z1 | y1 |" in heat  # every termed node, per student
    assert len([line for line in heat.splitlines() if line.startswith("| width 0.25")]) == 3
    assert "teacher/teacher_scatter.png" in report and "Quick run" in report
    # the sample metrics: Old Faithful has no labels, so raw 2-d points only
    assert "### raw" in samples and "### features" not in samples
    assert "| student | method | #params | FD | EMD | MMD | 1NN | FD-T | EMD-T | MMD-T | 1NN-T |" in samples
    assert "| teacher | - | 186 |" in samples
    assert "Does ours beat scratch?" in samples and "| width 0.25 | " in samples.split("Does ours beat")[1]
    verdicts = samples.split("Does ours beat scratch?")[1]
    assert "paired t-test" in verdicts and "over 2 seeds, p = " in verdicts  # each verdict with its numbers
    assert "Active units of the teacher" in samples
    evaluated = json.loads((run_dir / "eval.json").read_text())
    assert set(evaluated["models"]) == {"teacher", *(p.stem for p in (run_dir / "students").glob("*.pt"))}
    assert evaluated["references"] == {"test rows": 54, "teacher samples": 1024}


def test_eval_rewrites_the_report(run_dir: Path, capsys) -> None:
    before = json.loads((run_dir / "eval.json").read_text())
    (run_dir / "eval.json").unlink()
    assert main(["eval", str(run_dir), "--no-progress"]) == 0
    assert json.loads((run_dir / "eval.json").read_text()) == before  # fixed seeds: the same numbers
    assert main(["eval", str(run_dir.parent / "nothing-here")]) == 1
    assert "is not a run directory: it has no spec.dgm" in capsys.readouterr().err


def test_a_second_run_skips_what_is_done(run_dir: Path, capsys) -> None:
    before = (run_dir / "students" / "student_ours_w0.25_l1_s0.pt").stat().st_mtime_ns
    assert main(["run", HM, "--out", str(run_dir), "--quick", "--no-progress", "--seeds", "0", "1",
                 "--methods", "ours", "scratch", "--lambdas", "1", "10"]) == 0
    out = capsys.readouterr().out
    assert "teacher: reusing" in out and out.count("skipped") == 6
    assert (run_dir / "students" / "student_ours_w0.25_l1_s0.pt").stat().st_mtime_ns == before


def test_a_student_made_with_other_distillation_settings_is_made_again(run_dir: Path, tmp_path: Path,
                                                                       capsys) -> None:
    """The students' networks changed (`distill { y1 via ... }`): the teacher is reused,
    the stale students are distilled again, not reported from their old checkpoints."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    spec = tmp_path / "hm.dgm"
    spec.write_text(Path(HM).read_text().replace("seed = [0, 1, 2])", "seed = [0, 1, 2]) { y1 via mlp(5) }"))
    assert main(["run", str(spec), "--out", str(copy), "--quick", "--no-progress", "--seeds", "0",
                 "--methods", "ours", "--lambdas", "1", "10"]) == 0
    out = capsys.readouterr().out
    assert "teacher: reusing" in out and "skipped" not in out
    rows = {row["name"]: row for row in json.loads((copy / "metrics.json").read_text())}
    old = {row["name"]: row for row in json.loads((run_dir / "metrics.json").read_text())}
    name = "student_ours_w0.25_l1_s0"
    y1_net = {hidden: 2 * hidden + hidden + hidden * 1 + 1 for hidden in (2, 5)}  # z1 (2) -> hidden -> loc (1)
    assert rows[name]["parameters"] == old[name]["parameters"] - y1_net[2] + y1_net[5]


def test_a_run_directory_of_another_spec_is_refused(run_dir: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "hm9.dgm"
    other.write_text(Path(HM).read_text().replace("mlp(8)", "mlp(9)"))
    assert main(["run", str(other), "--out", str(run_dir), "--quick", "--no-progress"]) == 1
    assert "holds a run of another spec" in capsys.readouterr().err


def test_distill_one_student_from_a_checkpoint(run_dir: Path, tmp_path: Path, capsys) -> None:
    teacher = run_dir / "teacher" / "teacher.pt"
    assert main(["distill", HM, "--teacher", str(teacher), "--method", "local", "--seed", "3",
                 "--out", str(tmp_path), "--quick", "--no-progress"]) == 0
    assert "local student of width 0.25 (54 parameters)" in capsys.readouterr().out
    meta = json.loads((tmp_path / "student_local_w0.25_s3.json").read_text())
    assert meta["metrics"]["method"] == "local" and meta["metrics"]["steps"] == 100


def test_the_apis_samples_and_distributions_are_plain_tensors() -> None:
    """What `dgmc.sample` and `dgmc.distributions` return holds no autograd graph (numpy
    takes it without a warning): hm's top prior is a free parameter, and a conditional
    model's inputs come back as they were given, here with requires_grad."""
    student = dgmc.compile(dgmc.load(HM), 0.25)
    values = dgmc.sample(student, 4, seed=0)
    laws = dgmc.distributions(student, values)
    assert [n for n, v in values.items() if v.requires_grad] == []
    assert {n: law.log_prob(values[n]).requires_grad for n, law in laws.items()} == dict.fromkeys(laws, False)
    assert laws["z4"].mean.requires_grad is False
    classifier = dgmc.compile(dgmc.load(ROOT / "specs" / "classifier.dgm"))
    given = dgmc.sample(classifier, 3, inputs={"x": torch.zeros(3, 64, requires_grad=True)}, seed=0)
    assert given["x"].requires_grad is False and given["y"].requires_grad is False
