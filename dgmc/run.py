"""`dgmc run SPEC`: the whole job. Train the teacher (or reuse a matching checkpoint),
distill every method x width x seed, evaluate, and write a run directory:

    RUN/spec.dgm            the spec the run was made from
    RUN/graph.svg           the model (graph.dot where graphviz's `dot` is missing)
    RUN/teacher/            teacher.pt, teacher.json, teacher_*.png
    RUN/students/           student_<method>_w<width>_s<seed>.{pt,json} and pictures
    RUN/metrics.json, .csv  one row per model: training, test objective, fidelity
    RUN/eval.json           the sample-based metrics of every model (`dgmc.evaluation`)
    RUN/report.md, .html    the tables in the paper's layout, verdicts, the heat map, the pictures

A finished part (a checkpoint of the same model, with its metrics JSON) is skipped when
the run is started again; a part made from other settings (a student's network or the
distillation recipe changed) is made again; a run directory made from another model is
refused.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from . import ir
from .check.load import load
from .core.errors import RenderError, UserError, words
from .core.files import LOCK_NAME, locked, write_bytes, write_text
from .datasets import Split, has_data, load_split, with_data
from .distillation.distill import DISTILLER, StudentJob, collapse, lambdas_of, run_distill, split_for
from .distillation.jobs import Job, Workers, run_jobs
from .evaluation.evaluate import SAMPLES, active_units, measure, setting
from .evaluation.likelihood import exact_metrics
from .losses.methods import METHODS, needs_data
from .lower import CompiledModel, compile_model
from .report.document import write_reports
from .report.render import render_file
from .report.report import report
from .training import checkpoint
from .training.iwae import iwae_metrics
from .training.loop import EVAL_SEED, check_trainable, device_of, quick_steps, train_teacher
from .training.objectives import OBJECTIVES


def run(model: ir.Model, source: str, out: Path, quick: bool = False, device: str = "cpu", progress: bool = True,
        log=print, force: bool = False, teacher: Path | None = None, workers: Workers | None = None) -> list[dict]:
    """Every student of the model's distillation grid (`model.distill`: widths, methods,
    lambdas, seeds). With `teacher`, a trained teacher's checkpoint, the run distills it
    rather than training one; a `data file` spec given no data then runs data-free: the
    methods that need data are skipped (and said so), and so are the metrics on data.
    With `workers` of more than one process, the students are distilled in that many
    processes.

    Everything the run reads (the device, the data, the teacher) is checked before its
    directory is touched, and the directory is locked only then: a refused run creates
    nothing, and `force` replaces a finished run only once the new one is known to start."""
    methods = model.distill.methods
    own = out / "teacher" / "teacher.pt"
    if not has_data(model):
        model, methods = _without_data(model, teacher or own, methods, log)
    if teacher is None and not own.is_file():  # a teacher is to be trained
        check_trainable(model)
    split, given = check_inputs(model, device, teacher or (own if not has_data(model) else None))
    record = _data_record(model, split)
    with locked(out):
        _claim(out, model, source, record, force, quick if teacher is None else None)  # a given teacher: not ours
        _draw(model, out, log)
        if teacher is not None and teacher.resolve() != own.resolve():
            _copy_teacher(teacher, given, out / "teacher", log)
        return _make(model, out, methods, quick, device, progress, log, workers)


def check_inputs(model: ir.Model, device: str = "cpu", teacher: Path | None = None, method: str | None = None
                 ) -> tuple[Split | None, dict | None]:
    """What a command reads, checked before it touches its output directory, so that a
    refused command creates, replaces and deletes nothing: the device, the data, every
    value against its node (`load_split`, the split returned), and a given teacher (this
    spec's: its metadata is returned). The data are needed to train a teacher (no
    `teacher`), by `method` where it needs them (`methods.needs_data`), and otherwise
    read where given."""
    device_of(device)
    if method is not None:
        split = split_for(model, method)
    else:
        split = load_split(model) if teacher is None or has_data(model) else None
    if teacher is None:
        return split, None
    known = checkpoint.with_recorded_data(teacher, model)
    return split, checkpoint.load(teacher, compile_model(known))  # refused unless it is this spec's teacher


def _make(model: ir.Model, out: Path, methods: tuple[str, ...], quick: bool, device: str, progress: bool, log,
          workers: Workers | None) -> list[dict]:
    """The claimed run directory's teacher, students, metrics and evaluation."""
    teacher = _teacher(model, out / "teacher", quick, device, progress, log)
    steps = quick_steps(model.distill.steps, quick)
    grid = [StudentJob(method=method, width=width, seed=seed, lam=lam, steps=steps, device=device, progress=progress,
                       quick=quick)
            for width in model.distill.widths for method in methods
            for lam in lambdas_of(model, method) for seed in model.distill.seeds]
    if workers is None or workers.processes == 1:
        students = [_student(model, out, job, log=log) for job in grid]
    else:  # each worker's bar stays off: the parent draws one for all
        jobs = [Job(partial(_student, model=model, out=out, job=replace(job, progress=False)), job.label, steps)
                for job in grid]
        students = run_jobs(jobs, workers, progress, log)
    rows = [teacher, *students]
    write_text(out / "metrics.json", json.dumps(rows, indent=2) + "\n")
    write_text(out / "metrics.csv", _csv(rows))
    evaluate_run(out, model, rows, device, log)
    return rows


def evaluate_run(out: Path, model: ir.Model, rows: list[dict], device: str = "cpu", log=print) -> dict:
    """Sample every model of the run, write eval.json and report.md (`dgmc eval`)."""
    results = evaluate(model, out, rows, device)
    write_text(out / "eval.json", json.dumps(results, indent=2) + "\n")
    for path in rewrite_report(out, model, rows, results):
        log(f"wrote {path}")
    return results


def rewrite_report(out: Path, model: ir.Model | None = None, rows: list[dict] | None = None,
                   results: dict | None = None) -> list[Path]:
    """report.md and report.html of a finished run from its metrics.json and eval.json
    (read when not given), measuring nothing again."""
    model = model or load_run_model(out)
    rows = rows if rows is not None else json.loads((out / "metrics.json").read_text())
    results = results if results is not None else json.loads((out / "eval.json").read_text())
    quick = any(row["steps"] < (model.train.steps if row["model"] == "teacher" else model.distill.steps)
                for row in rows)
    return write_reports(report(model, rows, quick, out, results), out)


def evaluate(model: ir.Model, out: Path, rows: list[dict], device: str = "cpu") -> dict:
    """The sample-based metrics of every model in `rows` (`dgmc.evaluation.measure`),
    and the active units of every model's guide (the teacher's, trained; a scratch
    student's, trained with the teacher's objective; a distilled student's, distilled;
    None where the latent's family has no mean):
    {"features": description or None, "models": {name: {key: value}}}."""
    split = load_split(model) if has_data(model) else None
    teacher = _load(model, out / "teacher" / "teacher.pt", None, device)
    students = {row["name"]: _load(model, out / "students" / f"{row['name']}.pt", row["width"], device)
                for row in rows if row["model"] == "student"}
    where = setting(model, split)
    results = measure(where, teacher, students)
    if split is not None and model.of_kind("latent") and OBJECTIVES[model.train.objective].latents:
        for name, compiled in {"teacher": teacher, **students}.items():
            for node, counts in active_units(compiled, split).items():
                results[name][f"AU[{node}]"] = None if counts is None else counts[0]
                results[name][f"dims[{node}]"] = model.node(node).size if counts is None else counts[1]
    described = where.featurizer.description if where.featurizer else None
    rows_used = len(where.data) if where.data is not None else None
    return {"features": described, "references": {"test rows": rows_used, "teacher samples": SAMPLES},
            "models": results}


def _load(model: ir.Model, path: Path, width: float | None, device: str) -> CompiledModel:
    compiled = compile_model(model, width).to(device_of(device))
    checkpoint.load(path, compiled, map_location=compiled._anchor.device)
    return compiled.eval()


def _claim(out: Path, model: ir.Model, source: str, record: dict, force: bool, quick: bool | None = None) -> None:
    """Write the spec, and the record of its data, into the run directory. A directory
    holding a run of another spec, of the same spec on other data, or a `--quick` run
    when this one is not (or the other way round), is refused, or with `force` emptied
    first (its results would not match, or would be smoke-test values reported as real)."""
    copy = out / "spec.dgm"
    why = None
    if copy.is_file() and _spec_hash_of(out) != checkpoint.spec_hash(model):
        why = f"a run of another spec or other data (see {copy} and {out / DATA_RECORD})"
    elif quick is not None and _was_quick(out, model) not in (None, quick):
        why = "a --quick run (a smoke test of few steps)" if not quick else "a full run (this one is --quick)"
    if why:
        if not force:
            raise UserError(f"'{out}' holds {why}: choose another --out, or pass --force to replace it.")
        for child in out.iterdir():  # all but the lock this process holds
            if child.name == LOCK_NAME:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    write_text(copy, source)
    write_text(out / DATA_RECORD, json.dumps(record, indent=2) + "\n")


def _was_quick(out: Path, model: ir.Model) -> bool | None:
    """Whether the run in `out` was a --quick one, as its teacher recorded (None: no
    teacher there yet); a teacher from before the record: trained fewer steps than the
    spec asks."""
    path = out / "teacher" / "teacher.json"
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    return meta.get("quick", model.train is not None and meta.get("steps", 0) < model.train.steps)


DATA_RECORD = "data.json"
"""What a run's data were: the dataset or the file (its path and content hash), and the
split (seed, test fraction, classes, rows on each side)."""


def _data_record(model: ir.Model, split: Split | None) -> dict:
    """The record (`DATA_RECORD`) of the model's data, read into `split` (None: a
    data-free run)."""
    data = model.data
    if data is None or split is None:  # data-free: the hash of the teacher's data, if known
        return {"dataset": data.dataset if data else None, "source": None, "digest": data.digest if data else None}
    source = str(Path(data.source).resolve()) if data.source else None
    return {"dataset": data.dataset, "source": source, "digest": data.digest, "split_seed": 0,
            "test_fraction": data.test_fraction, "classes": data.classes,
            "rows": {"train": split.rows("train"), "test": split.rows("test")}}


def load_run_model(out: Path, data: Path | None = None) -> ir.Model:
    """The model a run directory was made from: its spec, reading the data file it was
    run on (or `data`, which must hold the same contents, when the file has moved)."""
    return bind_recorded(load(out / "spec.dgm"), out, data)


def bind_recorded(model: ir.Model, out: Path, data: Path | None = None) -> ir.Model:
    """`model` reading the data file its run directory `out` recorded (or `data`, which
    must hold the same contents): resuming or evaluating a run needs no --data."""
    record = json.loads((out / DATA_RECORD).read_text()) if (out / DATA_RECORD).is_file() else {}
    if model.data is None or model.data.dataset != ir.FILE_DATASET:
        return model
    path = data or record.get("source")
    if path is None and record.get("digest"):  # a data-free run: its teacher's data, by hash only
        return model.model_copy(update={"data": model.data.model_copy(update={"digest": record["digest"]})})
    if path is None:
        raise UserError(f"'{out}' records no data file: give it with --data PATH.")
    bound = with_data(model, path)
    if record.get("digest") not in (None, bound.data.digest):
        raise UserError(f"'{path}' is not the data '{out}' was run on: its contents changed (hash "
                        f"{bound.data.digest}, the run's {record['digest']}).")
    return bound


def _spec_hash_of(out: Path) -> str | None:
    """The hash of the model a run was made from (None if it no longer checks, or its
    data file is gone)."""
    from .core.errors import DgmError

    try:
        return checkpoint.spec_hash(load_run_model(out))
    except (DgmError, UserError):
        return None


def _draw(model: ir.Model, out: Path, log) -> None:
    try:
        render_file(model, out / "graph.svg", student=True)
    except RenderError as error:
        log(f"note: {error}")


def _without_data(model: ir.Model, teacher: Path, methods: tuple[str, ...], log) -> tuple[ir.Model, tuple[str, ...]]:
    """A data-free run: the model knowing its teacher's data by hash, and the methods
    that need no data (each skipped one said so)."""
    if not teacher.is_file():
        raise UserError(f"'{model.name}' trains its teacher on data, and none was given: give the data file "
                        "with --data PATH, or a trained teacher with --teacher CKPT to distill without data.")
    kept = []
    for method in methods:
        why = needs_data(method, model)
        if why:
            log(f"{method}: skipped, it {why} and none was given (--data PATH)")
        else:
            kept.append(method)
    if not kept:
        raise UserError(f"Every method of this run needs the data of '{model.name}': give it with --data PATH.")
    return checkpoint.with_recorded_data(teacher, model), tuple(kept)


def _copy_teacher(given: Path, meta: dict, out: Path, log) -> None:
    """A given teacher (checked: `check_inputs`) copied into the run directory, with its
    metadata, to be reused as the run's own."""
    weights = out / "teacher.pt"
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(weights, given.read_bytes())
    write_text(out / "teacher.json", json.dumps(meta, indent=2) + "\n")
    log(f"teacher: {given}, copied to {weights}")


def _teacher(model: ir.Model, out: Path, quick: bool, device: str, progress: bool, log) -> dict:
    meta_path, weights = out / "teacher.json", out / "teacher.pt"
    if meta_path.is_file() and checkpoint.matches(weights, model):
        log(f"teacher: reusing {weights}")
        meta = json.loads(meta_path.read_text())
        metrics = _with_exact(model, weights, meta["metrics"], device, meta.get("quick", False))
    else:
        result = train_teacher(model, out, seed=0, device=device, quick=quick, progress=progress)
        metrics = result.metrics
        log(f"teacher: trained, test objective {metrics['test_objective']:.3f}")
    return {"model": "teacher", "name": "teacher", "method": "", "width": 1.0, "seed": 0, **metrics}


def _with_exact(model: ir.Model, weights: Path, metrics: dict, device: str, quick: bool) -> dict:
    """A reused teacher's metrics with its exact test NLL and its test IWAE estimate where
    they apply, for a teacher trained before dgmc computed them
    (`dgmc.evaluation.likelihood`, `dgmc.training.iwae`)."""
    exact = "test_exact_nll" in metrics or "test_exact_nll_skipped" in metrics
    if (exact and "test_iwae" in metrics) or not has_data(model):
        return metrics
    teacher, test = _load(model, weights, None, device), load_split(model).test
    test = {k: v.to(teacher._anchor.device) for k, v in test.items()}
    estimate = iwae_metrics(teacher, test, EVAL_SEED, quick=quick)
    return {**metrics, **({} if exact else exact_metrics(teacher, test)), **estimate}


def _with_collapse(model: ir.Model, out: Path, name: str, width: float, metrics: dict, device: str) -> dict:
    """A reused distilled student's metrics with its dead layers (`distillation.collapse`),
    for a student made before dgmc counted them (one trained without distilling keeps
    its metrics as they are)."""
    how = METHODS.get(metrics.get("method"))
    if "dead_layers" in metrics or (how is not None and not how.distills):
        return metrics
    teacher = _load(model, out / "teacher" / "teacher.pt", None, device)
    student = _load(model, out / "students" / f"{name}.pt", width, device)
    split = load_split(model) if has_data(model) else None
    return {**metrics, **collapse(model, teacher, student, split)}


def _student(model: ir.Model, out: Path, job: StudentJob, log: Callable[[str], None] = print) -> dict:
    name = job.name
    meta_path = out / "students" / f"{name}.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("distiller") == DISTILLER \
            and checkpoint.matches(out / "students" / f"{name}.pt", model, job.width):
        log(f"{name}: done before, skipped")
        metrics = _with_collapse(model, out, name, job.width, json.loads(meta_path.read_text())["metrics"],
                                 job.device)
    else:
        result = run_distill(model, out / "teacher" / "teacher.pt", out / "students", job)
        metrics = result.metrics
        tested = metrics["test_objective"]
        tested = f"test objective {tested:.3f}" if tested is not None else "no test data"
        log(f"{name}: {tested}, fidelity {metrics['fidelity']:.4f}")
    return {"model": "student", "name": name, **metrics}


def _csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def load_trained(path: str | Path, spec: str | Path | None = None, student: str | None = None
                 ) -> tuple[CompiledModel, Path]:
    """The trained model `path` names, in eval mode, and its checkpoint: a checkpoint (its
    spec found in the run directory above it, or given) or a run directory (its teacher,
    or the student named `student`, a file stem under students/)."""
    path = Path(path)
    if path.is_dir():
        if not (path / "spec.dgm").is_file():
            raise checkpoint.CheckpointError(f"'{path}' is not a run directory: it has no spec.dgm.")
        model = load_run_model(path)
        ckpt = path / "students" / f"{student}.pt" if student else path / "teacher" / "teacher.pt"
        if not ckpt.is_file():
            known = sorted(p.stem for p in (path / "students").glob("*.pt") if not p.stem.endswith(".last_good"))
            listing = f"; its students: {', '.join(known)}" if known else "; it has no students yet"
            raise checkpoint.CheckpointError(f"'{path}' has no {'student ' + student if student else 'teacher'} "
                                             f"({ckpt}){listing}.")
    else:
        ckpt = path
        found = spec or next((d / "spec.dgm" for d in path.resolve().parents if (d / "spec.dgm").is_file()), None)
        if found is None:
            raise checkpoint.CheckpointError(f"No spec for '{path}': it is not inside a run directory; "
                                             f"{words('spec')}.")
        model = load(found)
    compiled = compile_model(checkpoint.with_recorded_data(ckpt, model), checkpoint.recorded_width(ckpt))
    checkpoint.load(ckpt, compiled)
    return compiled.eval(), ckpt
