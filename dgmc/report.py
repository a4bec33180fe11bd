"""`report.md` of a run: the tables in the paper's layout (one block per student size,
one row per method, each figure as mean +- std over seeds), the plain verdict of each
comparison, the teacher's active units, and the pictures."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path

from . import ir
from .distill import student_name
from .metrics import METRICS

Group = tuple[float, str, float | None]
"""(width, method, lambda): the seeds of one student configuration."""


def report(model: ir.Model, rows: list[dict], quick: bool, out: Path, results: dict | None = None) -> str:
    teacher = rows[0]
    objective = "-ELBO" if model.of_kind("latent") else "NLL"
    lines = [f"# dgmc run: {model.name}", "",
             f"Dataset: {model.data.dataset if model.data else '-'}. Teacher: {teacher['parameters']:,} generative "
             f"parameters, test {objective} {teacher['test_objective']:.3f} per example ({teacher['steps']} steps)."
             + (" **Quick run: few steps, numbers are smoke-test values.**" if quick else ""), ""]
    groups = _groups(model, rows)
    lines += _training_table(model, rows, groups, objective)
    if results is not None:
        lines += _sample_tables(model, results, groups, rows)
    lines += ["## Pictures", "", "![graph](graph.svg)", ""]
    pictures = sorted((out / "teacher").glob("teacher_*.png"))
    for (width, method, lam), group in groups.items():
        pictures += sorted((out / "students").glob(f"{student_name(method, width, group[0]['seed'], lam)}_*.png"))
    lines += [f"![{p.stem}]({p.relative_to(out)})" for p in pictures]
    return "\n".join(lines) + "\n"


def _groups(model: ir.Model, rows: list[dict]) -> dict[Group, list[dict]]:
    """The student rows by configuration; lambda is part of it only in an ablation."""
    ablation = len(model.distill.lambdas) > 1
    groups: dict[Group, list[dict]] = {}
    for row in rows[1:]:
        lam = row.get("lambda") if ablation and row["method"] == "ours" else None
        groups.setdefault((row["width"], row["method"], lam), []).append(row)
    return groups


def _label(method: str, lam: float | None) -> str:
    return method if lam is None else f"{method} (λ={lam:g})"


def _training_table(model: ir.Model, rows: list[dict], groups: dict[Group, list[dict]], objective: str) -> list[str]:
    nodes = [n.name for n in model.nodes if f"fidelity[{n.name}]" in rows[-1]] if len(rows) > 1 else []
    head = ["student", "method", "#params", f"test {objective}", "L (fidelity)", *[f"L[{n}]" for n in nodes]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (width, method, lam), group in groups.items():
        cells = [f"width {width:g}", _label(method, lam), f"{group[0]['parameters']:,}",
                 _stat(group, "test_objective"), _stat(group, "fidelity"),
                 *[_stat(group, f"fidelity[{n}]") for n in nodes]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Mean +- std over seeds. {objective} of the test split per example (a distilled student's "
              "uses the teacher's guide as its proposal). L: the generated distillation terms (method ours, "
              "bce measured as KL so that 0 is perfect) between teacher and student on 1024 fresh noise "
              "draws, and their unweighted sum. #params: generative networks only.", ""]
    return lines


def _sample_tables(model: ir.Model, results: dict, groups: dict[Group, list[dict]], rows: list[dict]) -> list[str]:
    models = results["models"]
    teacher = models["teacher"]
    spaces = list(dict.fromkeys(key.split(":")[0] for key in teacher if ":" in key))
    refs = results["references"]
    against = (f"against the test split ({refs['test rows']} rows, as many samples) and, in the -T columns, "
               if refs["test rows"] is not None else
               "(a data-free run: no data, so only the -T columns, which compare with the teacher) ")
    lines = ["## Samples", "",
             f"Each model's samples {against}"
             f"against {refs['teacher samples']} of the teacher's samples (as many samples). "
             "The teacher's -T row compares two independent teacher draws: a noisy floor, which a student reaches or "
             "passes only by chance. "
             "FD is the square root of the Frechet distance; 1NN is the leave-one-out 1-nearest-neighbour "
             "accuracy (0.5 is ideal). Lower is better everywhere.", ""]
    if results.get("features"):
        lines += [f"Feature space: {results['features']} (no Inception weights offline).", ""]
    for space in spaces:
        keys = [f"{space}:{m}{suffix}" for suffix in ("", "-T") for m in METRICS if f"{space}:{m}{suffix}" in teacher]
        head = ["student", "method", "#params", *[k.split(":")[1] for k in keys]]
        lines += [f"### {space}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                  "| teacher | - | " + f"{rows[0]['parameters']:,} | " + " | ".join(f"{teacher[k]:.4g}" for k in keys)
                  + " |"]
        for (width, method, lam), group in groups.items():
            values = [models[row["name"]] for row in group]
            lines.append("| " + " | ".join([f"width {width:g}", _label(method, lam), f"{group[0]['parameters']:,}",
                                            *[_stat(values, k) for k in keys]]) + " |")
        lines += ["", *_verdict(model, groups, models, keys), ""]
    active = {k[3:-1]: v for k, v in teacher.items() if k.startswith("AU[")}
    if active:
        lines += ["Active units of the teacher (dimensions whose posterior mean varies over the test split, "
                  "variance > 0.01): " + ", ".join(f"{n} {a}/{teacher[f'dims[{n}]']}" for n, a in active.items())
                  + ".", ""]
    return lines


def _verdict(model: ir.Model, groups: dict[Group, list[dict]], models: dict, keys: list[str]) -> list[str]:
    """Per size and metric: does ours (at the spec's first lambda) have a lower mean than
    every other method? 'yes', 'tie' and the methods level with it, or 'no' and the
    method that is lowest."""
    first = model.distill.lambdas[0]
    groups = {key: group for key, group in groups.items() if key[2] in (None, first)}
    widths = list(dict.fromkeys(width for width, _, _ in groups))
    rivals = [m for m in dict.fromkeys(method for _, method, _ in groups) if m != "ours"]
    if "ours" not in {method for _, method, _ in groups} or not rivals:
        return []
    lines = [f"Does ours beat {' and '.join(rivals)}?", "",
             "| student | " + " | ".join(k.split(":")[1] for k in keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for width in widths:
        cells = []
        for key in keys:
            means = {method: _mean([models[row["name"]] for row in group], key)
                     for (w, method, _), group in groups.items() if w == width}
            cells.append(_outcome(means))
        lines.append(f"| width {width:g} | " + " | ".join(cells) + " |")
    return lines


def _outcome(means: dict[str, float]) -> str:
    """"yes" when ours has the lowest mean alone; "tie (local)" when another method has
    exactly the same (the two methods coincide on this model); else "no (the lowest)"."""
    best = min(means.values())
    lowest = [m for m, v in means.items() if v == best]
    if lowest == ["ours"]:
        return "yes"
    if "ours" in lowest:
        return f"tie ({', '.join(m for m in lowest if m != 'ours')})"
    return f"no ({lowest[0]})"


def _mean(rows: Iterable[dict], key: str) -> float:
    return statistics.fmean(row[key] for row in rows)


def _stat(rows: list[dict], key: str) -> str:
    values = [row[key] for row in rows if row.get(key) is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


CONTINUAL_COLUMNS = {"old": ("FD", "EMD", "MMD", "1NN", "FD-T", "MMD-T", "1NN-T", "-ELBO"),
                     "new": ("FD", "EMD", "MMD", "1NN", "-ELBO")}
"""-T columns only for the old classes: the old model never learnt the new ones."""


def continual_report(model: ir.Model, results: dict, quick: bool) -> str:
    """The continual-learning tables: one row per method (mean +- std over seeds), the
    old classes' metrics (against their test rows, and against the old model's samples)
    and the new classes'; then whether ours beats fine-tuning and replay."""
    old, new = results["old classes"], results["new classes"]
    lines = [f"# dgmc continual: {model.name}", "",
             f"Learnt first: classes {old}; then the new classes {new} arrive without the old data. Every method "
             f"starts from the old model and trains {results['steps']} steps; seeds {results['seeds']}."
             + (" **Quick run: few steps, numbers are smoke-test values.**" if quick else ""), ""]
    if results.get("features"):
        lines += [f"Feature space: {results['features']} (no Inception weights offline).", ""]
    models = results["models"]
    methods = ["old model", *results["methods"]]
    by_method = {m: [row for name, row in models.items() if name == m or name.rsplit("_s", 1)[0] == m]
                 for m in methods}
    spaces = list(dict.fromkeys(k.split(":")[0] for k in models["old model"]["old"] if ":" in k))
    for space in spaces:
        keys = [(group, (f"{space}:{c}" if c != "-ELBO" else c)) for group, cols in CONTINUAL_COLUMNS.items()
                for c in cols]
        head = ["method", *[f"{group} {key.split(':')[-1]}" for group, key in keys]]
        lines += [f"### {space}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for method, rows in by_method.items():
            lines.append("| " + " | ".join([method, *[_stat([r[g] for r in rows], k) for g, k in keys]]) + " |")
        rivals = [m for m in results["methods"] if m not in ("ours", "joint")]
        if "ours" in results["methods"] and rivals:
            verdict = []
            for group, key in keys:
                means = {m: _mean([r[group] for r in by_method[m]], key) for m in ["ours", *rivals]}
                verdict.append(_outcome(means))
            lines += ["", f"Does ours beat {' and '.join(rivals)}? (joint, which keeps the old data, is a "
                      "reference, not a rival.)", "", "| " + " | ".join(head[1:]) + " |",
                      "|" + "---|" * (len(head) - 1), "| " + " | ".join(verdict) + " |"]
        lines.append("")
    return "\n".join(lines) + "\n"
