"""The exact log-likelihood of a model whose latents are all discrete with a small joint
support (the Helmholtz machine's binary layers: 2**8 joint values), by enumeration:

    log p(x) = logsumexp over z of  sum over nodes n of  log p(n | its parents),

every latent taking each joint value z in turn and every other random node its value in
the data. It is the figure an ELBO bounds from below, for any guide, so it tells a student
that is a better model from one that only has a better-matched guide.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import torch
from torch import Tensor

from ..core.errors import UserError
from ..lower import CompiledModel

MAX_JOINT = 4096
"""The most joint latent values enumerated (beyond, the sum is refused, not sampled)."""


def enumerable(module: CompiledModel) -> bool:
    """Whether `exact_log_likelihood` applies: no time steps, every latent of a family with
    a finite support, at most MAX_JOINT joint values."""
    count = joint_count(module)
    return count is not None and count <= MAX_JOINT


def joint_count(module: CompiledModel) -> int | None:
    """How many joint latent values enumeration would visit, counted from the families
    without building any (a 40-bit layer has 2**40); None where enumeration does not apply
    at all: time steps, an initial draw, no latent, or a latent without a finite support."""
    if module.ir.time is not None or module.ir.initials() or not module.ir.of_kind("latent"):
        return None
    counts = [module.families[node.name].support_size(node.size) for node in module.ir.of_kind("latent")]
    return None if None in counts else math.prod(counts)


def _supports(module: CompiledModel) -> dict[str, Tensor] | None:
    """Each latent's support, built only once the joint count is known to be small enough."""
    if not enumerable(module):
        return None
    return {node.name: module.families[node.name].support(node.size) for node in module.ir.of_kind("latent")}


def exact_log_likelihood(module: CompiledModel, data: Mapping[str, Tensor], chunk: int = 64) -> Tensor:
    """log p(observed | inputs) of each row of `data` (observed and input nodes), exactly;
    rows are taken `chunk` at a time (each expands to every joint latent value)."""
    supports = _supports(module)
    if supports is None:
        why = _too_many(module)
        raise UserError(f"'{module.ir.name}' has no exact log-likelihood here: it needs every latent discrete with "
                        f"a finite support, at most {MAX_JOINT} joint values, and no time steps"
                        + (f"; {why}." if why else "."))
    device = module._anchor.device
    joint = [torch.stack(values) for values in zip(*itertools.product(*supports.values()), strict=True)]
    latents = dict(zip(supports, (v.to(device) for v in joint), strict=True))  # node -> [J, size]
    count = next(iter(latents.values())).shape[0]
    rows = next(iter(data.values())).shape[0]
    out = []
    with torch.no_grad():
        for start in range(0, rows, chunk):
            part = {k: v[start:start + chunk].to(device) for k, v in data.items()}
            n = next(iter(part.values())).shape[0]
            given = {k: v.repeat_interleave(count, 0) for k, v in part.items()}
            given.update({k: v.repeat(n, 1) for k, v in latents.items()})
            trace = module.run({}, given=given)
            log_joint = sum(module.log_prob(node, trace) for node in trace.params)
            out.append(torch.logsumexp(log_joint.view(n, count), dim=1))
    return torch.cat(out)


def exact_metrics(module: CompiledModel, data: Mapping[str, Tensor]) -> dict[str, float | str]:
    """The reported `test_exact_nll` of teachers and students (-log p per example of
    `data`, exactly) where the model allows it; where its latents are enumerable but too
    many, `test_exact_nll_skipped` says why instead (the report repeats it); else nothing."""
    accuracy = label_accuracy(module, data)
    if enumerable(module):
        return {"test_exact_nll": -float(exact_log_likelihood(module, data).mean()), **accuracy}
    too_many = _too_many(module)
    return accuracy if too_many is None else {"test_exact_nll_skipped": too_many, **accuracy}


def label_accuracy(module: CompiledModel, data: Mapping[str, Tensor]) -> dict[str, float]:
    """`test_accuracy[y]` for each one-hot node bound to data that the model predicts: a
    latent bound to labels from its guide's q(y | ...) with the labels hidden (M2's
    classifier), an observed node from p(y | inputs) (a classifier): the share of the rows
    with a label whose most probable class is it."""
    model, found = module.ir, {}
    latents = [n for n in model.bound_latents() if model.node(n).family.event]
    observed = [n.name for n in model.of_kind("observed") if n.family.event and n.parents
                and all(model.node(p.name).kind == "input" for p in n.parents)]
    if not (latents or observed) or not all(n in data for n in (*latents, *observed)):
        return found
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if latents:
            guide = module.infer({k: v for k, v in data.items() if k not in latents}, generator=generator)
        if observed:
            inputs = {n.name: data[n.name] for n in model.of_kind("input")}
            model_trace = module.sample(next(iter(data.values())).shape[0], inputs, generator)
    for name in (*latents, *observed):
        trace = guide if name in latents else model_trace
        labels = data[name]
        there = ~torch.isnan(labels).any(-1)
        predicted = module.distribution(name, trace.params[name]).probs.argmax(-1)
        if there.any():
            found[f"test_accuracy[{name}]"] = float((predicted[there] == labels[there].argmax(-1)).float().mean())
    return found


def _too_many(module: CompiledModel) -> str | None:
    """Why a model whose latents all have a finite support is not enumerated: their joint
    count; None when that is not the reason."""
    count = joint_count(module)
    if count is None or count <= MAX_JOINT:
        return None
    return f"its latents take {count:,} joint values, more than the {MAX_JOINT:,} that are enumerated"
