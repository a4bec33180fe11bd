"""What a run's report says (written as `report.md` and `report.html` by `document`): the
students' table in the paper's layout (one block per student size, one row per method,
each figure as mean +- std over seeds), the per-node heat map of the distillation terms,
the sample metrics with verdicts that respect the noise (`dgmc.evaluation.stats`), the
teacher's active units, the graph and the pictures; and the continual-learning report.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from .. import ir
from ..core.files import student_name
from ..evaluation.metrics import METRICS, glosses
from ..evaluation.stats import RULE, compare
from ..losses.methods import METHODS
from .document import (
    Graph,
    Heading,
    Lines,
    Part,
    Picture,
    Pictures,
    Report,
    Section,
    Table,
    Text,
)

Group = tuple[float, str, float | None]
"""(width, method, lambda): the seeds of one student configuration."""


def report(model: ir.Model, rows: list[dict], quick: bool, out: Path, results: dict | None = None) -> Report:
    """The report of the run in `out`: `rows` its metrics (the teacher's first), `results`
    its sample metrics (eval.json), when measured."""
    teacher = rows[0]
    objective = "-ELBO" if model.of_kind("latent") else "NLL"
    exact = (f", test NLL at most {_number(teacher['test_iwae'])} (IWAE-{teacher['iwae_k']})"
             if "test_iwae" in teacher else "")
    exact += f", exact test NLL {_number(teacher['test_exact_nll'])}" if "test_exact_nll" in teacher else ""
    skipped = teacher.get("test_exact_nll_skipped")
    exact += "".join(f", test accuracy of {k[len('test_accuracy['):-1]} {teacher[k]:.1%}" for k in teacher
                     if k.startswith("test_accuracy["))
    intro = (f"Dataset: {model.data.dataset if model.data else '-'}. Teacher: {teacher['parameters']:,} generative "
             f"parameters, test {objective} {_number(teacher['test_objective'])} per example{exact} "
             f"({teacher['steps']} steps)." + (f" Exact test NLL not computed: {skipped}." if skipped else ""))
    groups = _groups(model, rows)
    sections = [Section("Students", [*_training_table(model, rows, groups, objective), *_heat_map(model, groups)])]
    if results is not None:
        sections.append(Section("Samples", _sample_tables(model, results, groups, rows)))
    sections.append(Section("Pictures", [_graph(out), Pictures(_pictures(out, groups))]))
    return Report(f"dgmc run: {model.name}", intro, quick, sections)


def _groups(model: ir.Model, rows: list[dict]) -> dict[Group, list[dict]]:
    """The student rows by configuration; lambda is part of it only in an ablation, where
    a row has one only when its method weighs lambda (`distillation.run_distill`)."""
    ablation = len(model.distill.lambdas) > 1
    groups: dict[Group, list[dict]] = {}
    for row in rows[1:]:
        lam = row.get("lambda") if ablation else None
        groups.setdefault((row["width"], row["method"], lam), []).append(row)
    return groups


def _iwae_k(rows: list[dict]) -> int | str:
    """The draws per example of the rows' test IWAE estimates (`k` where none says)."""
    return next((row["iwae_k"] for row in rows if "iwae_k" in row), "k")


def _label(method: str, lam: float | None) -> str:
    return method if lam is None else f"{method} (λ={lam:g})"


def _training_table(model: ir.Model, rows: list[dict], groups: dict[Group, list[dict]], objective: str
                    ) -> list[Part]:
    nodes = [n.name for n in model.nodes if f"fidelity[{n.name}]" in rows[-1]] if len(rows) > 1 else []
    optional = {"test_objective_teacher_guide": f"test {objective} (teacher's guide)",
                "test_iwae": f"test NLL (IWAE-{_iwae_k(rows)})", "test_exact_nll": "test NLL (exact)",
                "dead_units": "dead units", "dead_layers": "dead layers",
                "revived": "revived"}
    labels = [key for row in rows[1:] for key in row if key.startswith("test_accuracy[")]
    optional.update((key, key.replace("test_accuracy", "test accuracy")) for key in dict.fromkeys(labels))
    extra = [key for key in optional if any(key in row for row in rows[1:])]
    head = ["student", "method", "#params", f"test {objective}", *[optional[key] for key in extra],
            "L (fidelity)", *[f"L[{n}]" for n in nodes]]
    table = Table(head, [[f"width {width:g}", _label(method, lam), f"{group[0]['parameters']:,}",
                          _stat(group, "test_objective"), *[_stat(group, key) for key in extra],
                          _stat(group, "fidelity"), *[_stat(group, f"fidelity[{n}]") for n in nodes]]
                         for (width, method, lam), group in groups.items()])
    guide = (" through each student's own guide (a distilled student's guide is distilled from the teacher's); "
             "the teacher's guide column uses the teacher's guide as the proposal instead"
             if "test_objective_teacher_guide" in extra else
             " (a distilled student's uses the teacher's guide as its proposal: its own guide was not distilled when "
             "this run was made)" if model.fully_guided() else "")
    note = (f"Mean +- std over seeds. {objective} of the test split per example{guide}. L: the generated "
            "distillation terms (method ours, bce measured as KL so that 0 is perfect) between teacher and student "
            "on 1024 fresh noise draws, and their unweighted sum. #params: generative networks only."
            + (f" test NLL (IWAE-{_iwae_k(rows)}): -log of the importance-weighted estimate of p on {_iwae_k(rows)} "
               f"draws of the student's guide per example, on the first {rows[0].get('iwae_rows', 'few')} test "
               "rows: an upper bound on the test NLL, tighter than -ELBO."
               if "test_iwae" in extra else "")
            + (" test NLL (exact): -log p of the test split per example with the discrete latents summed out, "
               "which no guide blurs." if "test_exact_nll" in extra else "")
            + (" test accuracy: the share of the labelled test rows whose most probable class, under the guide "
               "(a latent bound to labels) or the model given its inputs, is their label." if any(
                   k.startswith("test_accuracy[") for k in extra) else "")
            + (" dead units: ReLU units of the student's networks that are zero on a whole probe batch of 1024 "
               "teacher samples at the end; dead layers: layers all of whose units are dead (a node cut off from "
               "its parents)." if "dead_units" in extra else "")
            + (" revived: dead units given fresh weights during distillation (`revive`)." if "revived" in extra
               else ""))
    return [table, Text(note, small=True)] if groups else [Text("No students.")]


def _heat_map(model: ir.Model, groups: dict[Group, list[dict]]) -> list[Part]:
    """Each node's distillation term, mean over seeds, per student: where students fail
    to imitate (the darker, the larger, on a log scale over the table)."""
    nodes = [n.name for n in model.nodes if n.kind in ("latent", "observed")]
    cells = {key: [_mean_or_none(group, f"fidelity[{n}]") for n in nodes] for key, group in groups.items()}
    cells = {key: [None if v is None else _zeroed(v) for v in values] for key, values in cells.items()}
    finite = [v for values in cells.values() for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not finite or not nodes:
        return []
    low, high = math.log10(min(finite)), math.log10(max(finite))
    rows, attrs = [], []
    for (width, method, lam), values in cells.items():
        rows.append([f"width {width:g}", _label(method, lam), *("-" if v is None else f"{v:.3g}" for v in values)])
        attrs.append(["", "", *(_heat(v, low, high) for v in values)])
    return [Heading("Distillation terms per node"),
            Text("Each node's term L[node] between teacher and student, mean over seeds: the nodes where a student "
                 "fails to imitate its teacher. In report.html the colour grows with the term (log scale).",
                 small=True),
            Table(["student", "method", *nodes], rows, attrs)]


def _heat(value: float | None, low: float, high: float) -> str:
    if value is None or not math.isfinite(value) or value <= 0:
        return ""
    share = 0.0 if high == low else (math.log10(value) - low) / (high - low)
    return f'style="background: rgba(214, 69, 65, {0.08 + 0.72 * share:.2f})"'


def _sample_tables(model: ir.Model, results: dict, groups: dict[Group, list[dict]], rows: list[dict]) -> list[Part]:
    models = results["models"]
    teacher = models["teacher"]
    spaces = list(dict.fromkeys(key.split(":")[0] for key in teacher if ":" in key))
    refs = results["references"]
    against = (f"against the test split ({refs['test rows']} rows, as many samples) and, in the -T columns, "
               if refs["test rows"] is not None else
               "(a data-free run: no data, so only the -T columns, which compare with the teacher) ")
    parts: list[Part] = [Text(
        f"Each model's samples {against}"
        f"against {refs['teacher samples']} of the teacher's samples (as many samples). "
        "The teacher's -T row compares two independent teacher draws: a noisy floor, which a student reaches or "
        "passes only by chance. " + (f"{glosses()}. " if glosses() else "") + "Lower is better everywhere.")]
    if results.get("features"):
        parts.append(Text(f"Feature space: {results['features']} (no Inception weights offline)."))
    for space in spaces:
        keys = [f"{space}:{m}{suffix}" for suffix in ("", "-T") for m in METRICS if f"{space}:{m}{suffix}" in teacher]
        head = ["student", "method", "#params", *[k.split(":")[1] for k in keys]]
        table = [["teacher", "-", f"{rows[0]['parameters']:,}", *(f"{teacher[k]:.4g}" for k in keys)]]
        for (width, method, lam), group in groups.items():
            values = [models[row["name"]] for row in group]
            table.append([f"width {width:g}", _label(method, lam), f"{group[0]['parameters']:,}",
                          *[_stat(values, k) for k in keys]])
        parts += [Heading(space), Table(head, table), *_verdicts(model, groups, models, keys)]
    active = {k[3:-1]: v for k, v in teacher.items() if k.startswith("AU[")}
    if active:
        parts.append(Text("Active units of the teacher (dimensions whose posterior mean varies over the test split, "
                          "variance > 0.01): " + ", ".join(_active(model, n, a, teacher[f"dims[{n}]"])
                                                          for n, a in active.items()) + "."))
    return parts


def _active(model: ir.Model, node: str, active: int | None, dims: int) -> str:
    """One latent's active units, or why it has none to count: its family has no mean."""
    if active is None:
        return f"{node} not defined for {model.node(node).type} (its mean has no closed form)"
    return f"{node} {active}/{dims}"


def pairs(methods: list[str]) -> list[tuple[str, str]]:
    """(contender, rival) for every verdict a run with these methods gets: the contenders
    are the registered methods that say so (`Method.contender`), in registration order."""
    contenders = [name for name, how in METHODS.items() if how.contender]
    return [(a, b) for a in contenders if a in methods for b in methods
            if b != a and not (b in contenders and contenders.index(b) > contenders.index(a))]


def _verdicts(model: ir.Model, groups: dict[Group, list[dict]], models: dict, keys: list[str]) -> list[Part]:
    """Per contender and rival, size and metric: does the contender (ours at the spec's
    first lambda, staged) beat the rival, paired over seeds (`dgmc.evaluation.stats`)? A table of
    win / tie / loss, and the line on each verdict."""
    first = model.distill.lambdas[0]
    groups = {key: group for key, group in groups.items() if key[2] in (None, first)}
    widths = list(dict.fromkeys(width for width, _, _ in groups))
    by = {(width, method): {row["seed"]: models[row["name"]] for row in group}
          for (width, method, _), group in groups.items()}
    teacher = models["teacher"]
    parts: list[Part] = []
    for contender, rival in pairs(list(dict.fromkeys(method for _, method, _ in groups))):
        rows, attrs, why = [], [], []
        for width in widths:
            ours, theirs = by.get((width, contender), {}), by.get((width, rival), {})
            verdicts = [compare({s: r[k] for s, r in ours.items()}, {s: r[k] for s, r in theirs.items()},
                                teacher.get(k) if k.endswith("-T") else None) for k in keys]
            rows.append([f"width {width:g}", *(v.outcome for v in verdicts)])
            attrs.append(["", *(f'class="{v.outcome}"' for v in verdicts)])
            why += [f"width {width:g}, {k.split(':')[1]}: {v.outcome}: {v.why}" for k, v in zip(keys, verdicts,
                                                                                              strict=True)]
        parts += [Text(f"Does {contender} beat {rival}? ({RULE}.)"),
                  Table(["student", *(k.split(":")[1] for k in keys)], rows, attrs), Lines(why)]
    return parts


def _graph(out: Path) -> Graph:
    if (out / "graph.svg").is_file():
        return Graph("graph.svg")
    if (out / "graph.dot").is_file():
        return Graph(None, text="The graph is in graph.dot: graphviz's `dot` was missing when the run drew it "
                                "(install graphviz, then `dgmc render spec.dgm -o graph.svg --student`).")
    return Graph(None, text="No graph was drawn.")


def _pictures(out: Path, groups: dict[Group, list[dict]]) -> list[Picture]:
    """The teacher's pictures and those of each configuration's first seed."""
    paths = sorted((out / "teacher").glob("teacher_*.png"))
    for (width, method, lam), group in groups.items():
        paths += sorted((out / "students").glob(f"{student_name(method, width, group[0]['seed'], lam)}_*.png"))
    return [Picture(p.stem, str(p.relative_to(out))) for p in paths]


def _mean_or_none(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if isinstance(row.get(key), int | float)]
    return statistics.fmean(values) if values else None


def _zeroed(value: float) -> float:
    """0 for a value within float rounding of it: a KL of two equal distributions comes
    out as -1e-07 or 2e-08, and should read 0."""
    return 0.0 if abs(value) < ZERO else value


ZERO = 5e-7


def _number(value: float) -> str:
    return f"{_zeroed(value):.3f}"


def _stat(rows: list[dict], key: str) -> str:
    values = [_zeroed(row[key]) for row in rows if row.get(key) is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    if not all(map(math.isfinite, values)):  # no spread to speak of: say how many are not finite
        broken = sum(not math.isfinite(v) for v in values)
        return f"{statistics.fmean(values):.4g} ({broken} of {len(values)} not finite)"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


CONTINUAL_COLUMNS = {"old": ("FD", "EMD", "MMD", "1NN", "FD-T", "MMD-T", "1NN-T", "-ELBO"),
                     "new": ("FD", "EMD", "MMD", "1NN", "-ELBO")}
"""-T columns only for the old classes: the old model never learnt the new ones."""


def continual_report(model: ir.Model, results: dict, quick: bool, roles: tuple[list[str], list[str], str]
                     ) -> Report:
    """The continual-learning tables: one row per method (mean +- std over seeds), the
    old classes' metrics (against their test rows, and against the old model's samples)
    and the new classes'; then whether each contender (ours) beats each rival (fine-tuning,
    replay), paired over seeds. `roles`: the contenders, the rivals, and the note on the
    references, as the continual learner's registry says (`continual.roles`)."""
    old, new = results["old classes"], results["new classes"]
    intro = (f"Learnt first: classes {old}; then the new classes {new} arrive without the old data. Every method "
             f"starts from the old model and trains {results['steps']} steps; seeds {results['seeds']}.")
    models = results["models"]
    methods = ["old model", *results["methods"]]
    by_method = {m: {_seed_of(name): row for name, row in models.items()
                     if name == m or name.rsplit("_s", 1)[0] == m} for m in methods}
    spaces = list(dict.fromkeys(k.split(":")[0] for k in models["old model"]["old"] if ":" in k))
    parts: list[Part] = []
    if results.get("features"):
        parts.append(Text(f"Feature space: {results['features']} (no Inception weights offline)."))
    contenders, rivals, references = roles
    for space in spaces:
        keys = [(group, (f"{space}:{c}" if c != "-ELBO" else c)) for group, cols in CONTINUAL_COLUMNS.items()
                for c in cols]
        head = ["method", *[f"{group} {key.split(':')[-1]}" for group, key in keys]]
        rows = [[method, *[_stat([r[g] for r in seeds.values()], k) for g, k in keys]]
                for method, seeds in by_method.items()]
        parts += [Heading(space), Table(head, rows)]
        for contender, rival in ((c, r) for c in contenders for r in rivals):
            verdicts = [compare({s: r[g][k] for s, r in by_method[contender].items()},
                                {s: r[g][k] for s, r in by_method[rival].items()}) for g, k in keys]
            parts += [Text(f"Does {contender} beat {rival}? ({RULE}{references}.)"),
                      Table(head[1:], [[v.outcome for v in verdicts]], [[f'class="{v.outcome}"' for v in verdicts]]),
                      Lines([f"{h}: {v.outcome}: {v.why}" for h, v in zip(head[1:], verdicts, strict=True)])]
    return Report(f"dgmc continual: {model.name}", intro, quick, [Section("Old and new classes", parts)])


def _seed_of(name: str) -> int:
    """`ours_s2` -> 2; the old model (one, no seed) -> 0."""
    head, _, seed = name.rpartition("_s")
    return int(seed) if head and seed.isdigit() else 0
