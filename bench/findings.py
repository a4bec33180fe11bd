"""The generated findings of docs/RESULTS.md: every figure of its prose, computed here
from the finished runs under runs/results (metrics.json and eval.json), so that no number
on the page is typed by hand. Each function returns one block's markdown.

Verdicts are `dgmc.evaluation.stats.compare`: a two-sided paired t-test over the seeds at 5%, win or
loss only when it rejects, with the mean difference in standard deviations of the
per-seed differences (the effect size).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Iterator
from pathlib import Path

from dgmc.evaluation.stats import RULE, compare
from dgmc.report.report import pairs

SAMPLE_METRICS = tuple(f"{space}:{metric}" for space in ("features", "raw")
                       for metric in ("FD", "EMD", "MMD", "1NN", "FD-T", "EMD-T", "MMD-T", "1NN-T"))
MATCH = 0.1
"""A student matches its teacher on the Helmholtz machine when its exact test NLL is within
this many nats per example of the teacher's (a collapsed student is off by more than 1)."""


def load(run: Path) -> tuple[list[dict], dict[str, dict]]:
    """A finished run's rows (metrics.json) and its models' sample metrics (eval.json)."""
    rows = json.loads((run / "metrics.json").read_text())
    models = json.loads((run / "eval.json").read_text())["models"] if (run / "eval.json").is_file() else {}
    return rows, models


def finished(run: Path) -> bool:
    return (run / "metrics.json").is_file()


def runs(out: Path, names: Iterable[str]) -> Iterator[tuple[str, list[dict], dict[str, dict]]]:
    """(name, rows, models) of each finished run among `names`."""
    for name in names:
        if finished(out / name):
            yield name, *load(out / name)


def per_seed(rows: list[dict], values: dict[str, dict] | None, width: float, method: str, key: str
             ) -> dict[int, float]:
    """seed -> the metric `key` of the students of (`width`, `method`): from eval.json's
    `values` when given, else from the rows themselves."""
    chosen = [r for r in rows[1:] if r["width"] == width and r["method"] == method]
    source = (lambda r: values[r["name"]].get(key)) if values is not None else (lambda r: r.get(key))
    return {r["seed"]: source(r) for r in chosen if source(r) is not None}


def stat(values: list[float]) -> str:
    if not values:
        return "-"
    if not all(map(math.isfinite, values)):
        return f"{statistics.fmean(values):.4g} ({sum(not math.isfinite(v) for v in values)} not finite)"
    return f"{statistics.fmean(values):.4g}" + (f" ± {statistics.stdev(values):.2g}" if len(values) > 1 else "")


def tally(rows: list[dict], models: dict[str, dict], width: float, contender: str, rival: str,
          keys: tuple[str, ...] = SAMPLE_METRICS) -> tuple[dict[str, int], list[tuple[float, str]]]:
    """Wins, ties and losses of `contender` against `rival` at `width` over the metrics
    `keys`, and each rejected verdict's (signed effect size, metric) (negative: a win)."""
    counts = {"win": 0, "tie": 0, "loss": 0}
    decided = []
    for key in keys:
        a, b = per_seed(rows, models, width, contender, key), per_seed(rows, models, width, rival, key)
        if not a or not b:
            continue
        verdict = compare(a, b)
        counts[verdict.outcome] += 1
        if verdict.outcome != "tie":
            diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))]
            decided.append((statistics.fmean(diffs) / statistics.stdev(diffs), key))
    return counts, decided


def current(rows: list[dict]) -> bool:
    """Whether a run's students were made by the present distiller (guide distilled,
    dead units counted): every distilled student of it records its dead units."""
    return all("dead_units" in r for r in rows[1:] if r["method"] != "scratch")


def reading(counts: dict[str, int]) -> str:
    """The tally in words: does the first method's advantage hold?"""
    return {(True, False): "holds", (False, True): "reversed", (True, True): "mixed",
            (False, False): "no difference shown"}[(counts["win"] > 0, counts["loss"] > 0)]


def _widths(rows: list[dict]) -> list[float]:
    return list(dict.fromkeys(r["width"] for r in rows[1:]))


def _methods(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["method"] for r in rows[1:]))


def summary(out: Path, names: list[str]) -> str:
    """Per experiment, size and pair of methods: how many of the 16 sample metrics are a
    win, a tie or a loss, and the largest effect each way."""
    lines = [f"Verdicts over the sample metrics of each experiment (feature and raw space; raw only for the "
             f"Helmholtz machine; {RULE}). Effect: the mean paired difference in standard deviations of the "
             "per-seed differences.", "",
             "(before): a run made before students' guides were distilled and their dead units revived; its "
             "students are those of the code of that time.", "",
             "Reading: *holds* when the first method wins somewhere and loses nowhere, *reversed* when it loses "
             "somewhere and wins nowhere, *mixed* when both, *no difference shown* when every metric is a tie.", "",
             "| experiment | student | comparison | seeds | win | tie | loss | reading | largest win | largest loss |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows, models in runs(out, names):
        if not models:
            continue
        label = name if current(rows) else f"{name} (before)"
        seeds = len({r["seed"] for r in rows[1:]})
        for width in _widths(rows):
            for contender, rival in pairs(_methods(rows)):
                counts, decided = tally(rows, models, width, contender, rival)
                wins = [d for d in decided if d[0] < 0]
                losses = [d for d in decided if d[0] > 0]
                best = f"{min(wins)[1]} ({-min(wins)[0]:.1f} sd)" if wins else "-"
                worst = f"{max(losses)[1]} ({max(losses)[0]:.1f} sd)" if losses else "-"
                lines.append(f"| {label} | width {width:g} | {contender} vs {rival} | {seeds} | {counts['win']} | "
                             f"{counts['tie']} | {counts['loss']} | {reading(counts)} | {best} | {worst} |")
    return "\n".join(lines)


def claims(out: Path, names: list[str]) -> str:
    """Where the paper's claim (ours beats local, ours beats scratch) and dgmc's own
    (staged beats ours and local) hold: each reading of the summary with the experiments
    and student sizes that have it."""
    found: dict[tuple[str, str], dict[str, list[str]]] = {}
    for name, rows, models in runs(out, names):
        if not models:
            continue
        for width in _widths(rows):
            for contender, rival in pairs(_methods(rows)):
                counts, _ = tally(rows, models, width, contender, rival)
                where = f"{name} x{width:g}" + ("" if current(rows) else " (before)")
                found.setdefault((contender, rival), {}).setdefault(reading(counts), []).append(where)
    lines = []
    for (contender, rival), by_reading in found.items():
        order = ("holds", "mixed", "no difference shown", "reversed")
        parts = [f"{text}: {', '.join(by_reading[text])}" for text in order if text in by_reading]
        lines.append(f"- **{contender} beats {rival}?** " + "; ".join(parts) + ".")
    return "\n".join(lines)


def helmholtz(out: Path, names: tuple[str, ...] = ("hm", "hm_no_revive")) -> str:
    """The Helmholtz machine scored by its exact test NLL (the binary latents summed
    out): per method, how many seeds match the teacher, the worst seed, and the paired
    verdicts; with and without reviving dead units."""
    lines = []
    for name, rows, _ in runs(out, names):
        teacher = rows[0]["test_exact_nll"]
        lines += [f"`{name}`: teacher's exact test NLL {teacher:.4f} nats per example; a student matches it within "
                  f"{MATCH:g}.", "",
                  "| method | seeds | exact test NLL | matching seeds | worst seed (NLL) | dead units at the end | "
                  "dead layers at the end | units revived |", "|---|---|---|---|---|---|---|---|"]
        for width in _widths(rows):
            for method in _methods(rows):
                chosen = [r for r in rows[1:] if r["width"] == width and r["method"] == method]
                nll = {r["seed"]: r["test_exact_nll"] for r in chosen}
                matching = sum(abs(v - teacher) <= MATCH for v in nll.values())
                worst = max(nll, key=nll.get)
                dead = [r["dead_units"] for r in chosen if "dead_units" in r]
                layers = [r["dead_layers"] for r in chosen if "dead_layers" in r]
                revived = [r["revived"] for r in chosen if "revived" in r]
                lines.append(f"| {method} | {len(nll)} | {stat(list(nll.values()))} | {matching} of {len(nll)} | "
                             f"{worst} ({nll[worst]:.4f}) | {sum(dead) if dead else '-'} | "
                             f"{sum(layers) if layers else '-'} | {sum(revived) if revived else '-'} |")
            failing = [f"{r['method']} seed {r['seed']} (NLL {r['test_exact_nll']:.4f}, "
                       f"dead layers {r.get('dead_layers', '?')})" for r in rows[1:]
                       if r["width"] == width and abs(r["test_exact_nll"] - teacher) > MATCH
                       and r["method"] != "scratch"]
            verdicts = [f"Distilled students that do not match the teacher: {', '.join(failing) or 'none'}.", ""]
            for contender, rival in pairs(_methods(rows)):
                v = compare(per_seed(rows, None, width, contender, "test_exact_nll"),
                            per_seed(rows, None, width, rival, "test_exact_nll"))
                verdicts.append(f"- {contender} vs {rival}, exact test NLL: {v.outcome} ({v.why})")
            lines += ["", *verdicts, ""]
    both = [load(out / name)[0] for name in names if finished(out / name)]
    if len(both) == 2:  # the same seeds with and without reviving: paired
        lines.append(f"Reviving dead units (`{names[0]}` against `{names[1]}`), exact test NLL:")
        for method in [m for m in _methods(both[0]) if m in _methods(both[1])]:
            width = _widths(both[0])[0]
            v = compare(per_seed(both[0], None, width, method, "test_exact_nll"),
                        per_seed(both[1], None, width, method, "test_exact_nll"))
            lines.append(f"- {method}: {v.outcome} ({v.why})")
    return "\n".join(lines).rstrip()


def depth(out: Path, depths: tuple[int, ...]) -> str:
    """The depth sweep: per depth and student width, each method's feature-space FD-T and
    FD, and the tally of every pair of methods over the 16 sample metrics."""
    lines = ["| latent layers | student | method | #params | features FD-T | features FD | raw FD-T |",
             "|---|---|---|---|---|---|---|"]
    tallies = ["| latent layers | student | comparison | win | tie | loss | reading |", "|---|---|---|---|---|---|---|"]
    for d in depths:
        run = out / f"hvae_depth{d}"
        if not finished(run):
            continue
        rows, models = load(run)
        for width in _widths(rows):
            for method in _methods(rows):
                size = next(r["parameters"] for r in rows[1:] if r["width"] == width and r["method"] == method)
                cells = [stat(list(per_seed(rows, models, width, method, key).values()))
                         for key in ("features:FD-T", "features:FD", "raw:FD-T")]
                lines.append(f"| {d} | width {width:g} | {method} | {size:,} | " + " | ".join(cells) + " |")
            for contender, rival in pairs(_methods(rows)):
                counts, _ = tally(rows, models, width, contender, rival)
                tallies.append(f"| {d} | width {width:g} | {contender} vs {rival} | {counts['win']} | "
                               f"{counts['tie']} | {counts['loss']} | {reading(counts)} |")
    return "\n".join([*lines, "", f"Verdicts over the 16 sample metrics ({RULE}):", "", *tallies])


def stage(out: Path, shares: tuple[str, ...]) -> str:
    """staged's share on local, on the 8-layer hierarchy's smallest students: each share
    against ours and local of the depth sweep (the same teacher, seeds and steps)."""
    base = out / "hvae_depth8"
    if not finished(base):
        return "(the depth sweep's 8-layer run is missing)"
    rows, models = load(base)
    width = min(_widths(rows))
    runs = {"0.5": (rows, models)}
    runs.update({share: load(out / f"staged_{share}") for share in shares if finished(out / f"staged_{share}")})
    lines = ["| share on local | features FD-T | features FD | vs ours | vs local | vs share 0.5 |",
             "|---|---|---|---|---|---|"]
    half = [{**r, "method": "half"} for r in rows[1:] if r["method"] == "staged" and r["width"] == width]
    for share, (staged_rows, staged_models) in sorted(runs.items(), key=lambda kv: float(kv[0])):
        merged_rows = rows[:1] + [r for r in rows[1:] if r["method"] != "staged"] + half + \
            [r for r in staged_rows[1:] if r["method"] == "staged"]
        merged = {**models, **staged_models}
        cells = [stat(list(per_seed(merged_rows, merged, width, "staged", k).values()))
                 for k in ("features:FD-T", "features:FD")]
        for rival in ("ours", "local", "half"):
            counts, _ = tally(merged_rows, merged, width, "staged", rival)
            cells.append("-" if share == "0.5" and rival == "half" else
                         f"{counts['win']}/{counts['tie']}/{counts['loss']} ({reading(counts)})")
        lines.append(f"| {share} | " + " | ".join(cells) + " |")
    return (f"8 latent layers, students at width {width:g}; wins/ties/losses over the 16 sample metrics, paired "
            "over the seeds.\n\n" + "\n".join(lines))


def elbo(out: Path, names: list[str]) -> str:
    """Every distilled student's test -ELBO through its own (distilled) guide, against
    the same student through the teacher's guide, the teacher's, and scratch's."""
    lines = ["| experiment | student | method | own guide | teacher's guide | all finite |",
             "|---|---|---|---|---|---|"]
    teachers = []
    for name, rows, _ in runs(out, names):
        if not any("test_objective_teacher_guide" in r for r in rows[1:]):
            continue
        teachers.append(f"{name} {rows[0]['test_objective']:.4g}")
        ablation = len({r["lambda"] for r in rows[1:] if r["method"] == "ours"}) > 1
        for width in _widths(rows):
            for method, lam in dict.fromkeys((r["method"], r["lambda"] if ablation else None) for r in rows[1:]):
                chosen = [r for r in rows[1:] if r["width"] == width and r["method"] == method
                          and (lam is None or r["lambda"] == lam)]
                label = method if lam is None else f"{method} (λ={lam:g})"
                own = [r["test_objective"] for r in chosen]
                borrowed = [r["test_objective_teacher_guide"] for r in chosen if "test_objective_teacher_guide" in r]
                finite = all(map(math.isfinite, own))
                lines.append(f"| {name} | width {width:g} | {label} | {stat(own)} | {stat(borrowed)} | "
                             f"{'yes' if finite else 'no'} |")
    return ("Teachers' test -ELBO: " + ", ".join(teachers) + ".\n\n" if teachers else "") + "\n".join(lines)


def semi_supervised(out: Path, m2: str = "m2", baseline: str = "classifier_tenth") -> str:
    """M2's classifier q(y | x) against the same network trained on the labelled tenth
    alone: the teachers' test accuracy, and each student's (a distilled guide classifies
    too)."""
    found = {name: rows for name, rows, _ in runs(out, (m2, baseline))}
    if set(found) != {m2, baseline}:
        return "Not run yet: `python bench/results.py --only m2 classifier_tenth`."
    key = "test_accuracy[y]"
    teacher, alone = found[m2][0][key], found[baseline][0][key]
    lines = [f"Test accuracy on the digits' test rows (labels kept in 10% of the training rows): M2's q(y | x) "
             f"{teacher:.1%}, the same network trained on the labelled tenth alone {alone:.1%} "
             f"({'+' if teacher >= alone else ''}{(teacher - alone) * 100:.1f} points).", "",
             "| model | method | width | seeds | test accuracy |", "|---|---|---|---|---|",
             f"| M2 teacher | | 1 | 1 | {teacher:.1%} |", f"| classifier on the tenth | | 1 | 1 | {alone:.1%} |"]
    for width in _widths(found[m2]):
        for method in _methods(found[m2]):
            values = [r[key] for r in found[m2][1:] if r["width"] == width and r["method"] == method and key in r]
            if values:
                lines.append(f"| M2 student | {method} | {width:g} | {len(values)} | "
                             f"{stat([100 * v for v in values])} % |")
    return "\n".join(lines)


IWAE_DRAWS = 5000
"""The draws per test example of the IWAE estimate that compares the two objectives."""


def _iwae_estimates(run: Path) -> dict[str, float]:
    """-IWAE_{IWAE_DRAWS} per test example of a run's teacher and its seed-0 students of `ours`,
    by name; computed once (a minute per model on one thread) and kept in the run's
    `iwae_5000.json`."""
    cached = run / f"iwae_{IWAE_DRAWS}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    import dgmc

    rows, _ = load(run)
    names = ["teacher", *(r["name"] for r in rows[1:] if r["method"] == "ours" and r["seed"] == 0)]
    found = {}
    for name in names:
        model = dgmc.load_checkpoint(run, student=None if name == "teacher" else name)
        found[name] = -float(dgmc.iwae_bound(model, k=IWAE_DRAWS, seed=0).mean())
    cached.write_text(json.dumps(found, indent=2))
    return found


def iwae_objectives(out: Path, by_elbo: str = "vae", by_iwae: str = "iwae") -> str:
    """The VAE trained by the ELBO against the same VAE trained by IWAE_5: each teacher's
    test -ELBO, -IWAE_100 (its run's metrics) and -IWAE_5000 (`_iwae_estimates`), and
    the same for the students of `ours` at seed 0."""
    found = {name: rows for name, rows, _ in runs(out, (by_elbo, by_iwae))}
    if set(found) != {by_elbo, by_iwae}:
        return f"Not run yet: `python bench/results.py --only {by_elbo} {by_iwae}`."
    estimates = {name: _iwae_estimates(out / name) for name in found}
    lines = [f"| trained by | model | test -ELBO | test NLL (IWAE-100) | test NLL (IWAE-{IWAE_DRAWS}) | "
             f"-ELBO - IWAE-{IWAE_DRAWS} |",
             "|---|---|---|---|---|---|"]
    for name, label in ((by_elbo, "elbo"), (by_iwae, "iwae(k = 5)")):
        for row in found[name]:
            key = row["name"]
            if key not in estimates[name]:
                continue
            model = "teacher" if key == "teacher" else f"student ours x{row['width']:g}"
            gap = row["test_objective"] - estimates[name][key]
            lines.append(f"| {label} | {model} | {row['test_objective']:.3f} | {row['test_iwae']:.3f} | "
                         f"{estimates[name][key]:.3f} | {gap:.3f} |")
    teacher = {name: estimates[name]["teacher"] for name in found}
    better = "IWAE-5" if teacher[by_iwae] < teacher[by_elbo] else "the ELBO"
    lead = (f"Test NLL by IWAE-{IWAE_DRAWS} (nats per example, lower is better): the teacher trained by the ELBO "
            f"{teacher[by_elbo]:.3f}, by IWAE-5 {teacher[by_iwae]:.3f}; the one trained by {better} is "
            f"{abs(teacher[by_iwae] - teacher[by_elbo]):.3f} nats better.")
    return lead + "\n\n" + "\n".join(lines)


def causal_effect(out: Path, name: str = "cevae") -> str:
    """The CEVAE's average treatment effect on the test split of the `confounded` data:
    the teacher's and each student's (its own distilled guide inferring the confounder),
    against the truth and the naive difference between treated and untreated rows."""
    if not finished(out / name):
        return f"Not run yet: `python bench/results.py --only {name}`."
    import dgmc
    from dgmc.datasets import load_split
    from dgmc.datasets.builtin import CONFOUNDED_EFFECT

    rows, _ = load(out / name)
    teacher = dgmc.load_checkpoint(out / name)
    test = load_split(teacher.ir).test
    treated = test["t"][:, 0] == 1
    naive = float(test["y"][treated].mean() - test["y"][~treated].mean())
    found = {"teacher": dgmc.average_effect(teacher, "t", "y")}
    for row in rows[1:]:
        found[row["name"]] = dgmc.average_effect(dgmc.load_checkpoint(out / name, student=row["name"]), "t", "y")
    lines = [f"Average effect of t on y over the {len(test['y'])} test rows: true {CONFOUNDED_EFFECT:g}, naive "
             f"difference between treated and untreated rows {naive:.3f}, the teacher's estimate "
             f"{found['teacher']:.3f}.", "",
             "| model | method | width | seeds | estimated effect | error |", "|---|---|---|---|---|---|",
             f"| teacher | | 1 | 1 | {found['teacher']:.3f} | {found['teacher'] - CONFOUNDED_EFFECT:+.3f} |"]
    for width in _widths(rows):
        for method in _methods(rows):
            values = [found[r["name"]] for r in rows[1:] if r["width"] == width and r["method"] == method]
            errors = [v - CONFOUNDED_EFFECT for v in values]
            lines.append(f"| student | {method} | {width:g} | {len(values)} | {stat(values)} | {stat(errors)} |")
    return "\n".join(lines)
