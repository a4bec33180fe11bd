"""The user's own data: `data file { ... }` specs driven by `--data PATH` end to end (CSV,
NPZ, a folder of images), bad data files refused before any step with an error located at
the binding (a golden file per class of error), the run directory's record of its data,
and distillation without any data.

tests/bad_data/NN_name.dgm reads NN_name.csv; NN_name.err holds exactly what `dgmc train`
prints for it (regenerate with `pytest tests/test_user_data.py --regen-goldens`)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

import dgmc
from dgmc.cli import main
from dgmc.datasets import DataError, load_split

ROOT = Path(__file__).resolve().parents[1]
BAD = sorted((ROOT / "tests" / "bad_data").glob("*.dgm"))
CSV_SPEC, CSV = "examples/faithful_csv.dgm", "examples/data/faithful.csv"
QUICK = ["--quick", "--no-progress"]


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("spec", BAD, ids=lambda p: p.stem)
def test_a_bad_data_file_gives_its_located_error(spec: Path, at_root, tmp_path: Path, capsys,
                                                 regen_goldens: bool) -> None:
    rel = spec.relative_to(ROOT).as_posix()
    assert main(["train", rel, "--data", rel.replace(".dgm", ".csv"), "--out", str(tmp_path / "out"), *QUICK]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith(f"Data error in '{rel}', line 3, column ")
    assert not (tmp_path / "out" / "teacher.pt").exists()  # nothing trained on bad data
    golden = spec.with_suffix(".err")
    if regen_goldens:
        golden.write_text(err)
    assert err == golden.read_text(), f"{golden.name} is out of date (regenerate with --regen-goldens)"


@pytest.mark.parametrize("spec", BAD, ids=lambda p: p.stem)
def test_check_with_data_gives_the_error_training_would(spec: Path, at_root, capsys) -> None:
    """`dgmc check --data` reads the file as `train` does, and prints the same golden error."""
    rel = spec.relative_to(ROOT).as_posix()
    assert main(["check", rel, "--data", rel.replace(".dgm", ".csv")]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == spec.with_suffix(".err").read_text()


def test_check_with_a_good_data_file_says_ok_with_its_rows(at_root, tmp_path: Path, capsys) -> None:
    assert main(["check", CSV_SPEC, "--data", CSV]) == 0
    assert capsys.readouterr().out == f"{CSV_SPEC}: ok (2 nodes; '{CSV}': 218 train and 54 test rows)\n"
    assert main(["check", "specs/hm.dgm", "--data", CSV]) == 1  # a spec that names its dataset takes no file
    assert "reads the dataset 'old_faithful'" in capsys.readouterr().err


def test_a_csv_drives_a_run_and_the_run_knows_its_data(at_root, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["run", CSV_SPEC, "--out", str(out), *QUICK, "--methods", "ours", "--seeds", "0"]
    assert main([*args, "--data", CSV]) == 0
    record = json.loads((out / "data.json").read_text())
    assert record["source"] == str((ROOT / CSV).resolve()) and record["rows"] == {"train": 218, "test": 54}
    assert (out / "students" / "student_ours_w0.25_s0.pt").is_file()
    assert main(["eval", str(out), "--no-progress"]) == 0  # the recorded file: no --data needed
    changed = tmp_path / "faithful.csv"
    changed.write_text((ROOT / CSV).read_text().replace("79\n", "80\n", 1))
    capsys.readouterr()
    assert main([*args, "--data", str(changed)]) == 1
    assert "holds a run of another spec or other data" in capsys.readouterr().err
    assert main(args) == 0 and "skipped" in capsys.readouterr().out  # resumed on the recorded file
    assert main(["run", CSV_SPEC, "--out", str(tmp_path / "new"), *QUICK]) == 1
    assert "trains its teacher on data, and none was given: give the data file with --data PATH, or a " \
           "trained teacher with --teacher CKPT" in capsys.readouterr().err
    assert main(["train", "specs/hm.dgm", "--data", CSV, "--out", str(tmp_path / "x")]) == 1
    assert "reads the dataset 'old_faithful'" in capsys.readouterr().err


def test_an_npz_drives_a_run(tmp_path: Path) -> None:
    digits = load_digits()
    np.savez(tmp_path / "digits.npz", image=digits.images.astype(np.float32), label=digits.target)
    spec = tmp_path / "digits_npz.dgm"
    spec.write_text("""model digits_npz {
  data file(classes = [0, 1]) { x = binarize(image, threshold = 8) }
  latent z : Normal[4](loc = 0, scale = 1)
  observed x : Bernoulli[64]
  z -> x via mlp(32)
  guide { x -> z via mlp(32) }
  train elbo(steps = 200)
  distill(width = 0.5)
}
""")
    out = tmp_path / "run"
    assert main(["run", str(spec), "--data", str(tmp_path / "digits.npz"), "--out", str(out), *QUICK,
                 "--methods", "local", "--seeds", "0"]) == 0
    assert json.loads((out / "data.json").read_text())["rows"]["test"] == round(360 * 0.2)
    assert (out / "teacher" / "teacher_samples_x.png").is_file()


def test_a_parquet_file_trains_a_teacher(at_root, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = np.loadtxt(ROOT / CSV, delimiter=",", skiprows=1)
    pq.write_table(pa.table({"eruptions": rows[:, 0], "waiting": rows[:, 1]}), tmp_path / "faithful.parquet")
    out = tmp_path / "teacher"
    assert main(["train", CSV_SPEC, "--data", str(tmp_path / "faithful.parquet"), "--out", str(out), *QUICK]) == 0
    assert json.loads((out / "teacher.json").read_text())["metrics"]["test_objective"] is not None


def test_an_image_folder_drives_a_spec_with_an_image_node(tmp_path: Path, capsys) -> None:
    digits = load_digits()
    for label in (0, 1):
        folder = tmp_path / "images" / f"digit{label}"
        folder.mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:30]):
            Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(folder / f"{i:02d}.png")
    spec = tmp_path / "faces.dgm"
    spec.write_text("""model images {
  data file { x = scale(image, max = 255), c = onehot(label) }
  input c : OneHot[2]
  latent z : Normal[4](loc = 0, scale = 1)
  observed x : ContinuousBernoulli[64]
  z, c -> x via mlp(32)
  guide { x, c -> z via mlp(32) }
  train elbo(steps = 200)
}
""")
    assert main(["train", str(spec), "--data", str(tmp_path / "images"), "--out", str(tmp_path / "out"), *QUICK]) == 0
    assert "-ELBO per example" in capsys.readouterr().out
    assert (tmp_path / "out" / "teacher_samples_x.png").is_file()


def test_distillation_without_input_nodes_needs_no_data(at_root, tmp_path: Path, capsys) -> None:
    teacher = tmp_path / "teacher"
    assert main(["train", CSV_SPEC, "--data", CSV, "--out", str(teacher), *QUICK]) == 0
    moved = tmp_path / "elsewhere"
    shutil.copytree(teacher, moved)
    capsys.readouterr()
    args = ["distill", CSV_SPEC, "--teacher", str(moved / "teacher.pt"), "--out", str(tmp_path / "s"), *QUICK]
    assert main([*args, "--method", "ours"]) == 0
    assert "no test data; fidelity L" in capsys.readouterr().out
    assert main([*args, "--method", "scratch"]) == 1
    assert "scratch on 'faithful_csv' trains on data: give the data file with --data PATH" in capsys.readouterr().err


def test_a_run_from_a_trained_teacher_without_data_skips_what_needs_data(at_root, tmp_path: Path, capsys) -> None:
    teacher = tmp_path / "teacher"
    assert main(["train", CSV_SPEC, "--data", CSV, "--out", str(teacher), *QUICK]) == 0
    out = tmp_path / "run"
    args = ["run", CSV_SPEC, "--out", str(out), *QUICK, "--seeds", "0"]
    capsys.readouterr()
    assert main([*args, "--teacher", str(teacher / "teacher.pt")]) == 0
    said = capsys.readouterr().out
    assert "scratch: skipped, it trains on data and none was given (--data PATH)" in said
    rows = json.loads((out / "metrics.json").read_text())
    assert [(r["name"], r["test_objective"]) for r in rows[1:]] == [
        ("student_ours_w0.25_s0", None), ("student_local_w0.25_s0", None)]
    assert rows[0]["test_objective"] is not None  # the teacher's, measured when it was trained
    measured = json.loads((out / "eval.json").read_text())
    assert measured["references"]["test rows"] is None
    assert set(measured["models"]["teacher"]) == {"raw:FD-T", "raw:EMD-T", "raw:MMD-T", "raw:1NN-T"}
    assert "a data-free run" in (out / "report.md").read_text()
    assert json.loads((out / "data.json").read_text())["source"] is None
    assert main(args) == 0 and "done before, skipped" in capsys.readouterr().out  # resumed, still data-free
    assert main([*args, "--data", CSV]) == 0  # the data arrive: scratch runs, the rest is kept
    assert "student_scratch_w0.25_s0: test objective" in capsys.readouterr().out
    other = tmp_path / "other.csv"
    other.write_text((ROOT / CSV).read_text().replace("79\n", "80\n", 1))
    assert main(["run", CSV_SPEC, "--out", str(tmp_path / "o"), *QUICK, "--data", str(other),
                 "--teacher", str(teacher / "teacher.pt")]) == 1
    assert "differs in data" in capsys.readouterr().err


CONDITIONAL = """model cond_csv {
  data file { x = standardize(waiting), c = standardize(eruptions) }
  input c : Real[1]
  latent z : Normal[1](loc = 0, scale = 1)
  observed x : Normal[1]
  z, c -> x via mlp(8)
  guide { x, c -> z via mlp(8) }
  train elbo(steps = 20, batch = 64)
  distill(width = 0.5, steps = 20)
}
"""
"""A `data file` spec with an input node: every student of it is fed its inputs from the data."""


def test_the_api_takes_a_data_file_wherever_the_command_line_does(at_root) -> None:
    model = dgmc.loads(CONDITIONAL)
    teacher = dgmc.train(model, data=CSV)
    with pytest.raises(DataError, match=r"draws its input nodes from the data: pass data=PATH \(the data file\) "
                                        "or a mapping node -> tensor") as refused:
        dgmc.distill(model, teacher)
    assert "--data" not in str(refused.value)  # the API's words, not the command line's
    student = dgmc.distill(model, teacher, data=Path(CSV))
    assert math.isfinite(dgmc.evaluate(student))  # it knows its data file: the test split of it
    test_rows = load_split(student.ir).test
    assert dgmc.evaluate(student) == dgmc.evaluate(student, data=CSV) == dgmc.evaluate(student, data=test_rows)
    with pytest.raises(DataError, match=r"reads its data from a file \(`data file`\): pass data=PATH"):
        dgmc.evaluate(dgmc.compile(model))  # a module of the spec alone knows no file
    with pytest.raises(DataError, match="Only a spec whose data statement is `data file"):
        dgmc.train("specs/hm.dgm", data=CSV)


def test_the_api_takes_the_rows_themselves_as_a_mapping() -> None:
    model = dgmc.loads(CONDITIONAL)
    g = torch.Generator().manual_seed(0)
    rows = {"x": torch.randn(40, 1, generator=g), "c": torch.randn(40, 1, generator=g)}
    other = {"x": rows["x"] + 3, "c": rows["c"]}
    teacher = dgmc.train(model, data=rows)
    assert dgmc.evaluate(teacher, data=rows) != dgmc.evaluate(dgmc.train(model, data=other), data=rows)
    student = dgmc.distill(model, teacher, data=rows)
    assert math.isfinite(dgmc.evaluate(student, data=rows))
    with pytest.raises(dgmc.UserError, match=r"'x' has shape \(40, 2\), but it is observed Normal\[1\]"):
        dgmc.train(model, data={**rows, "x": torch.zeros(40, 2)})
    with pytest.raises(dgmc.UserError, match="data is a file's path \\(str or Path\\) or a mapping node -> tensor, "
                                             "not int"):
        dgmc.evaluate(student, data=3)
