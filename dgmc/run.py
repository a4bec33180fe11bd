"""`dgmc run SPEC`: the whole job. Train the teacher (or reuse a matching checkpoint),
distill every method x width x seed, evaluate, and write a run directory:

    RUN/spec.dgm            the spec the run was made from
    RUN/graph.svg           the model (graph.dot where graphviz's `dot` is missing)
    RUN/teacher/            teacher.pt, teacher.json, teacher_*.png
    RUN/students/           student_<method>_w<width>_s<seed>.{pt,json} and pictures
    RUN/metrics.json, .csv  one row per model
    RUN/report.md           the table in the paper's layout, and the pictures

A finished part (a checkpoint with its metrics JSON) is skipped when the run is started
again; a run directory made from another spec is refused.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path

from . import ir
from .distill import run_distill, student_name
from .errors import UserError
from .files import write_text
from .render import RenderError, render_file
from .train import checkpoint, train_teacher
from .train.loop import QUICK_STEPS


def run(model: ir.Model, source: str, out: Path, widths: Sequence[float] | None = None,
        methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None, quick: bool = False,
        device: str = "cpu", progress: bool = True, log=print, force: bool = False) -> list[dict]:
    widths = tuple(widths or model.distill.widths)
    methods = tuple(methods or model.distill.methods)
    seeds = tuple(seeds if seeds is not None else model.distill.seeds)
    _claim(out, model, source, force)
    _draw(model, out, log)
    teacher = _teacher(model, out / "teacher", quick, device, progress, log)
    rows = [teacher]
    for width in widths:
        for method in methods:
            for seed in seeds:
                rows.append(_student(model, out, width, method, seed, quick, device, progress, log))
    write_text(out / "metrics.json", json.dumps(rows, indent=2) + "\n")
    write_text(out / "metrics.csv", _csv(rows))
    write_text(out / "report.md", report(model, rows, quick, out))
    log(f"wrote {out / 'report.md'}")
    return rows


def _claim(out: Path, model: ir.Model, source: str, force: bool) -> None:
    """Write the spec into the run directory. A directory holding a run of another spec
    is refused, or with `force` emptied first (its results would not match the spec)."""
    copy = out / "spec.dgm"
    if copy.is_file() and _spec_hash_of(copy) != checkpoint.spec_hash(model):
        if not force:
            raise UserError(f"'{out}' holds a run of another spec (see {copy}): choose another --out, "
                            "or pass --force to replace it.")
        shutil.rmtree(out)
    write_text(copy, source)


def _spec_hash_of(path: Path) -> str | None:
    """The hash of the spec a run was made from (None if it no longer checks)."""
    from .api import loads
    from .errors import DgmError

    try:
        return checkpoint.spec_hash(loads(path.read_text(), str(path)))
    except DgmError:
        return None


def _draw(model: ir.Model, out: Path, log) -> None:
    try:
        render_file(model, out / "graph.svg", student=True)
    except RenderError as error:
        log(f"note: {error}")


def _teacher(model: ir.Model, out: Path, quick: bool, device: str, progress: bool, log) -> dict:
    meta_path, weights = out / "teacher.json", out / "teacher.pt"
    if meta_path.is_file() and weights.is_file():
        log(f"teacher: reusing {weights}")
        metrics = json.loads(meta_path.read_text())["metrics"]
    else:
        result = train_teacher(model, out, seed=0, device=device, quick=quick, progress=progress)
        metrics = result.metrics
        log(f"teacher: trained, test objective {metrics['test_objective']:.3f}")
    return {"model": "teacher", "method": "", "width": 1.0, "seed": 0, **metrics}


def _student(model: ir.Model, out: Path, width: float, method: str, seed: int, quick: bool, device: str,
             progress: bool, log) -> dict:
    name = student_name(method, width, seed)
    meta_path = out / "students" / f"{name}.json"
    if meta_path.is_file() and (out / "students" / f"{name}.pt").is_file():
        log(f"{name}: done before, skipped")
        metrics = json.loads(meta_path.read_text())["metrics"]
    else:
        result = run_distill(model, out / "teacher" / "teacher.pt", out / "students", width, method, seed,
                             device, QUICK_STEPS if quick else None, progress)
        metrics = result.metrics
        log(f"{name}: test objective {metrics['test_objective']:.3f}, fidelity {metrics['fidelity']:.4f}")
    return {"model": "student", **metrics}


def _csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def report(model: ir.Model, rows: list[dict], quick: bool, out: Path) -> str:
    """The paper's layout: one block per student size, one row per method, each metric
    as mean +- std over seeds; then the teacher, the loss and the pictures."""
    teacher = rows[0]
    objective = "-ELBO" if model.of_kind("latent") else "NLL"
    nodes = [n.name for n in model.nodes if f"fidelity[{n.name}]" in rows[-1]] if len(rows) > 1 else []
    head = ["student", "method", "#params", f"test {objective}", "L (fidelity)", *[f"L[{n}]" for n in nodes]]
    lines = [f"# dgmc run: {model.name}", "",
             f"Dataset: {model.data.dataset if model.data else '-'}. Teacher: {teacher['parameters']:,} parameters, "
             f"test {objective} {teacher['test_objective']:.3f} per example ({teacher['steps']} steps)."
             + (" **Quick run: few steps, numbers are smoke-test values.**" if quick else ""), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups: dict[tuple[float, str], list[dict]] = {}
    for row in rows[1:]:
        groups.setdefault((row["width"], row["method"]), []).append(row)
    for (width, method), group in groups.items():
        cells = [f"width {width:g}", method, f"{group[0]['parameters']:,}", _stat(group, "test_objective"),
                 _stat(group, "fidelity"), *[_stat(group, f"fidelity[{n}]") for n in nodes]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Mean +- std over seeds. {objective} of the test split per example (a distilled student's uses",
              "the teacher's guide as its proposal). L: the generated distillation terms (method ours, unweighted",
              "per node, bce measured as KL so that 0 is perfect; total weighted by lambda) between teacher",
              "and student on 1024 fresh noise draws.", "",
              "## Pictures", "", "![graph](graph.svg)", ""]
    pictures = sorted((out / "teacher").glob("teacher_*.png"))
    for (width, method), group in groups.items():
        pictures += sorted((out / "students").glob(f"{student_name(method, width, group[0]['seed'])}_*.png"))
    lines += [f"![{p.stem}]({p.relative_to(out)})" for p in pictures]
    return "\n".join(lines) + "\n"


def _stat(rows: list[dict], key: str) -> str:
    values = [row[key] for row in rows if key in row]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"
