"""What each `dgmc` command does, one function per command over a checked model and
paths: the command line (`dgmc.cli.commands`) maps its arguments to one of these and
prints what it returns. They choose directories, bind the data, apply the command
line's settings through the checker, take the run directory's lock, and hand over to
the stage that does the work (`run`, `training`, `distillation`).
"""

from __future__ import annotations

import contextlib
import json
from functools import partial
from pathlib import Path

from . import ir
from .check.overrides import NO_OVERRIDES, Overrides, apply, recorded
from .core.errors import UserError
from .core.files import locked
from .datasets import with_data
from .distillation.distill import StudentJob, run_distill
from .distillation.jobs import Workers
from .run import DATA_RECORD, bind_recorded, check_inputs, evaluate_run, load_run_model, run
from .scale import ddp
from .training.loop import Trained, check_trainable, quick_steps, report_to, scalars_to, train_teacher


def default_out(model: ir.Model, quick: bool = False) -> Path:
    """Where `dgmc run` writes without --out: runs/<spec name>, and runs/<spec name>-quick
    for a --quick run, so that smoke tests stay apart."""
    return Path("runs") / (model.name + ("-quick" if quick else ""))


def run_spec(model: ir.Model, source: str, filename: str, out: Path | None = None, data: Path | None = None,
             overrides: Overrides = NO_OVERRIDES, quick: bool = False, device: str = "cpu", progress: bool = True,
             force: bool = False, teacher: Path | None = None, jobs: int = 1, threads: int = 1,
             plugins: tuple[str, ...] = (), tensorboard: bool = False, log=print) -> list[dict]:
    """`dgmc run`: the checked spec `model` (its text `source`, read from `filename`) on
    `data` (default: the data file the run directory recorded, when resuming), with the
    distillation settings `overrides` in place of the spec's (each checked as the spec's
    own; the run directory's spec.dgm records them), in `jobs` worker processes."""
    out = out or default_out(model, quick)
    if data is not None:
        model = with_data(model, data)
    elif (out / DATA_RECORD).is_file():  # resuming: the data file the run recorded
        model = bind_recorded(model, out)
    model = apply(model, overrides)
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {jobs}.")
    workers = Workers(jobs, threads, plugins, partial(report_to, scalars_at(out, tensorboard)))
    return run(model, recorded(source, filename, overrides), out, quick, device, progress, log, force=force,
               teacher=teacher, workers=workers)


def train_spec(model: ir.Model, out: Path, data: Path | None = None, seed: int = 0, device: str = "cpu",
               quick: bool = False, progress: bool = True, tensorboard: bool = False) -> Trained:
    """`dgmc train`: the teacher trained into `out`, everything it reads checked first (a
    refused command creates nothing); the metrics are empty on a rank other than 0."""
    model = with_data(model, data) if data is not None else model
    check_trainable(model)
    check_inputs(model, device)
    scalars_at(out, tensorboard)
    with writing(out):
        return train_teacher(model, out, seed=seed, device=device, quick=quick, progress=progress)


def distill_spec(model: ir.Model, teacher: Path, out: Path | None = None, data: Path | None = None,
                 method: str = "ours", overrides: Overrides = NO_OVERRIDES, quick: bool = False, device: str = "cpu",
                 progress: bool = True, tensorboard: bool = False) -> tuple[ir.Model, StudentJob, Trained]:
    """`dgmc distill`: one student of `teacher` (a checkpoint) by `method`, its width,
    seed and lambda (default: the spec's first) and recipe from `overrides` (each checked
    as the spec's own), written into `out` (default: the teacher's folder). Returns the
    model it was made from, the student's job and what it made."""
    model = apply(with_data(model, data) if data is not None else model, overrides)
    given = dict(zip(overrides.keys, overrides.args, strict=True))
    job = StudentJob(method=method, width=model.distill.widths[0], seed=model.distill.seeds[0],
                     lam=model.distill.lambdas[0] if "lambda" in given else None,
                     steps=quick_steps(model.distill.steps, quick), device=device, progress=progress, quick=quick)
    check_inputs(model, device, teacher, method)  # a refused command creates nothing
    out = out or teacher.parent
    scalars_at(out, tensorboard)
    with writing(out):
        return model, job, run_distill(model, teacher, out, job)


def continual_spec(model: ir.Model, out: Path | None = None, data: Path | None = None,
                   new: list[int] | None = None, seeds: list[int] | None = None, quick: bool = False,
                   device: str = "cpu", progress: bool = True, tensorboard: bool = False) -> None:
    """`dgmc continual`: into `out` (default runs/<spec name>_continual)."""
    from .distillation import continual

    model = with_data(model, data) if data is not None else model
    out = out or Path("runs") / f"{model.name}_continual"
    continual.check_inputs(model, new, device)  # a refused command creates nothing
    scalars_at(out, tensorboard)
    with locked(out):
        continual.continual(model, out, new, seeds, quick=quick, progress=progress, device=device)


def eval_run(out: Path, data: Path | None = None, device: str = "cpu", log=print) -> dict:
    """`dgmc eval`: every model of the finished run in `out` measured again, its report
    rewritten."""
    spec, metrics = out / "spec.dgm", out / "metrics.json"
    if not spec.is_file():
        raise UserError(f"'{out}' is not a run directory: it has no spec.dgm "
                        "(make one with `dgmc run SPEC --out DIR`).")
    with locked(out):  # before looking for metrics.json: a run still writing them is named as such
        if not metrics.is_file():
            raise UserError(f"'{out}' is not a finished run: it has no metrics.json (finish it with "
                            "`dgmc run SPEC --out DIR`).")
        return evaluate_run(out, load_run_model(out, data), json.loads(metrics.read_text()), device, log)


def scalars_at(out: Path, tensorboard: bool) -> Path | None:
    """With `tensorboard`, where the training loops write their scalars (set for them)."""
    directory = out / "tensorboard" if tensorboard else None
    scalars_to(directory)
    return directory


def writing(out: Path):
    """The output directory's lock, held by rank 0 alone (the one process that writes)."""
    return locked(out) if ddp.world().main else contextlib.nullcontext()
