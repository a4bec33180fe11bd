"""Passes -> Python source: the code a `CompiledModel` runs.

A pass (`plan.Pass`) is specialised on what a call supplies, its `Signature`: which nodes
take given values and which take given noise. For each signature `source` writes one
straight-line function, `def NAME(self, batch, given, noise, generator) -> Trace`, with a
variable per node named after it, the time-indexed steps in one `for` loop, and each
node's statements under a comment that quotes the spec lines they come from. The module
compiles it once (`text.compile_function`) and calls it from then on; `dgmc compile --emit
code` prints the same text. The functions read the module's networks, free parameters
and families through `self`, so the printed source is a valid Python module on its own.

What a step does (the reference is `interpret.Run`, which the tests hold the generated code
equal to, bit for bit):
- given: the value from `given` (a missing one is refused before the call);
- compute: the network on the parents' values (a recurrent cell on its previous state);
- sample: the family's parameters from the network and free vector, then the value as
  g(noise, params), or from `given`, which the parameters are still computed for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .. import ir
from ..families import Family
from ..families.base import MIN_SCALE
from ..networks import NETWORKS
from .plan import Block, Pass, Read, Step, read_of
from .text import WIDTH, Names


@dataclass(frozen=True)
class Signature:
    """What one call supplies: the nodes of the pass that take given values, and the
    sampled nodes that take given noise (the others draw fresh noise)."""

    name: str
    """`sample`, `run` or `infer`: the function's name (its pass: `infer` is the guide's)."""
    given: frozenset[str] = frozenset()
    noise: frozenset[str] = frozenset()
    unread: frozenset[str] = frozenset()
    """Sampled nodes whose value neither a later step nor the caller reads: their noise is
    drawn and their parameters computed (the stream of draws, and what the caller reads,
    stay the same), their value is not made."""

    def key(self) -> str:
        """A short, stable tag of the signature (the function's file name in tracebacks)."""
        unread = f";unread={','.join(sorted(self.unread))}" if self.unread else ""
        return f"{self.name}[given={','.join(sorted(self.given))};noise={','.join(sorted(self.noise))}{unread}]"


def source(walk: Pass, signature: Signature, model: ir.Model, steps: int, nets: set[str], free: set[str],
           lagged_initials: dict[str, str]) -> str:
    """The function of `walk` specialised on `signature`. `nets` and `free` are the keys
    the module holds networks and free vectors under; `lagged_initials` maps a node to
    the name of its draw before the first step (`z` -> `z[0]`)."""
    writer = _Writer(walk, signature, model, nets, free, lagged_initials)
    return writer.function(steps)


class _Writer:
    def __init__(self, walk: Pass, signature: Signature, model: ir.Model, nets: set[str], free: set[str],
                 initials: dict[str, str]) -> None:
        self.walk, self.sig, self.model, self.nets, self.free, self.initials = \
            walk, signature, model, nets, free, initials
        self.name = Names()
        self.block_of = {s.node: b for b in walk.blocks for s in b.steps}
        self.boundaries = self._boundaries()
        self.spec_lines = model.source_text[0].splitlines() if model.source_text else []
        self.lines: list[str] = []
        self.uses_t = False
        self.steps = 0

    def _lagged(self, block: Block) -> list[str]:
        """The scan's nodes it reads one step back (in its direction): each keeps its
        previous value in `NAME_prev`; a recurrent state always does."""
        read = [r.node for s in block.steps for r in s.parents
                if abs(r.lag) == 1 and self.block_of.get(r.node) is block]
        read += [s.node for s in block.steps if s.role == "compute" and NETWORKS[s.net.name].recurrent]
        return list(dict.fromkeys(read))

    def _boundaries(self) -> set[str]:
        """The nodes whose value beyond the sequence more than the one `NAME_prev` reads:
        it is made once, as `NAME_init` (one tensor per pass, as `interpret.Run` makes it)."""
        uses: dict[str, int] = {}
        for block in self.walk.blocks:
            if block.direction:
                for node in self._lagged(block):
                    uses[node] = uses.get(node, 0) + 1
            for step in block.steps:
                for r in step.parents:
                    if r.lag and not (abs(r.lag) == 1 and self.block_of.get(r.node) is block):
                        uses[r.node] = uses.get(r.node, 0) + 2
        return {node for node, count in uses.items() if count > 1 and node not in self.initials}

    # -- the function ---------------------------------------------------------------------

    def function(self, steps: int) -> str:
        """The body first, then the bindings it reads (the module's parts, bound once)."""
        self.lines, self.steps = [], steps
        made: set[str] = set()
        for block in self.walk.blocks:
            for node in self._needs_boundary(block) - made:
                made.add(node)
                self.lines.append(f"    {self.name(node, 'init')} = self.initial({node!r}, batch)")
            if block.direction:
                self._loop(block, steps)
            else:
                for step in block.steps:
                    self._step(step, 1, block)
        self.lines.append(self._trace())
        body = "\n".join(self.lines)
        used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body))
        bindings = [line for line in ["anchor = self._anchor", *self._bindings()]
                    if used & set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", line.split(" = ")[0]))]
        head = [f"def {self.sig.name}(self, batch, given, noise, generator):", f'    """{self._doc()}"""']
        return "\n".join([*head, *(f"    {line}" for line in bindings), body]) + "\n"

    def _needs_boundary(self, block: Block) -> set[str]:
        """The `NAME_init` values a block reads."""
        read = {r.node for s in block.steps for r in s.parents if r.lag}
        if block.direction:
            read |= set(self._lagged(block))
        return read & self.boundaries

    def _bindings(self) -> list[str]:
        """The module's networks, cells and families, bound once before any step."""
        lines = []
        for step in self.walk.steps:
            if step.key in self.nets and not (step.node in self.sig.given and step.role != "sample"):
                shared = f"  # the shared network '{step.net.shared}'" if step.net.shared else ""
                lines.append(f"{self._net(step)} = self.nets[{step.key!r}]{shared}")
            if step.role == "compute" and NETWORKS[step.net.name].recurrent:
                lines.append(f"{self._net(step, 'cell')} = self.cells[{step.key!r}]")
            if step.role == "sample" and _plain(step.family):
                lines.append(f"{self.name(step.node, 'family')} = self.kinds[{step.key!r}][0]")
            elif step.role == "sample":
                lines.append(f"{self.name(step.node, 'family')}, {self.name(step.node, 'spec')} = "
                             f"self.kinds[{step.key!r}]")
        return lines

    def _doc(self) -> str:
        given = ", ".join(sorted(self.sig.given)) or "none"
        noise = ", ".join(sorted(self.sig.noise)) or "none"
        what = "the guide's pass" if self.sig.name == "infer" else "the generative pass"
        return f"{self.model.name}: {what}; given values: {given}; given noise: {noise}."

    def _boundary(self, node: str) -> str:
        """A node's value beyond the sequence: its draw, `NAME_init`, or made here."""
        first = self.initials.get(node)
        if first:
            return self.name(first)
        return self.name(node, "init") if node in self.boundaries else f"self.initial({node!r}, batch)"

    def _loop(self, block: Block, steps: int) -> None:
        lagged = self._lagged(block)
        for node in lagged:
            self.lines.append(f"    {self.name(node, 'prev')} = {self._boundary(node)}")
        for step in block.steps:
            if step.role == "compute" and NETWORKS[step.net.name].recurrent:
                self.lines.append(f"    {self.name(step.node, 'carry')} = None")
            for part in self._recorded(step):
                empty = "[]" if block.direction > 0 else f"[None] * {steps}"
                self.lines.append(f"    {self._steps(step.node, part)} = {empty}")
        at = len(self.lines)
        self.lines.append("")  # the loop's header, once the body tells whether it reads t
        for step in block.steps:
            self._step(step, 2, block)
            for part in self._recorded(step):
                many, one = self._steps(step.node, part), self._var(step.node, part)
                kept = f"{many}.append({one})" if block.direction > 0 else f"{many}[t] = {one}"
                self.lines.append(f"        {kept}")
        for node in lagged:
            self.lines.append(f"        {self.name(node, 'prev')} = {self.name(node)}")
        if block.direction < 0:
            self.uses_t = True
        var = "t" if self.uses_t else "_t"
        self.lines[at] = f"    for {var} in range({steps}):" if block.direction > 0 else \
            f"    for {var} in reversed(range({steps})):  # backward: it reads later steps"

    def _recorded(self, step: Step) -> list[str]:
        """What the trace keeps of a step: its value, and for sampled steps its params and
        its noise (when there is any)."""
        if step.role != "sample":
            return ["value"]
        has_noise = step.node in self.sig.noise or step.node not in self.sig.given
        return [*(["value"] if step.node not in self.sig.unread else []), "params", *(["eps"] if has_noise else [])]

    def _var(self, node: str, part: str = "value") -> str:
        return self.name(node) if part == "value" else self.name(node, part)

    def _net(self, step: Step, part: str = "") -> str:
        """The name of a step's network (`p_z`, `q_z`) or, with `cell`, its recurrent kind."""
        return self.name(step.key, part, space="net")

    def _steps(self, node: str, part: str) -> str:
        """The list a time-indexed node's values (params, noise) are appended to."""
        return self.name(node, "steps" if part == "value" else f"{part}_steps")

    # -- one step -------------------------------------------------------------------------

    def _step(self, step: Step, depth: int, block: Block) -> None:
        pad = "    " * depth
        self.lines += [pad + line for line in self._comments(step)]
        out = [f"{pad}{line}" for line in self._body(step, block)]
        self.lines += out

    def _body(self, step: Step, block: Block) -> list[str]:
        me, timed = self.name(step.node), bool(block.direction)
        if step.node in self.sig.given and step.role != "sample":
            return [f"{me} = {self._supplied('given', step.node, timed)}"]
        if step.role == "compute":
            return self._compute(step, block, me)
        family, spec, size = self.name(step.node, "family"), self.name(step.node, "spec"), step.size
        lines: list[str] = []
        computed = f"{self._net(step)}({self._inputs(step, block, lines)})" if step.key in self.nets else "None"
        learned = f"self.free[{step.key!r}].expand(batch, -1)" if step.key in self.free else "None"
        params, eps = self.name(step.node, "params"), self.name(step.node, "eps")
        if _plain(step.family):
            lines += self._assemble(step, computed, learned, params, block)
        else:
            lines.append(f"{params} = {family}.assemble({computed}, {learned}, {spec}, {size}, batch, anchor)")
            if step.exprs:  # the parameters expressions give, in the family's order
                given = dict(step.exprs)
                lines.append(f"{params} = {{" + ", ".join(
                    f"{p!r}: {self._given(given[p], step, block)}" if p in given else f"{p!r}: {params}[{p!r}]"
                    for p in step.family.params) + "}")
        if step.node in self.sig.noise:
            lines.append(f"{eps} = {self._supplied('noise', step.node, timed)}")
        elif step.node not in self.sig.given:
            lines.append(f"{eps} = {family}.noise((batch, {size}), generator, anchor.device).to(anchor.dtype)")
        if step.node in self.sig.given:
            lines.append(f"{me} = {self._supplied('given', step.node, timed)}")
        elif step.node not in self.sig.unread:
            lines.append(f"{me} = {family}.reparam({eps}, {params})")
        return lines

    def _given(self, expr: ir.Expr, step: Step, block: Block) -> str:
        """A parameter an expression of the parents gives, [batch, size] (a number, as in
        a guide written out, filled in as a fixed one is)."""
        if expr.op == "number":
            return f"anchor.new_full((batch, {step.size}), {_literal(expr.value)})"
        return f"{expr.code(lambda p: self._read(read_of(self.model, p), block))}.expand(batch, {step.size})"

    def _assemble(self, step: Step, computed: str, learned: str, params: str, block: Block) -> list[str]:
        """`Family.assemble` written out: the raw vectors split into the parameters, each
        constrained (softplus + MIN_SCALE for positive ones); fixed ones filled in; those
        expressions give computed from the parents' values."""
        family, spec, size, given = step.family, step.spec, step.size, dict(step.exprs)
        lines, names = [], {p: self.name(step.node, p) for p in family.params}
        for raw, group in ((computed, spec.computed), (learned, spec.learned)):
            free = [p for p in family.params if p in group and p not in spec.fixed]
            if len(free) == 1:
                lines.append(f"{names[free[0]]} = {raw}")
            elif free:
                lines.append(f"{', '.join(names[p] for p in free)} = {raw}.split({size}, dim=-1)")
        for p in family.params:
            if p in given:
                lines.append(f"{names[p]} = {self._given(given[p], step, block)}")
            elif p in spec.fixed and isinstance(spec.fixed[p], tuple):  # one number per dimension
                lines.append(f"{names[p]} = anchor.new_tensor({_literal(spec.fixed[p])}).expand(batch, {size})")
            elif p in spec.fixed:
                lines.append(f"{names[p]} = anchor.new_full((batch, {size}), {_literal(spec.fixed[p])})")
            elif family.constraints[p] == "positive":
                lines.append(f"{names[p]} = torch.nn.functional.softplus({names[p]}) + {MIN_SCALE!r}")
        lines.append(f"{params} = {{" + ", ".join(f"{p!r}: {names[p]}" for p in family.params) + "}")
        return lines

    def _compute(self, step: Step, block: Block, me: str) -> list[str]:
        net, lines = self._net(step), []
        if not NETWORKS[step.net.name].recurrent:
            inputs = self._inputs(step, block, lines)
            return [*lines, f"{me} = {net}({inputs})"]
        prev, carry = self.name(step.node, "prev"), self.name(step.node, "carry")
        inputs = self._inputs(step, block, lines, skip_self=True)
        if inputs == "None":  # its only parent is its own previous state: an empty input
            inputs = f"{prev}.new_zeros(batch, 1)"
        return [*lines, f"{me}, {carry} = {self._net(step, 'cell')}.step({net}, {inputs}, {prev}, {carry})"]

    def _supplied(self, where: str, node: str, timed: bool) -> str:
        if timed:
            self.uses_t = True
            return f"{where}[{node!r}][:, t]"
        return f"{where}[{node!r}]"

    def _inputs(self, step: Step, block: Block, lines: list[str], skip_self: bool = False) -> str:
        """The network's input: one parent's value, or the parents' values concatenated
        into `NODE_in` (a line added to `lines`)."""
        parts = [self._read(r, block) for r in step.parents
                 if not (skip_self and r.node == step.node and abs(r.lag) == 1)]
        if len(parts) < 2:
            return parts[0] if parts else "None"
        name = self.name(step.node, "in")
        lines.append(f"{name} = torch.cat([{', '.join(parts)}], dim=-1)")
        return name

    def _read(self, read: Read, block: Block) -> str:
        """A parent's value as the step reads it: a static node's variable; in its own
        scan, the current value, `NAME_prev` one step back, an older one from its list;
        from a finished scan's list (in time order), or one fixed step of it."""
        node, lag, home = read.node, read.lag, self.block_of.get(read.node)
        if home is None or not home.direction:
            return self.name(node)
        values = self._steps(node, "value")
        if read.at is not None:
            return f"{values}[{read.at}]"
        if home is block and abs(lag) < 2:
            return self.name(node, "prev") if lag else self.name(node)
        self.uses_t = True
        if not lag:
            return f"{values}[t]"
        if lag > 0:
            return f"({values}[t - {lag}] if t >= {lag} else {self._boundary(node)})"
        return f"({values}[t + {-lag}] if t + {-lag} < {self.steps} else {self._boundary(node)})"

    def _comments(self, step: Step) -> list[str]:
        """The spec lines behind a step: the node's declaration and the edge or guide
        line that names its network."""
        base = step.node.split("[")[0]
        node = self.model.node(base)
        spans = [node.span]
        if step.key.startswith("q_") and node.guide is not None:
            spans.append(node.guide.net.span if node.guide.net else node.guide.span)
        elif step.exprs and step.node == base:  # the `~` line: where its expressions read their parents
            spans.append(step.exprs[0][1].reads()[0].span)
        elif step.net is not None and step.role != "given" and step.node == base:
            spans.append(step.net.span)
        lines = self.spec_lines
        drawn = f" ({step.node}, the draw before the first step)" if step.node != base else ""
        out = []
        for line in dict.fromkeys(s.line for s in spans):
            quoted = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            out.append(_clip(f"# line {line}{drawn}: {quoted}".rstrip(), WIDTH - 8))
        return out

    # -- the trace ------------------------------------------------------------------------

    def _trace(self) -> str:
        parts = {"values": [], "noise": [], "params": []}
        for step in self.walk.steps:
            for part in self._recorded(step):
                var = self._var(step.node, part)
                if step.timed:
                    many = self._steps(step.node, part)
                    var = f"stack_params({many})" if part == "params" else f"torch.stack({many}, 1)"
                field = {"value": "values", "eps": "noise", "params": "params"}[part]
                parts[field].append(f"{step.node!r}: {var}")
        lines = ["    return Trace("]
        for field, entries in parts.items():
            lines.append(f"        {field}={{" + ", ".join(entries) + "},")
        lines.append("    )")
        return "\n".join(_wrap(line) for line in lines)


def _plain(family: Family) -> bool:
    """Whether the family assembles its parameters as `Family` does (then the generated
    code writes it out); a family that overrides it is called instead."""
    kind = type(family)
    return all(getattr(kind, f) is getattr(Family, f) for f in ("assemble", "constrain", "raw_size"))


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def _wrap(line: str) -> str:
    """A long `field={a: x, b: y}` line split one entry per line (ruff's line length)."""
    if len(line) <= WIDTH or "={" not in line:
        return line
    head, body = line.split("={", 1)
    entries = body.removesuffix("},").split(", '")
    entries = [entries[0], *("'" + e for e in entries[1:])]
    return "\n".join([f"{head}={{", *(f"            {e}," for e in entries), "        },"])


def _literal(value: float | tuple[float, ...]) -> str:
    """A fixed number (or a tuple of them) as Python source; an infinite one (the logit of
    a probability fixed to 0 or 1) as `float('-inf')`, which `repr` does not write."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ",)"
    return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
