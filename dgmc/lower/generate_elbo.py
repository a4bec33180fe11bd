"""The ELBO's terms as Python source: `elbo_parts`, what a teacher's training step runs.

The function infers the latents through the model's own guide, runs the model on them,
and writes one line per node: -log p of each observed node and KL(q || p) of each latent,
per batch row. Where a family has a written-out form (`NLL_CODE`, `_kl_code`), the
line is that form, on the parameter tensors (no distribution object, no dispatch, and a
fixed prior's constants folded in); elsewhere it calls the same functions as the
reference, `objectives._elbo_parts`, which the tests hold it equal to bit for bit. Each
form below computes exactly the operations torch.distributions performs for it.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import ir
from ..base import lazy_import
from ..families import Family, builtin
from .plan import Step

torch = lazy_import("torch")

NllCode = Callable[[str], str]
"""A node's name -> the expression of its -log p under the model's trace `p`, summed over
the last dimension (per row, and per step for a time-indexed node)."""


def _bernoulli_nll(node: str) -> str:
    return f"bernoulli_nll(p.params[{node!r}]['logits'], p.values[{node!r}])"


def bernoulli_nll(logits, value):
    """-log Bernoulli(value; logits) per row, as torch computes it: Bernoulli.log_prob is
    -binary_cross_entropy_with_logits, and Independent sums the last dimension."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)


NLL_CODE: dict[type[Family], NllCode] = {builtin.Bernoulli: _bernoulli_nll}
"""Per family class (exactly: a subclass may behave otherwise), its -log p written out."""


def _standard_normal_prior_kl(node: str) -> str:
    # torch's KL(Normal || Normal) with the prior's loc 0 and scale 1 folded in: x / 1 and
    # x - 0 are exact, so the result is the same, bit for bit
    scale, loc = f"q.params[{node!r}]['scale']", f"q.params[{node!r}]['loc']"
    return f"kl_standard_normal({loc}, {scale})"


def kl_standard_normal(loc, scale):
    """KL(N(loc, scale) || N(0, 1)) per row, as torch computes it with a N(0, 1) prior."""
    var_ratio = scale.pow(2)
    return (0.5 * (var_ratio + loc.pow(2) - 1 - var_ratio.log())).sum(-1)


def _kl_code(step: Step, family: Family) -> str | None:
    """The written-out KL of a latent whose prior is fixed, where one is known."""
    if type(family) is builtin.Normal and step.spec.fixed == {"loc": 0.0, "scale": 1.0} and not step.timed:
        return _standard_normal_prior_kl(step.node)
    return None


def source(model: ir.Model, generative: dict[str, Step]) -> str:
    """`elbo_parts(self, data, generator)`; `generative` maps each node to its step of
    the generative pass (its family and parameter spec)."""
    lines = ["def elbo_parts(self, data, generator):",
             f'    """{model.name}: -log p of each observed node and KL(q || p) of each latent, per row."""',
             "    q = self.infer(data, generator=generator)",
             "    p = self.run({}, given=q.values)"]
    out = []
    for node in model.of_kind("observed"):
        step = generative[node.name]
        written = NLL_CODE.get(type(step.family))
        expr = written(node.name) if written else f"-self.log_prob({node.name!r}, p)"
        if written and node.timed:
            expr += ".sum(-1)"
        lines += [f"    # line {node.span.line}: {_quoted(model, node.span.line)}", f"    nll_{node.name} = {expr}"]
        out.append((f"nll[{node.name}]", f"nll_{node.name}"))
    for node in model.of_kind("latent"):
        step = generative[node.name]
        expr = _kl_code(step, step.family) or f"kl_per_row(self, {node.name!r}, q, p)"
        lines += [f"    # line {node.span.line}: {_quoted(model, node.span.line)}", f"    kl_{node.name} = {expr}"]
        out.append((f"kl[{node.name}]", f"kl_{node.name}"))
    lines.append("    return {" + ", ".join(f"{key!r}: {var}" for key, var in out) + "}")
    return "\n".join(_wrapped(line) for line in lines) + "\n"


def _wrapped(line: str) -> str:
    """The returned dict one entry per line when it is long (ruff's line length)."""
    if len(line) <= 120 or not line.startswith("    return {"):
        return line
    entries = line.removeprefix("    return {").removesuffix("}").split(", ")
    return "\n".join(["    return {", *(f"        {e}," for e in entries), "    }"])


def _quoted(model: ir.Model, line: int) -> str:
    text = model.source_text[0].splitlines() if model.source_text else []
    return (text[line - 1].strip() if 0 < line <= len(text) else "")[:100]
