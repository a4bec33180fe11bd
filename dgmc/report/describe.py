"""What a compiled model is, in words: `dgmc compile SPEC --emit summary|code`.

`summary` is a table of nodes with family, network and parameter counts (teacher, each
student width, guide); `code` prints the Python a `CompiledModel` runs for its main calls
(`generate`), each statement under the spec lines it comes from.
"""

from __future__ import annotations

from .. import ir
from ..losses import generate as generate_terms
from ..lower.generate import Signature
from ..lower.module import CompiledModel, compile_model, distill_key
from ..lower.text import module_text
from ..training.objectives import OBJECTIVES


def summary(model: ir.Model) -> str:
    teacher = compile_model(model)
    students = {w: compile_model(model, w) for w in model.distill.widths}
    counts = teacher.parameter_counts()
    student_counts = {w: s.parameter_counts() for w, s in students.items()}
    header = ["node", "kind", "type", "network", "teacher", *[f"student x{w:g}" for w in students], "guide"]
    rows = []
    for node in model.nodes:
        rows.append([
            node.name, node.kind, node.type_label(), node.net.label() if node.net else "-",
            f"{counts[node.name]['model']:,}", *[f"{c[node.name]['model']:,}" for c in student_counts.values()],
            f"{counts[node.name]['guide']:,}",
        ])
    rows.append(["total", "", "", "", f"{_total(counts, 'model'):,}",
                 *[f"{_total(c, 'model'):,}" for c in student_counts.values()], f"{_total(counts, 'guide'):,}"])
    return _table(header, rows)


def code(model: ir.Model, width: float | None = None) -> str:
    """The generated source of the calls everything else is made of: ancestral sampling,
    the generative pass on the teacher's noise with `ours`' given nodes (a distillation
    step's student), the guide's pass on data, and the ELBO's terms. It is the text the
    module compiles and runs for those, as one Python module."""
    compiled = compile_model(model, width)
    who = f"student (width {width:g})" if width else "teacher"
    title = f"{model.name}, {who}: {sum(p.numel() for p in compiled.parameters()):,} parameters."
    spec = model.source_text[1] if model.source_text else f"the model '{model.name}'"
    functions = [compiled.source(s) for s in shown(compiled)]
    functions += [compiled.loss_source(key) for key in shown_losses(compiled)]
    return module_text(title, spec, functions)


def shown_losses(compiled: CompiledModel) -> list[tuple]:
    """The generated objectives `code` prints: the teacher's (and the ELBO, which every
    guided model reports), and a distillation step's terms under `ours`, its guide's too."""
    model = compiled.ir
    keys = [("elbo_parts",)] if model.has_elbo() and not model.summed_chain() else []  # a chain: not generated
    own = _objective_parts(model)
    keys += [own] if own and own not in keys else []
    terms = generate_terms(model, "ours")
    if terms:
        keys.append(distill_key(terms, compiled.fed("ours")))
    if model.fully_guided():
        guide_terms, fed = compiled.guide_terms("ours")
        keys.append(("guide_distill_loss", fed, guide_terms))
    return keys


def _objective_parts(model: ir.Model) -> tuple[str] | None:
    """The key of the generated function of the teacher's objective (`Objective.parts`)."""
    objective = OBJECTIVES.get(model.train.objective) if model.train else None
    return (objective.parts,) if objective is not None and objective.parts else None


def shown(compiled: CompiledModel) -> list[Signature]:
    inputs = frozenset(n.name for n in compiled.ir.of_kind("input"))
    sampled = frozenset(s.node for s in compiled.generative.steps if s.role == "sample")
    signatures = [Signature("sample", inputs), Signature("run", inputs | set(compiled.fed("ours")), sampled)]
    if compiled.inference is not None:
        data = frozenset(s.node for s in compiled.inference.steps if s.role == "given")
        signatures.append(Signature("infer", data))
    return signatures


def _total(counts: dict[str, dict[str, int]], part: str) -> int:
    return sum(c[part] for c in counts.values())


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join
    out = [line(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
           line("-" * w for w in widths)]
    out += [line(str(c).rjust(w) if c[:1].isdigit() else str(c).ljust(w) for c, w in zip(r, widths, strict=True))
            .rstrip() for r in rows]
    return "\n".join(out) + "\n"
