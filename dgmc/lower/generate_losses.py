"""The objectives as Python source: what a training or distillation step runs.

One function per objective, each a few passes followed by one line per node:
- `elbo_parts`: the latents from the model's own guide, the model run on them; -log p of
  each observed node and, per latent, KL(q || p) where the closed form is the ELBO's
  term, else log q - log p on the guide's sample (`losses.elbo`), per row; a latent
  summed out is scored at the value each row gives it (with its log q, the row's weight,
  as `logq[z]`), and `objectives` combines the rows;
- `wake_sleep_parts`: wake, -log p of every random node on the guide's latents (no
  gradient through them); sleep, -log q of each latent on a dream from the model;
- `mle_parts`: -log p of each observed node given the inputs;
- `distill_loss`: on the teacher's ancestral sample, the student on its noise (fed the
  method's nodes), each generated term (`dgmc.losses`) on the two traces, and their
  weighted sum.
Where a family has a written-out form (`NLL_CODE`, `_kl_code`), the line calls it on the
parameter tensors (no distribution object, no dispatch, a fixed prior's constants folded
in); elsewhere it calls the reference's own functions. The forms live in `runtime`, the
one module generated code imports. The reference is `objectives` and
`distillation.term_values`, which the tests hold this code equal to, bit for bit: each
form computes exactly the operations torch.distributions performs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .. import ir
from ..families import Family, builtin
from ..losses.divergences import DIVERGENCES
from ..losses.elbo import latent_terms
from ..losses.terms import Term
from .plan import Step
from .text import WIDTH, Names

NllCode = Callable[[str, str], str]
"""(node's name, trace's variable) -> the expression of -log p of the node's value under
the trace, summed over the last dimension (per row, and per step for a timed node)."""


def _bernoulli_nll(node: str, trace: str) -> str:
    return f"bernoulli_nll({trace}.params[{node!r}]['logits'], {trace}.values[{node!r}])"


NLL_CODE: dict[type[Family], NllCode] = {builtin.Bernoulli: _bernoulli_nll}
"""Per family class (exactly: a subclass may behave otherwise), its -log p written out."""


def _standard_normal_prior_kl(node: str) -> str:
    # torch's KL(Normal || Normal) with the prior's loc 0 and scale 1 folded in: x / 1 and
    # x - 0 are exact, so the result is the same, bit for bit
    scale, loc = f"q.params[{node!r}]['scale']", f"q.params[{node!r}]['loc']"
    return f"kl_standard_normal({loc}, {scale})"


def _kl_code(step: Step, family: Family) -> str | None:
    """The written-out KL of a latent whose prior is fixed, where one is known."""
    if type(family) is builtin.Normal and step.spec.fixed == {"loc": 0.0, "scale": 1.0} and not step.timed:
        return _standard_normal_prior_kl(step.node)
    return None


class _Function:
    """One generated function: its head, then per node a comment quoting the spec line and
    the statement, then the dict of what it returns."""

    def __init__(self, model: ir.Model, head: str, doc: str) -> None:
        self.model, self.name = model, Names()
        self.lines = [head, f'    """{model.name}: {doc}"""']
        self.out: list[tuple[str, str]] = []

    def line(self, text: str) -> None:
        self.lines.append(f"    {text}")

    def node(self, node: str, part: str, key: str, expr: str) -> None:
        """`NODE_PART = expr` under the node's spec line, returned under `key`."""
        base = self.model.node(node.split("[")[0])
        var = self.name(node, part)
        statement = f"    {var} = {expr}"
        if len(statement) > WIDTH:  # the call's arguments on a line of their own (ruff's line length)
            head, rest = statement.split("(", 1)
            statement = f"{head}(\n        {rest}"
        self.lines += [f"    # line {base.span.line}: {_quoted(self.model, base.span.line)}", statement]
        self.out.append((key, var))

    def text(self, returns: str = "") -> str:
        """The function; it returns the dict of `out`, after `returns` when one is named."""
        first = f"{returns}, " if returns else ""
        lines = [*self.lines, f"    return {first}{{" + ", ".join(f"{key!r}: {var}" for key, var in self.out) + "}"]
        return "\n".join(_wrapped(line) for line in lines) + "\n"


def _nll(node: ir.Node, step: Step, trace: str) -> str:
    """-log p of `node`'s value under `trace`, per row."""
    written = NLL_CODE.get(type(step.family))
    if not written:
        return f"-self.log_prob({node.name!r}, {trace})"
    return written(node.name, trace) + (".sum(-1)" if node.timed else "")


def elbo_source(model: ir.Model, generative: dict[str, Step]) -> str:
    """`elbo_parts(self, data, generator)`; `generative` maps each node to its step of
    the generative pass (its family and parameter spec)."""
    f = _Function(model, "def elbo_parts(self, data, generator, noise=None):",
                  "-log p of each observed node and the ELBO's term of each latent, per row.")
    terms = latent_terms(model)
    outside = [name for name, term in terms.items() if term.summed == "model"]
    if not model.fully_guided():  # every latent summed out of the model: the data gives them all
        f.line("p = self.run({}, given=data)")
    elif outside:  # summed out of the model: each row holds one of their values (`training.summed`)
        f.line("q = self.infer(data, noise, generator)")
        f.line("p = self.run({}, given={**q.values, " + ", ".join(f"{n!r}: data[{n!r}]" for n in outside) + "})")
    else:
        f.line("q = self.infer(data, noise, generator)")
        f.line("p = self.run({}, given=q.values)")
    for node in model.of_kind("observed"):
        f.node(node.name, "nll", f"nll[{node.name}]", _nll(node, generative[node.name], "p"))
    for node in model.of_kind("observed"):
        if node.guide is not None:  # an auxiliary predictor: -log q of the observed value
            f.node(node.name, "aux", f"aux[{node.name}]", f"-self.log_prob({node.name!r}, q)")
    for name, term in terms.items():
        if term.summed == "model":
            f.node(name, "kl", f"kl[{name}]", f"-self.log_prob({name!r}, p)")
        elif term.summed == "guide":
            f.node(name, "kl", f"kl[{name}]", f"self.log_prob({name!r}, q) - self.log_prob({name!r}, p)")
            f.node(name, "logq", f"logq[{name}]", f"self.log_prob({name!r}, q)")
        elif term.closed:
            step = generative[name]
            f.node(name, "kl", f"kl[{name}]", _kl_code(step, step.family) or f"kl_per_row(self, {name!r}, q, p)")
        else:  # the closed form would hold the generative parents the guide drew from this latent
            f.line(f"# {name}: Monte Carlo, the guide draws {', '.join(term.drawn_from)} from {name}")
            f.node(name, "kl", f"kl[{name}]", f"self.log_prob({name!r}, q) - self.log_prob({name!r}, p)")
    return f.text()


def wake_sleep_source(model: ir.Model, generative: dict[str, Step]) -> str:
    """`wake_sleep_parts(self, data, generator)`: each wake and sleep term, batch means."""
    f = _Function(model, "def wake_sleep_parts(self, data, generator):",
                  "wake terms (-log p on the guide's latents) and sleep terms (-log q on a dream).")
    f.line("with torch.no_grad():")
    f.line("    q = self.infer(data, generator=generator)")
    f.line("p = self.run({}, given=q.values)")
    for node in model.of_kind("latent", "observed"):
        f.node(node.name, "wake", f"wake[{node.name}]", f"({_nll(node, generative[node.name], 'p')}).mean()")
    inputs = ", ".join(f"{n.name!r}: data[{n.name!r}]" for n in model.of_kind("input"))
    f.line("with torch.no_grad():")
    f.line(f"    dream = self.sample(next(iter(data.values())).shape[0], {{{inputs}}}, generator)")
    f.line("dreamt = self.infer(dream.values)")
    for node in model.of_kind("latent"):
        f.node(node.name, "sleep", f"sleep[{node.name}]", f"({_nll(node, generative[node.name], 'dreamt')}).mean()")
    return f.text()


def mle_source(model: ir.Model, generative: dict[str, Step]) -> str:
    """`mle_parts(self, data, generator)`: -log p of each observed node, batch means."""
    f = _Function(model, "def mle_parts(self, data, generator):", "-log p of each observed node given the inputs.")
    inputs = ", ".join(f"{n.name!r}: data[{n.name!r}]" for n in model.of_kind("input"))
    observed = ", ".join(f"{n.name!r}: data[{n.name!r}]" for n in model.of_kind("observed"))
    f.line(f"p = self.run({{}}, {{{inputs}}}, {{{observed}}})")
    for node in model.of_kind("observed"):
        f.node(node.name, "nll", f"nll[{node.name}]", f"({_nll(node, generative[node.name], 'p')}).mean()")
    return f.text()


def distill_source(model: ir.Model, fed: tuple[str, ...], terms: tuple[Term, ...],
                   generative: dict[str, Step]) -> str:
    """`distill_loss(self, t, inputs)`: the loss on the teacher's trace `t` and each term
    (detached, keyed as the log names them); the student is fed the teacher's `fed`.
    A weight of 1 and a term that is 0 whatever the weights (`_same_in_both`) are folded
    out of the sum, which is otherwise the reference's, in the same order."""
    f = _Function(model, "def distill_loss(self, t, inputs):",
                  f"the distillation loss on the teacher's sample t, the student fed {', '.join(fed) or 'nothing'}.")
    _student_line(f, "s = self.run(t.noise, inputs, {", "}, read=())", fed)
    return _terms(f, terms, generative)


def guide_distill_source(model: ir.Model, fed: tuple[str, ...], terms: tuple[Term, ...],
                         inference: dict[str, Step]) -> str:
    """`guide_distill_loss(self, t, data)`: the same terms on the inference graph, the
    teacher's guide trace `t` (on `data`, the teacher's sampled observed and input
    values) against the student's guide on its noise, fed the teacher's latents `fed`."""
    f = _Function(model, "def guide_distill_loss(self, t, data):",
                  f"the guide's distillation loss on the teacher guide's trace t, the student fed "
                  f"{', '.join(fed) or 'nothing'}.")
    if fed:
        _student_line(f, "s = self.infer({**data, ", "}, t.noise)", fed)
    else:
        f.line("s = self.infer(data, t.noise)")
    return _terms(f, terms, inference)


def _student_line(f: _Function, head: str, tail: str, fed: tuple[str, ...]) -> None:
    """The student's pass, `head` + the fed values + `tail`, one entry per line when long."""
    given = [f"{n!r}: t.values[{n!r}]" for n in fed]
    if len(", ".join(given)) < 70:
        f.line(head + ", ".join(given) + tail)
    else:  # one entry per line (ruff's line length)
        f.lines += [f"    {head}", *(f"        {g}," for g in given), f"    {tail}"]


def _terms(f: _Function, terms: tuple[Term, ...], steps: dict[str, Step]) -> str:
    """Each term on the traces `t` and `s`, their weighted sum `loss`; returns the source."""
    constant = {term.node for term in terms if _same_in_both(steps[term.node], term.divergence)}
    for term in terms:
        if term.node not in constant:
            f.line(f"{f.name(term.node, 'divergence')} = divergence_form(self.families[{term.node!r}], "
                   f"{term.divergence!r})")
    for term in terms:
        node, family = term.node, steps[term.node].family
        per = f"{f.name(node, 'divergence')}(t.params[{node!r}], s.params[{node!r}], t.noise.get({node!r}))"
        f.node(node, "term", f"{term.kind}[{node}]", "self._anchor.new_zeros(())  # fixed parameters: the same "
               "conditional in both" if node in constant else per + _reduced(family, term))
    weighted = [("" if term.weight == 1 else f"{term.weight!r} * ") + f.name(term.node, "term")
                for term in terms if term.node not in constant]
    loss = "loss = " + (" + ".join(weighted) or "self._anchor.new_zeros(())")
    if len(loss) + 4 > WIDTH:  # one term per line (ruff's line length)
        loss = "loss = (\n        " + "\n        + ".join(weighted) + "\n    )"
    f.line(loss)
    f.out = [(key, f"{var}.detach()") for key, var in f.out]
    return f.text(returns="loss")


def _same_in_both(step: Step, divergence: str) -> bool:
    """Whether the term is 0 whatever the weights: every parameter of the node fixed (the
    same numbers in teacher and student) and a divergence that vanishes between equals."""
    return set(step.spec.fixed) == set(step.family.params) and DIVERGENCES[divergence].zero_when_equal


SOURCES: dict[str, Callable[..., str]] = {"elbo_parts": elbo_source, "wake_sleep_parts": wake_sleep_source,
                                          "mle_parts": mle_source, "distill_loss": distill_source,
                                          "guide_distill_loss": guide_distill_source}
"""Each generated objective's writer: (model, its specialisation..., the steps of its
pass: `ON_GUIDE`'s the inference pass's, the others the generative pass's) -> source."""

ON_GUIDE = frozenset({"guide_distill_loss"})
"""The objectives whose terms are on the inference graph."""


def _reduced(family: Family, term: Term) -> str:
    """`losses.reduce` written out: over the dimensions (a factorized family's value is
    per dimension, as is one computed from the parameters alone, such as mse, per parameter
    entry), the steps, the batch."""
    per_dimension = not family.event or DIVERGENCES[term.divergence].from_params
    return (f".{'mean' if term.reduction == 'mean' else 'sum'}(-1)" if per_dimension else "") + \
        (".sum(-1)" if term.timed else "") + ".mean()"


def _wrapped(line: str) -> str:
    """The returned dict one entry per line when it is long (ruff's line length)."""
    head = re.match(r"    return (\w+, )?\{", line)
    if len(line) <= WIDTH or not head:
        return line
    entries = line.removeprefix(head.group(0)).removesuffix("}").split(", ")
    return "\n".join([head.group(0), *(f"        {e}," for e in entries), "    }"])


def _quoted(model: ir.Model, line: int) -> str:
    text = model.source_text[0].splitlines() if model.source_text else []
    return (text[line - 1].strip() if 0 < line <= len(text) else "")[:100]
