"""The ELBO with discrete latents summed out (`train elbo(enumerate = [...])`), built on
the sampled ELBO's parts (`objectives._sampled_parts`, handed in as `sampled`):

- latents without time steps: the batch runs once per joint value of them, on the same
  guide noise, and the rows are combined exactly (`summed_out`);
- a chain over time without a guide (an HMM's hidden state): the forward algorithm over
  its values at every step (`chain_summed_out`), one pass per value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.base import lazy_import
from ..losses.elbo import latent_terms

if TYPE_CHECKING:
    from torch import Generator, Tensor

    from ..families import Family
    from ..lower import CompiledModel, Trace

torch = lazy_import("torch")

Batch = dict[str, "Tensor"]
Parts = Callable[..., dict[str, "Tensor"]]
"""(model, batch, generator, guide, noise) -> the sampled ELBO's parts per row."""


def summed_out(model: CompiledModel, batch: Batch, generator: Generator | None, guide: CompiledModel | None,
               sampled: Parts, present: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """The ELBO with the spec's `enumerate` latents summed over their joint values: the
    batch runs once per value (on the same guide noise), and the rows are combined as
    sum_g q(g | x) log sum_m exp(L(g, m)), g the values of the latents with a guide
    (weighted by the guide's probabilities), m those without (summed out of the model).
    Each returned term is its expectation under the weights q(g | x) p(m | g, x, z); the
    latents summed out of the model also carry minus the entropy of p(m | ...), so that
    the terms add up to the bound, exactly as a sum of logs."""
    terms = latent_terms(model.ir)
    guided = [n for n in model.ir.train.enumerate if terms[n].summed == "guide"]
    outside = [n for n in model.ir.train.enumerate if terms[n].summed == "model"]
    rows = next(iter(batch.values())).shape[0]
    grid = _joint_values(model, guided + outside)
    given = {n: (batch[n], present[n]) for n in guided if present and n in present and n in batch}
    count = len(next(iter(grid.values())))
    count_g = math.prod(model.families[n].support_size(model.ir.node(n).size) for n in guided)
    expanded = {k: _tiled(v, count) for k, v in batch.items()}
    expanded.update({n: values.repeat_interleave(rows, 0) for n, values in grid.items()})
    parts = sampled(model, expanded, generator, guide, _shared_noise(guide or model, rows, count, generator))
    log_q = {n: parts.pop(f"logq[{n}]").reshape(count_g, -1, rows)[:, 0] for n in guided}  # [guided values, rows]
    shaped = {k: v.reshape(count_g, -1, rows) for k, v in parts.items()}
    classified = {}
    for name, (value, there) in given.items():  # observed where present: one-hot weight, no log q
        match = _matches(grid[name].reshape(count_g, -1, grid[name].shape[-1])[:, 0], value)  # [guided values, rows]
        classified[f"class[{name}]"] = -torch.where(match & there, log_q[name], 0).sum(0)
        shaped[f"kl[{name}]"] = shaped[f"kl[{name}]"] - torch.where(there, log_q[name], 0).unsqueeze(1)
        chosen = torch.zeros_like(log_q[name]).masked_fill(~match, -math.inf)
        log_q[name] = torch.where(there, chosen, log_q[name])
    weight_g = torch.stack(list(log_q.values())).sum(0).exp() if guided else model._anchor.new_ones(1, rows)
    bound = -sum(shaped.values())  # L(g, m) per row: [guided values, outside values, rows]
    responsibility = bound.softmax(1)  # p(m | g, x, z)
    weight = weight_g.unsqueeze(1) * responsibility
    # a joint value of weight 0 (a probability fixed to 0) scores inf: it adds nothing, not 0 * inf
    out = {k: (weight * torch.where(weight > 0, v, 0)).sum((0, 1)) for k, v in shaped.items()}
    if outside:
        scored = torch.where(responsibility > 0, bound, 0)
        entropy = bound.logsumexp(1) - (responsibility * scored).sum(1)  # [guided values, rows]
        share = (weight_g * entropy).sum(0) / len(outside)
        for name in outside:
            out[f"kl[{name}]"] = out[f"kl[{name}]"] - share
    return {**out, **classified}


def _matches(values: Tensor, given: Tensor) -> Tensor:
    """[values, rows]: whether each of a latent's values is the row's given one (a
    missing row, NaN, matches none)."""
    return (values.unsqueeze(1) == given.unsqueeze(0)).flatten(2).all(-1)


def _shared_noise(guided_by: CompiledModel, rows: int, count: int, generator: Generator | None) -> Batch:
    """The guide's noise for `rows` rows, drawn once and repeated for each of the `count`
    values summed over (none where no latent has a guide)."""
    if guided_by.inference is None:
        return {}
    return {k: _tiled(v, count) for k, v in guided_by.draw(rows, generator, guide=True).items()}


def _tiled(tensor: Tensor, count: int) -> Tensor:
    """`count` copies of a batch, one after the other (row k * rows + i is row i)."""
    return tensor.repeat(count, *([1] * (tensor.dim() - 1)))


def _joint_values(model: CompiledModel, names: list[str]) -> dict[str, Tensor]:
    """Every joint value of the latents `names`, the first varying slowest: per latent, a
    [values, size] tensor of its value in each joint value."""
    supports = [model.families[n].support(model.ir.node(n).size).to(model._anchor) for n in names]
    picks = torch.cartesian_prod(*(torch.arange(len(s)) for s in supports)) if len(supports) > 1 else \
        torch.arange(len(supports[0])).unsqueeze(1)
    return {n: s[picks[:, i]] for i, (n, s) in enumerate(zip(names, supports, strict=True))}


def chain_summed_out(model: CompiledModel, batch: Batch, generator: Generator | None,
                     guide: CompiledModel | None, traced: Callable[..., tuple[dict[str, Tensor], Trace]]
                     ) -> dict[str, Tensor]:
    """The ELBO with a chain s[t] summed out by the forward algorithm: log sum over every
    path of p(s[0]) prod_t p(s[t] | s[t-1]) p(children of s[t] | s[t]), computed in
    K x K per step rather than K**T. The model runs once per value j of s, held at j at
    every step (and before the first), which gives each step's transition row
    p(s[t] | s[t-1] = j) and emission p(children[t] | s[t] = j): the checker allows a chain
    only where nothing else reads s, so nothing else moves with j. The other terms are the
    sampled ELBO's (the chain's children excepted), read on the first pass."""
    name = model.ir.summed_chain()
    node, rows = model.ir.node(name), next(iter(batch.values())).shape[0]
    support = model.families[name].support(node.size).to(model._anchor)  # [K, size]
    count, steps = len(support), model.ir.time.steps
    children = [n.name for n in model.ir.of_kind("observed") if any(p.name == name for p in n.parents)]
    expanded = {k: _tiled(v, count) for k, v in batch.items()}
    expanded[name] = support.repeat_interleave(rows, 0).unsqueeze(1).expand(-1, steps, -1)
    initial = model.initial_names.get(name)
    if initial is not None:
        expanded[initial] = support.repeat_interleave(rows, 0)
    parts, p = traced(model, expanded, generator, guide, _shared_noise(guide or model, rows, count, generator))
    family = model.families[name]
    transition = torch.stack([_per_step(family, p.params[name], value.expand(count * rows, steps, -1))
                              for value in support], -1).reshape(count, rows, steps, count)  # [j, row, t, k]
    emission = sum((_per_step(model.families[c], p.params[c], expanded[c]) for c in children),
                   model._anchor.new_zeros(count * rows, steps))  # no child: the chain's own prior
    emission = emission.reshape(count, rows, steps).permute(1, 2, 0)  # [row, t, k]
    if initial is not None:  # s[0] drawn: its distribution is the same in every pass
        log_alpha = _per_value(family, p.params[initial], support)[:rows]  # [row, j]
        log_alpha = torch.logsumexp(log_alpha.unsqueeze(-1) + transition[:, :, 0].permute(1, 0, 2), 1)
    else:  # s[0] fixed: the first step's row is the same in every pass
        log_alpha = transition[0, :, 0]
    log_alpha = log_alpha + emission[:, 0]
    for t in range(1, steps):
        log_alpha = torch.logsumexp(log_alpha.unsqueeze(-1) + transition[:, :, t].permute(1, 0, 2), 1) + emission[:, t]
    out = {k: v.reshape(count, rows)[0] for k, v in parts.items()
           if k not in {f"nll[{c}]" for c in children} | {f"kl[{name}]"} | ({f"kl[{initial}]"} if initial else set())}
    out[f"sum[{name}]"] = -torch.logsumexp(log_alpha, -1)
    return out


def _per_step(family: Family, params: dict[str, Tensor], value: Tensor) -> Tensor:
    """log p(value) per row and step: summed over a factorized family's dimensions."""
    density = family.log_density(params, value)
    return density if family.event else density.sum(-1)


def _per_value(family: Family, params: dict[str, Tensor], support: Tensor) -> Tensor:
    """log p(each value of `support`) per row: [rows, values]."""
    rows = next(iter(params.values())).shape[0]
    return torch.stack([_per_step(family, params, value.expand(rows, -1)) for value in support], -1)
