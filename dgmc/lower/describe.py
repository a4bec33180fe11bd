"""What a compiled model is, in words: `dgmc compile SPEC --emit summary|code`.

`summary` is a table of nodes with family, network and parameter counts (teacher, each
student width, guide); `code` prints the passes a `CompiledModel` executes, one line per
node, as straight-line pseudo-Python: what `forward` does, without reading the module.
"""

from __future__ import annotations

from .. import ir
from .module import CompiledModel, compile_model
from .plan import Pass, Step


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
    compiled = compile_model(model, width)
    who = f"student (width {width:g})" if width else "teacher"
    lines = [f"# {model.name}, {who}: {sum(p.numel() for p in compiled.parameters()):,} parameters",
             "", "def run(eps, inputs, given):  # sample() draws eps; given: observed nodes with children"]
    lines += _pass(compiled, compiled.generative)
    if compiled.inference is not None:
        lines += ["", "def infer(data, eps):  # latents from the guide; observed and inputs from data"]
        lines += _pass(compiled, compiled.inference)
    return "\n".join(lines) + "\n"


def _pass(compiled: CompiledModel, walk: Pass) -> list[str]:
    lines = [f"    {_step(compiled, step)}" for step in walk.static]
    time = compiled.ir.time
    if walk.timed and time is not None:
        for node in dict.fromkeys(s.node for s in walk.timed):
            if compiled.ir.node(node).init is not None:
                lines.append(f"    {node}[{time.first - 1}] = {compiled.ir.node(node).init}")
        lines.append(f"    for {time.var} in {time.first}..{time.last}:  # parameters shared across steps")
        lines += [f"        {_step(compiled, step)}" for step in walk.timed]
    return lines


def _step(compiled: CompiledModel, step: Step) -> str:
    var = compiled.ir.time.var if compiled.ir.time else "t"
    me = f"{step.node}[{var}]" if step.timed else step.node
    args = ", ".join(_ref(name, lag, compiled, var) for name, lag in step.parents)
    at = f"[{var}]" if step.timed else ""
    if step.role == "given":
        return f"{me} = data[{step.node!r}]{at}"
    if step.role == "compute":
        net = compiled.nets[step.key]
        return f"{me} = {step.key}({args})  # {type(net).__name__}, {step.net.label()}"
    family, spec = step.family, step.spec
    params = [f"{k}={v:g}" for k, v in spec.fixed.items()] + [f"{k}={v:g}" for k, v in family.values.items()]
    if spec.computed and step.key in compiled.nets:
        params.append(f"{'/'.join(spec.computed)}={step.key}({args})")
    if spec.learned:
        params.append(f"{'/'.join(spec.learned)}=free")
    where = f"  # {step.net.label()}" if step.key in compiled.nets else ""
    return (f"{me} = {family.name}({', '.join(params)}).reparam(eps[{step.node!r}]{at}) "
            f"unless given  # {family.formula}{where}")


def _ref(name: str, lag: int, compiled: CompiledModel, var: str) -> str:
    if not compiled.ir.node(name).timed:
        return name
    return f"{name}[{var}-1]" if lag else f"{name}[{var}]"


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
