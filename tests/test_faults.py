"""Faults: a non-finite loss or gradient stops training with the term and node named,
and keeps the last good weights; the data are checked for non-finite values."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.datasets import DataError, load_split
from dgmc.training import checkpoint
from dgmc.training import objectives as objectives_module
from dgmc.training.loop import TrainingError

ROOT = Path(__file__).resolve().parents[1]
HM = ROOT / "specs/hm.dgm"


def _replace_objective(monkeypatch: pytest.MonkeyPatch, name: str, run) -> None:
    entry = objectives_module.OBJECTIVES[name]
    monkeypatch.setitem(objectives_module.OBJECTIVES._entries, name, dataclasses.replace(entry, run=run))


def _poisoned(objective, at_step: int, term: str, kind: str):
    """Wrap an objective so that at step `at_step` one term (or a gradient) is not finite."""
    calls = {"n": 0}

    def wrapped(model, batch, generator=None, beta=1.0):
        loss, terms = objective(model, batch, generator, beta)
        calls["n"] += 1
        if calls["n"] == at_step:
            if kind == "loss":
                loss = loss + torch.tensor(float("nan"))
                terms = {**terms, term: torch.tensor(float("nan"))}
            else:  # a finite loss whose gradient is not finite in y1's network: d sqrt(x)/dx at 0
                weight = model.nets["p_y1"][0].weight
                loss = loss + torch.sqrt((weight - weight.detach()).sum() ** 2)
        return loss, terms

    return wrapped


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_non_finite_training_stops_names_the_place_and_keeps_the_good_weights(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", str(HM), "--out", str(out), "--quick", "--no-progress"]) == 0
    good = (out / "teacher.pt").read_bytes()
    poisoned = _poisoned(objectives_module.wake_sleep, 7, "wake[y1]", kind)
    _replace_objective(monkeypatch, "wake_sleep", poisoned)
    assert main(["train", str(HM), "--out", str(out), "--quick", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "step 7" in err and "Traceback" not in err
    assert ("first in term wake[y1]" in err) if kind == "loss" else ("network of node 'y1'" in err)
    assert (out / "teacher.pt").read_bytes() == good  # the earlier checkpoint is untouched
    last_good = dgmc.lower.compile_model(dgmc.load(HM))
    meta = checkpoint.load(out / "teacher.last_good.pt", last_good)
    assert meta["failed_at_step"] == 7
    assert all(torch.isfinite(p).all() for p in last_good.parameters())


def test_training_error_is_raised_before_the_bad_step(monkeypatch: pytest.MonkeyPatch) -> None:
    model = dgmc.load(HM)
    compiled = dgmc.lower.compile_model(model)
    poisoned = _poisoned(objectives_module.wake_sleep, 3, "sleep[z1]", "loss")
    _replace_objective(monkeypatch, "wake_sleep", poisoned)
    from dgmc.training.loop import fit

    with pytest.raises(TrainingError, match=r"step 3: .*first in term sleep\[z1\]") as caught:
        fit(compiled, model.train, load_split(model).train, 10, seed=0, progress=False)
    assert caught.value.module is compiled and caught.value.step == 2


@pytest.mark.parametrize(("spec", "objective", "parameter", "named"), [
    ("tests/good/learned_init.dgm", "mle", "inits.h", "the learned initial value of node 'h' (inits.h)"),
    ("specs/hm.dgm", "wake_sleep", "nets.q_z1.0.weight", "the guide network of node 'z1' (nets.q_z1.0.weight)"),
    ("specs/hm.dgm", "wake_sleep", "free.p_z4", "the free parameters of node 'z4' (free.p_z4)"),
])
def test_a_non_finite_gradient_names_the_node_and_role_of_its_parameter(
        spec: str, objective: str, parameter: str, named: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = dgmc.load(ROOT / spec)
    compiled = dgmc.lower.compile_model(model)
    weight = dict(compiled.named_parameters())[parameter]
    real = objectives_module.OBJECTIVES[objective].run

    def poisoned(module, batch, generator=None, beta=1.0):  # d sqrt(x)/dx at 0: a finite loss, a NaN gradient
        loss, terms = real(module, batch, generator, beta)
        return loss + torch.sqrt((weight - weight.detach()).sum() ** 2), terms

    _replace_objective(monkeypatch, objective, poisoned)
    from dgmc.training.loop import fit

    with pytest.raises(TrainingError, match=re.escape(f"step 1: a gradient became non-finite, first in {named}")):
        fit(compiled, model.train, load_split(model).train, 3, seed=0, progress=False)


def test_non_finite_data_is_a_clear_error_naming_node_and_column(monkeypatch: pytest.MonkeyPatch) -> None:
    def with_nan(table):
        table["waiting"][5] = float("nan")
        return table

    _patched_raw(monkeypatch, with_nan)
    with pytest.raises(DataError, match=r"(?s)line 3.*In old_faithful, row 5, column 'waiting' holds a value"):
        load_split(dgmc.load(HM))


RUN = ["run", str(HM), "--quick", "--no-progress", "--seeds", "0", "--methods", "ours", "scratch", "--lambdas", "1"]


def _metrics(out: Path) -> list[dict]:
    """The run's metrics without wall-clock times."""
    rows = json.loads((out / "metrics.json").read_text())
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


_KILLED_DURING = {
    # moment: (the file whose appearance starts the moment, the file that must not exist yet when killed)
    "distillation": ("students/student_ours_w0.25_s0.json", "students/student_scratch_w0.25_s0.json"),
    "evaluation": ("metrics.json", "eval.json"),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    subprocess.run([sys.executable, "-m", "dgmc.cli", *RUN, "--out", str(out)], check=True, capture_output=True,
                   cwd=ROOT)
    return out


@pytest.mark.parametrize("moment", list(_KILLED_DURING))
def test_a_run_killed_with_sigkill_resumes_to_the_same_results(moment: str, uninterrupted: Path,
                                                               tmp_path: Path) -> None:
    """Killed while the second student is distilled, or while the models are evaluated,
    a run started again finishes with the metrics and evaluation of a run never killed."""
    command = [sys.executable, "-m", "dgmc.cli", *RUN, "--out", str(tmp_path)]
    started, unfinished = (tmp_path / name for name in _KILLED_DURING[moment])
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it was killed"
    assert started.exists() and not unfinished.exists(), f"not killed during {moment}"
    resumed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    assert "teacher: reusing" in resumed.stdout and "student_ours_w0.25_s0: done before, skipped" in resumed.stdout
    assert _metrics(tmp_path) == _metrics(uninterrupted)
    assert (tmp_path / "eval.json").read_text() == (uninterrupted / "eval.json").read_text()


def test_force_replaces_a_run_of_another_spec(tmp_path: Path, capsys) -> None:
    other = tmp_path / "hm9.dgm"
    other.write_text(HM.read_text().replace("mlp(8)", "mlp(9)"))
    out = tmp_path / "run"
    assert main([*RUN[:1], str(other), *RUN[2:], "--methods", "ours", "--out", str(out)]) == 0
    assert main([*RUN, "--out", str(out)]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert main([*RUN, "--out", str(out), "--force"]) == 0
    recorded = dgmc.load(out / "spec.dgm").distill  # the spec with the command line's settings
    assert (recorded.seeds, recorded.methods, recorded.lambdas) == ((0,), ("ours", "scratch"), (1.0,))
    assert dgmc.load(out / "spec.dgm").nodes == dgmc.load(HM).nodes
    assert sorted(p.name for p in (out / "students").glob("*.pt")) == [
        "student_ours_w0.25_s0.pt", "student_scratch_w0.25_s0.pt"]


CSV_SPEC, CSV = ROOT / "examples/faithful_csv.dgm", ROOT / "examples/data/faithful.csv"
CSV_RUN = ["--quick", "--no-progress", "--methods", "ours", "--seeds", "0"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished quick run of a `data file` spec, which the refused commands must leave alone."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", str(CSV_SPEC), "--data", str(CSV), "--out", str(out), *CSV_RUN]) == 0
    return out


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with the hash of its bytes ("folder" for a folder)."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            if path.is_file() else "folder" for path in sorted(folder.rglob("*"))}


def _bad_inputs(folder: Path) -> dict[str, Path]:
    """A spec that does not parse, data with a NaN, other (good) data, a truncated teacher."""
    made = {"spec": folder / "broken.dgm", "nan": folder / "nan.csv", "other": folder / "other.csv",
            "teacher": folder / "cut.pt"}
    made["spec"].write_text(CSV_SPEC.read_text().replace("}", "", 1))
    lines = CSV.read_text().splitlines(keepends=True)
    made["nan"].write_text("".join([*lines[:5], "inf,79\n", *lines[6:]]))  # (a NaN would be a missing value)
    made["other"].write_text(CSV.read_text().replace("79\n", "80\n", 1))
    made["teacher"].write_bytes(b"PK\x03\x04" + bytes(100))
    return made


_REFUSED = {  # what is wrong: (how the command changes, what it says)
    "spec": (lambda a, m: [a[0], str(m["spec"]), *a[2:]], "Syntax error in"),
    "data": (lambda a, m: [*a, "--data", str(m["nan"])], "holds a value that is missing or not finite"),
    "plugin": (lambda a, m: [*a, "--plugin", "no_such_dgmc_plugin"], "no module named 'no_such_dgmc_plugin'"),
    "teacher": (lambda a, m: [*a, "--teacher", str(m["teacher"])], "is truncated or damaged"),
    "stage": (lambda a, m: [*a, "--stage", "2"], "--stage is the share of the steps"),
    "widths": (lambda a, m: [*a, "--widths", "0"], "A width must be positive, not 0"),
    "lambdas": (lambda a, m: [*a, "--lambdas", "1", "-1"], "lambda weighs the latent terms and must be >= 0, not -1"),
    "seeds": (lambda a, m: [*a, "--seeds", "-2"], "A seed must be an integer >= 0, not -2"),
    "device": (lambda a, m: [*a, "--device", "gpu9"], "Unknown device 'gpu9'"),
}


@pytest.mark.parametrize("wrong", list(_REFUSED))
def test_a_refused_forced_run_leaves_the_finished_run_byte_for_byte(wrong: str, finished: Path, tmp_path: Path,
                                                                   capsys) -> None:
    """`--force` on other data would replace the finished run; one bad input, checked
    before the directory is touched, refuses the whole command instead."""
    made = _bad_inputs(tmp_path)
    forced = ["run", str(CSV_SPEC), "--out", str(finished), "--force", *CSV_RUN]
    edit, said = _REFUSED[wrong]
    args = edit(forced, made)
    if wrong != "data":
        args += ["--data", str(made["other"])]
    before = _snapshot(finished)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert _snapshot(finished) == before


def test_a_refused_command_creates_no_output_folder(finished: Path, tmp_path: Path, capsys) -> None:
    """Bad data refuse run, train and distill before their --out folder exists; so does a
    method that needs data when none is given."""
    made = _bad_inputs(tmp_path)
    teacher = str(finished / "teacher" / "teacher.pt")
    commands = {
        "run": ["run", str(CSV_SPEC), *CSV_RUN, "--data", str(made["nan"])],
        "train": ["train", str(CSV_SPEC), "--quick", "--no-progress", "--data", str(made["nan"])],
        "distill": ["distill", str(CSV_SPEC), "--teacher", teacher, "--quick", "--no-progress",
                    "--data", str(made["nan"])],
        "distill scratch": ["distill", str(CSV_SPEC), "--teacher", teacher, "--method", "scratch", "--quick",
                            "--no-progress"],
    }
    for name, command in commands.items():
        out = tmp_path / name
        assert main([*command, "--out", str(out)]) == 1, name
        err = capsys.readouterr().err
        assert ("not finite" in err or "give the data file with --data PATH" in err), err
        assert not out.exists(), f"{name} left {out} behind"


def test_a_refused_train_or_continual_creates_no_output_folder(tmp_path: Path, capsys) -> None:
    """A spec with data but no recipe refuses `train`, and classes the data do not hold
    refuse `continual`, before their --out folder exists."""
    no_recipe = tmp_path / "no_recipe.dgm"
    no_recipe.write_text(re.sub(r"\n\s*train [^\n]*", "", (ROOT / "specs" / "vae.dgm").read_text()))
    commands = {
        "train": (["train", str(no_recipe), "--quick"], "nothing to train on"),
        "continual": (["continual", str(ROOT / "specs" / "cvae.dgm"), "--new", "42", "--quick"],
                      "must be classes of the data"),
    }
    for name, (command, said) in commands.items():
        out = tmp_path / name
        assert main([*command, "--no-progress", "--out", str(out)]) == 1, name
        assert said in capsys.readouterr().err
        assert not out.exists(), f"{name} left {out} behind"


def _patched_raw(monkeypatch: pytest.MonkeyPatch, edit) -> None:
    import dgmc.datasets as datasets

    entry = datasets.DATASETS["old_faithful"]
    changed = dataclasses.replace(entry, load=lambda: edit(entry.load()))
    monkeypatch.setitem(datasets.DATASETS._entries, "old_faithful", changed)


def test_wrong_data_dimensions_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    _patched_raw(monkeypatch, lambda t: {**t, "waiting": np.hstack([t["waiting"], t["waiting"]])})
    with pytest.raises(DataError, match=r"'y2' takes 1 values per row, but column 'waiting' of old_faithful gives 2"):
        load_split(dgmc.load(HM))


def test_an_empty_dataset_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _patched_raw(monkeypatch, lambda t: {k: v[:0] for k, v in t.items()})
    with pytest.raises(DataError, match="old_faithful holds 0 row"):
        load_split(dgmc.load(HM))


class _Payload:
    """Not a tensor or a plain container: unpickling it would run arbitrary code paths."""


def test_checkpoints_that_are_not_ours_are_refused_without_unpickling(tmp_path: Path) -> None:
    model = dgmc.load(HM)
    compiled = dgmc.lower.compile_model(model)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "something else", "state_dict": {}}, foreign)
    with pytest.raises(checkpoint.CheckpointError, match="is not a dgmc checkpoint"):
        checkpoint.load(foreign, compiled)
    pickled = tmp_path / "object.pt"
    torch.save({"format": checkpoint.FORMAT, "payload": _Payload()}, pickled)
    with pytest.raises(checkpoint.CheckpointError, match="holds objects other than weights"):
        checkpoint.load(pickled, compiled)  # weights_only=True refuses the object
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x04not a checkpoint at all")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable dgmc checkpoint"):
        checkpoint.load(garbage, compiled)


@pytest.mark.parametrize("kept", [0.0, 0.5, 0.99])
def test_a_truncated_checkpoint_says_it_is_truncated(kept: float, tmp_path: Path) -> None:
    compiled = dgmc.lower.compile_model(dgmc.load(HM))
    whole = checkpoint.save(tmp_path / "whole.pt", compiled, {}).read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[:int(len(whole) * kept)])
    with pytest.raises(checkpoint.CheckpointError, match=r"'.*cut\.pt' is not a readable dgmc checkpoint: the "
                       r"file is truncated or damaged"):
        checkpoint.load(cut, compiled)


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    from dgmc.core.files import atomic, write_text

    path = write_text(tmp_path / "metrics.json", "old\n")
    with pytest.raises(KeyboardInterrupt), atomic(path) as temporary:
        temporary.write_text("half of the new conte")
        raise KeyboardInterrupt  # killed mid-write
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


_HOLD = "import sys, time\nfrom dgmc.core.files import locked\n" \
        "with locked(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n"


def test_a_second_writer_is_refused_and_a_killed_writers_lock_is_taken_over(tmp_path: Path, capsys) -> None:
    from dgmc.core.files import LOCK_NAME, locked

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert holder.stdout.readline() == b"held\n"
        (out / "spec.dgm").write_text(HM.read_text())  # a run directory, still being written
        commands = ["train", str(HM), "--out", str(out), "--quick"], ["eval", str(out)], [*RUN, "--out", str(out)]
        for command in commands:
            assert main(command) == 1
            assert capsys.readouterr().err == (f"dgmc: error: '{out}' is being written by another dgmc process "
                                               f"(pid {holder.pid}): wait for it to finish, or choose another "
                                               "output directory.\n")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "spec.dgm"]  # the refused wrote nothing
    finally:
        holder.kill()
        holder.wait()
    assert (out / LOCK_NAME).read_text() == f"{holder.pid}\n"  # left behind by the killed holder: stale
    with locked(out) as lock:
        assert lock.read_text() == f"{os.getpid()}\n"
    assert not (out / LOCK_NAME).exists()
