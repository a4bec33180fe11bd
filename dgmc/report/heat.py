"""Where the student fails to imitate: each node's final distillation term, read from a
run directory, for `dgmc render SPEC --run DIR` to paint onto the graph.

A run directory (`dgmc run`) holds `metrics.json`, a list of rows: the teacher's
(`"model": "teacher"`, no terms) and one per student (`"model": "student"`, `method`,
`width`, `seed`, and per node `fidelity[<node>]`, the unweighted term of that latent or
observed node between teacher and student on fresh noise). We pick one method and one
width, the smallest by default because the hardest student shows the failures best, and
average each node's term over the seeds, so one unlucky seed does not colour the map.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import RenderError
from ..ir import Model

Row = dict[str, Any]


@dataclass(frozen=True)
class Heat:
    """Each node's term averaged over `seeds`, for the student of `method` and `width`."""

    values: dict[str, float]
    method: str
    width: float
    seeds: tuple[int, ...]

    @property
    def caption(self) -> str:
        """What the colours show, for the graph's label."""
        seeds = f"seed {self.seeds[0]}" if len(self.seeds) == 1 else f"mean of {len(self.seeds)} seeds"
        return f"distillation terms: {self.method}, width {self.width:g}, {seeds}"


def termed_nodes(model: Model) -> list[str]:
    """The nodes that have a distillation term, in topological order: the latent and
    observed ones (`dgmc.losses.generate`'s rule, restated so drawing needs no torch)."""
    return [name for name in model.order if model.node(name).kind in ("latent", "observed")]


def load_heat(run: Path, model: Model, method: str = "ours", width: float | None = None) -> Heat:
    """The heat map of `model` from `run/metrics.json`; a `RenderError` naming what is
    missing (and what is there) when the file, the student or a node's term is not."""
    path = Path(run) / "metrics.json"
    rows = _student_rows(path)
    lam = model.distill.lambdas[0]  # a lambda ablation's students: those at the spec's first lambda
    mine = [row for row in rows if row["method"] == method and row.get("lambda") in (None, lam)]
    if not mine:
        raise RenderError(f"'{path}' has no student of method {method!r}; available: {_available(rows)}")
    widths = sorted({row["width"] for row in mine})
    width = widths[0] if width is None else width
    chosen = [row for row in mine if math.isclose(row["width"], width, rel_tol=1e-9)]
    if not chosen:
        raise RenderError(f"'{path}' has no {method} student of width {width:g}; "
                          f"{method} has widths {', '.join(f'{w:g}' for w in widths)}")
    by_seed = {row.get("seed"): row for row in chosen}  # a seed written twice: the later row wins
    values = {node: _mean(path, by_seed, node, f"{method}, width {width:g}") for node in termed_nodes(model)}
    return Heat(values, method, chosen[0]["width"], tuple(sorted(by_seed, key=str)))


def _student_rows(path: Path) -> list[Row]:
    """The student rows of a metrics file, each with a `method` and a numeric `width`."""
    if not path.parent.is_dir():
        raise RenderError(f"no run directory '{path.parent}' (make one with `dgmc run SPEC --out DIR`)")
    if not path.is_file():
        raise RenderError(f"no '{path}': '{path.parent}' is not a finished run (`dgmc run` writes it last)")
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RenderError(f"'{path}' is not valid JSON: {error}") from error
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise RenderError(f"'{path}' is not a list of rows")
    students = [row for row in rows if row.get("model") == "student"]
    for number, row in enumerate(students):
        if not isinstance(row.get("method"), str) or not _is_number(row.get("width")):
            raise RenderError(f"'{path}': student row {number} lacks a method or a numeric width: {row}")
    if not students:
        raise RenderError(f"'{path}' has no student rows (was the run made with --methods or --widths empty?)")
    return students


def _mean(path: Path, rows: dict[Any, Row], node: str, student: str) -> float:
    """The node's term averaged over the seeds' rows; every seed must have a finite one."""
    key = f"fidelity[{node}]"
    lacking = [seed for seed, row in rows.items() if not _is_number(row.get(key))]
    if lacking:
        known = sorted({k[9:-1] for row in rows.values() for k in row if k.startswith("fidelity[")})
        raise RenderError(f"'{path}': no term for node {node!r} ({key}) in the {student} rows of seed(s) "
                          f"{', '.join(map(str, lacking))}; the rows have terms for: {', '.join(known) or 'none'}")
    values = [float(row[key]) for row in rows.values()]
    if not all(math.isfinite(v) for v in values):
        raise RenderError(f"'{path}': the term of node {node!r} is not finite ({values}) for the {student} "
                          "student: did its training diverge?")
    return statistics.fmean(values)


def _available(rows: list[Row]) -> str:
    """`ours (widths 0.25, 0.5), local (widths 0.25)`: what the run has, for messages."""
    methods: dict[str, set[float]] = {}
    for row in rows:
        methods.setdefault(row["method"], set()).add(row["width"])
    return ", ".join(f"{m} (widths {', '.join(f'{w:g}' for w in sorted(ws))})" for m, ws in methods.items())


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
