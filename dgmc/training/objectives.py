"""The teacher's objectives: the registry `OBJECTIVES`, read by the checker (which
objective fits which model) and by training (the function that computes it).

Every objective takes a compiled model and a batch of data (node -> tensor) and returns
the loss to minimise and its terms (batch means, in nats per example), so that training
can log and plot each term:
- `elbo`: -ELBO with reparametrized latents; the KL of each latent is closed-form when
  torch knows it for the pair (q, p) and the guide draws none of the latent's generative
  parents from it (`losses.elbo`), else the one-sample log q - log p; `beta` is the KL
  warm-up weight.
- `wake_sleep`: wake (generative nets fit log p(x, z) with z ~ q(z | x), no gradient
  through z) plus sleep (guide nets fit log q(z | x) on dreams (x, z) ~ p).
- `mle`: -log p(observed | inputs), for models without latents.
`negative_elbo` is the number reported for latent-variable teachers (whatever trained
them), `mle` for the others. torch is imported on first use, so the checker reads this
registry without loading it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import ir
from ..core.base import lazy_import
from ..core.registry import Registry
from ..losses.elbo import latent_terms
from ..lower.runtime import kl_per_row

if TYPE_CHECKING:
    from torch import Generator, Tensor

    from ..lower import CompiledModel

torch = lazy_import("torch")

Batch = dict[str, "Tensor"]
Terms = dict[str, "Tensor"]
ObjectiveFn = Callable[..., tuple["Tensor", Terms]]


def inputs_of(model: ir.Model, batch: Batch) -> Batch:
    """The columns of `batch` that feed input nodes (what every pass is given)."""
    return {n.name: batch[n.name] for n in model.of_kind("input")}


def _elbo_parts(model: CompiledModel, batch: Batch, generator: Generator | None,
                guide: CompiledModel | None = None) -> dict[str, Tensor]:
    """-log p of every observed node and the ELBO's term of every latent, per batch row
    (`_sampled_parts`), with the latents the spec sums out summed over every joint value
    (`_summed_out`)."""
    if not model.ir.train or not model.ir.train.enumerate:
        return _sampled_parts(model, batch, generator, guide)
    return _summed_out(model, batch, generator, guide)


def _sampled_parts(model: CompiledModel, batch: Batch, generator: Generator | None,
                   guide: CompiledModel | None = None, noise: Batch | None = None) -> dict[str, Tensor]:
    """-log p of every observed node and the ELBO's term of every latent (its closed-form
    KL where `losses.elbo` allows it, else log q - log p on the sample), per batch row. The latents
    come from `guide`'s inference pass (default: the model's own guide) on its `noise`
    (default: drawn from `generator`); any q gives a lower bound, so a distilled student
    can borrow its teacher's. A latent summed out takes its value from `batch`.

    A draw before the first step (`z[0]`) is proposed from the guide model's initial
    distribution: under the model's own guide its KL is zero and left out; under a
    borrowed guide it is KL(teacher's initial || student's)."""
    if guide is None and not model.interpret:
        return model.elbo_parts(batch, generator, noise)  # the same, as generated code
    terms = latent_terms(model.ir)
    if not model.ir.fully_guided():  # every latent summed out of the model: the batch gives them all
        p = model.run({}, given=batch)
        return {**{f"nll[{n.name}]": -model.log_prob(n.name, p) for n in model.ir.of_kind("observed")},
                **{f"kl[{name}]": -model.log_prob(name, p) for name in terms}}
    q = (guide or model).infer(batch, noise, generator=generator)
    drawn = tuple(model.initial_names.values())
    outside = {name: batch[name] for name, term in terms.items() if term.summed == "model"}
    if guide is None:  # the inference pass computed the deterministic states with these very nets
        given = {**q.values, **outside}
    else:  # another model's states (a teacher's h) do not fit: recompute them
        random = (*drawn, *(n.name for n in model.ir.of_kind("input", "latent", "observed") if n.name not in outside))
        given = {**{name: q.values[name] for name in random}, **outside}
    p = model.run({}, given=given)
    parts = {f"nll[{n.name}]": -model.log_prob(n.name, p) for n in model.ir.of_kind("observed")}
    if guide is not None:
        parts.update({f"kl[{name}]": kl_per_row(model, name, q, p) for name in drawn})
    for name, term in terms.items():
        if term.summed == "model":
            parts[f"kl[{name}]"] = -model.log_prob(name, p)
        elif term.closed:
            parts[f"kl[{name}]"] = kl_per_row(model, name, q, p)
        else:
            parts[f"kl[{name}]"] = model.log_prob(name, q) - model.log_prob(name, p)
        if term.summed == "guide":
            parts[f"logq[{name}]"] = model.log_prob(name, q)
    return parts


def _summed_out(model: CompiledModel, batch: Batch, generator: Generator | None,
                guide: CompiledModel | None) -> dict[str, Tensor]:
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
    count = len(next(iter(grid.values())))
    count_g = math.prod(model.families[n].support_size(model.ir.node(n).size) for n in guided)
    expanded = {k: _tiled(v, count) for k, v in batch.items()}
    expanded.update({n: values.repeat_interleave(rows, 0) for n, values in grid.items()})
    guided_by = guide or model
    noise = {k: _tiled(v, count) for k, v in guided_by.draw(rows, generator, guide=True).items()} \
        if guided_by.inference is not None else {}
    parts = _sampled_parts(model, expanded, generator, guide, noise)
    log_q = [parts.pop(f"logq[{n}]").reshape(count_g, -1, rows)[:, 0] for n in guided]
    weight_g = torch.stack(log_q).sum(0).exp() if guided else model._anchor.new_ones(1, rows)  # q(g | x)
    shaped = {k: v.reshape(count_g, -1, rows) for k, v in parts.items()}
    bound = -sum(shaped.values())  # L(g, m) per row: [guided values, outside values, rows]
    responsibility = bound.softmax(1)  # p(m | g, x, z)
    out = {k: (weight_g.unsqueeze(1) * responsibility * v).sum((0, 1)) for k, v in shaped.items()}
    if outside:
        entropy = bound.logsumexp(1) - (responsibility * bound).sum(1)  # [guided values, rows]
        share = (weight_g * entropy).sum(0) / len(outside)
        for name in outside:
            out[f"kl[{name}]"] = out[f"kl[{name}]"] - share
    return out


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


def elbo(model: CompiledModel, batch: Batch, generator: Generator | None = None,
         beta: float = 1.0, free_bits: float = 0.0) -> tuple[Tensor, Terms]:
    """-ELBO, its KL terms weighted by `beta`; with `free_bits`, a layer's KL counts at
    least `free_bits` nats per dimension in the loss (Kingma et al., 2016, one group per
    latent node), so no layer gains by collapsing onto its prior. The logged terms are
    the true ones."""
    parts = {k: v.mean() for k, v in _elbo_parts(model, batch, generator).items()}
    floors = {f"kl[{n.name}]": free_bits * n.size * (model.ir.time.steps if n.timed else 1)
              for n in model.ir.of_kind("latent")} if free_bits else {}
    loss = sum(beta * v.clamp(min=floors.get(k, 0.0)) if k.startswith("kl") else v for k, v in parts.items())
    return loss, {**_detached(parts), "-elbo": sum(parts.values()).detach()}


def negative_elbo(model: CompiledModel, batch: Batch, generator: Generator | None = None,
                  guide: CompiledModel | None = None) -> float:
    """-ELBO per example (beta = 1), without gradient: the reported objective."""
    with torch.no_grad():
        return float(sum(v.mean() for v in _elbo_parts(model, batch, generator, guide).values()))


def _wake_sleep_parts(model: CompiledModel, batch: Batch, generator: Generator | None) -> Terms:
    """Each wake term (-log p of every random node, the latents from the guide, no
    gradient through them) and sleep term (-log q of each latent on a dream (x, z) ~ p),
    batch means: the generated `wake_sleep_parts` unless the model interprets."""
    if not model.interpret:
        return model.wake_sleep_parts(batch, generator)
    with torch.no_grad():
        q = model.infer(batch, generator=generator)
    p = model.run({}, given=q.values)
    wake = {f"wake[{n.name}]": -model.log_prob(n.name, p).mean() for n in model.ir.of_kind("latent", "observed")}
    with torch.no_grad():
        dream = model.sample(next(iter(batch.values())).shape[0], inputs_of(model.ir, batch), generator)
    dreamt = model.infer(dream.values)
    sleep = {f"sleep[{n.name}]": -model.log_prob(n.name, dreamt).mean() for n in model.ir.of_kind("latent")}
    return {**wake, **sleep}


def wake_sleep(model: CompiledModel, batch: Batch, generator: Generator | None = None,
               beta: float = 1.0) -> tuple[Tensor, Terms]:
    parts = _wake_sleep_parts(model, batch, generator)
    loss = sum(v for k, v in parts.items() if k.startswith("wake")) + \
        sum(v for k, v in parts.items() if k.startswith("sleep"))
    return loss, _detached(parts)


def _mle_parts(model: CompiledModel, batch: Batch, generator: Generator | None) -> Terms:
    """-log p of each observed node given the inputs, batch means: the generated
    `mle_parts` unless the model interprets."""
    if not model.interpret:
        return model.mle_parts(batch, generator)
    observed = {n.name: batch[n.name] for n in model.ir.of_kind("observed")}
    p = model.run({}, inputs=inputs_of(model.ir, batch), given=observed)
    return {f"nll[{n}]": -model.log_prob(n, p).mean() for n in observed}


def mle(model: CompiledModel, batch: Batch, generator: Generator | None = None,
        beta: float = 1.0) -> tuple[Tensor, Terms]:
    parts = _mle_parts(model, batch, generator)
    loss = sum(parts.values())
    return loss, {**_detached(parts), "nll": loss.detach()}


def negative_log_likelihood(model: CompiledModel, batch: Batch, generator: Generator | None = None) -> float:
    with torch.no_grad():
        return float(mle(model, batch, generator)[0])


@dataclass(frozen=True)
class Objective:
    """A way to train a teacher: its function, what it needs of the model, and the
    options of `train NAME(...)` beyond the optimiser's."""

    name: str
    run: ObjectiveFn
    doc: str
    latents: bool
    """Needs latent nodes (each with a guide); False: needs none."""
    discrete_latents: bool = True
    """Copes with latents whose values are not differentiable (no reparametrized gradient)."""
    options: tuple[str, ...] = ()
    learns_initial: bool = True
    """Trains the learned parameters of an initial distribution (`init z ~ ...`), which
    the guide samples from: its gradient reaches them through the later steps."""
    parts: str | None = None
    """The generated function that computes its terms (`lower.generate_losses.SOURCES`),
    which `dgmc compile --emit code` prints beside the ELBO's (None: none is generated)."""


OBJECTIVES: Registry[Objective] = Registry("objective")
for _objective in (
    Objective("elbo", elbo, "evidence lower bound, latents reparametrized (continuous latents)", latents=True,
              discrete_latents=False, options=("warmup", "free_bits", "enumerate"), parts="elbo_parts"),
    Objective("wake_sleep", wake_sleep, "wake-sleep: generative and guide networks in alternation "
              "(discrete latents)", latents=True, learns_initial=False, parts="wake_sleep_parts"),
    Objective("mle", mle, "maximum likelihood of the observed nodes given the inputs (no latents)", latents=False,
              parts="mle_parts"),
):
    OBJECTIVES.register(_objective.name, _objective, origin="dgmc")


def evaluate(model: CompiledModel, batch: Batch, generator: Generator | None = None,
             guide: CompiledModel | None = None) -> float:
    """The reported objective: -ELBO when the model has latents (through `guide`'s
    inference, default its own), else -log p."""
    if model.ir.of_kind("latent"):
        return negative_elbo(model, batch, generator, guide)
    return negative_log_likelihood(model, batch, generator)


def _detached(parts: dict[str, Tensor]) -> Terms:
    """The logged terms, left on the device (training reads them every few steps)."""
    return {k: v.detach() for k, v in parts.items()}
