"""Scale-out: `dgmc run --jobs 2` writes the run directory `--jobs 1` writes; a student
distilled by 2 gloo processes (torchrun) equals the one distilled by 1 process on the
same global batch; the noise a distributed step draws is the sample's own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import HM_RUN

import dgmc
from dgmc.lower import compile_model

ROOT = Path(__file__).resolve().parents[1]
HM = ROOT / "specs/hm.dgm"


def dgmc_cli(*args: str, launcher: tuple[str, ...] = ("-m", "dgmc")) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *launcher, *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def without_times(value):
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["state_dict"]


def test_jobs_2_writes_what_jobs_1_writes(hm_run: Path, tmp_path: Path) -> None:
    """hm_run's grid at seed 0 again, with --jobs 2 (its teacher given): the same metrics,
    sample metrics and students, bit for bit."""
    out = tmp_path / "run"
    grid = [*HM_RUN[:HM_RUN.index("--seeds")], "--seeds", "0", *HM_RUN[HM_RUN.index("--methods"):]]
    dgmc_cli("run", str(HM), *grid, "--jobs", "2", "--out", str(out), "--teacher", str(hm_run / "teacher/teacher.pt"))
    rows = without_times(json.loads((out / "metrics.json").read_text()))
    serial = [row for row in without_times(json.loads((hm_run / "metrics.json").read_text())) if row["seed"] == 0]
    assert rows == serial and len(rows) == 4  # the teacher and three students
    models = json.loads((out / "eval.json").read_text())["models"]
    assert models == {name: values for name, values in json.loads((hm_run / "eval.json").read_text())["models"].items()
                      if name in models}
    students = sorted(p.name for p in (out / "students").glob("*.pt"))
    assert len(students) == 3
    for name in students:
        ours, theirs = weights(out / "students" / name), weights(hm_run / "students" / name)
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name


def test_two_gloo_processes_distill_the_student_one_process_does(hm_run: Path, tmp_path: Path) -> None:
    """One of hm_run's students (ours, lambda 1, seed 0, made by one process) distilled
    again by two (torchrun, gloo) on the same global batch."""
    two = dgmc_cli("distill", str(HM), "--teacher", str(hm_run / "teacher/teacher.pt"), "--quick", "--no-progress",
                   "--lambda", "1", "--seed", "0", "--out", str(tmp_path),
                   launcher=("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dgmc"))
    assert two.stdout.count("ours student of width 0.25") == 1  # only rank 0 reports (and writes)
    name = "student_ours_w0.25_l1_s0"
    one, both = weights(hm_run / "students" / f"{name}.pt"), weights(tmp_path / f"{name}.pt")
    for key in one:  # the gradient averaged over two halves of the batch: float sums in another order
        torch.testing.assert_close(both[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (hm_run / "students").iterdir()
                                                                 if p.name.startswith(name))


@pytest.mark.parametrize("name", ["hm", "vrnn", "ssm"])
def test_drawn_noise_run_again_is_the_sample(name: str) -> None:
    compiled = compile_model(dgmc.load(ROOT / f"specs/{name}.dgm"))
    inputs = {n.name: torch.zeros(5, *((compiled.steps,) if n.timed else ()), n.size)
              for n in compiled.ir.of_kind("input")}
    sample = compiled.sample(5, inputs, torch.Generator().manual_seed(3))
    again = compiled.run(compiled.draw(5, torch.Generator().manual_seed(3)), inputs)
    for node, value in sample.values.items():
        assert torch.equal(value, again.values[node]), node


def test_a_worker_reports_through_the_hook_it_is_given(tmp_path: Path) -> None:
    """A `--jobs` worker's training loops send their progress to the parent's queue and
    write TensorBoard scalars where the hook (`training.loop.report_to`) says: what
    `dgmc run --jobs N --tensorboard` gives each worker."""
    import functools
    import queue

    from dgmc.distillation.jobs import _start_worker
    from dgmc.training import loop

    updates: queue.Queue = queue.Queue()
    threads = torch.get_num_threads()
    try:
        _start_worker(threads, (), functools.partial(loop.report_to, tmp_path / "tensorboard"), updates)
        assert loop._scalars == tmp_path / "tensorboard"
        loop._progress("student", 3, 10)
        assert updates.get_nowait() == ("student", 3)
    finally:
        loop.progress_to(None)
        loop.scalars_to(None)
