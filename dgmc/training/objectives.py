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
them), `mle` for the others. Latents the spec sums out (`enumerate`) are summed in
`summed`, over the parts computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import ir
from ..core.base import lazy_import
from ..core.registry import Registry
from ..losses.elbo import latent_terms
from ..lower.runtime import kl_per_row
from .summed import chain_summed_out, summed_out

if TYPE_CHECKING:
    from torch import Generator, Tensor

    from ..lower import CompiledModel, Trace

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
    (`summed`). Values missing from the batch (NaN rows, `present`) drop an observed
    node's term there and leave a latent bound to data to be inferred there; its rows
    with a value add `class[NAME]`, the guide's -log q of it (`alpha` weighs it)."""
    batch, present = present_rows(model.ir, batch)
    summed = model.ir.train.enumerate if model.ir.train else ()
    reparametrized = [n for n in model.ir.bound_latents() if n in present and n not in summed]
    if reparametrized:
        parts = _observed_where_present(model, batch, {n: present[n] for n in reparametrized}, generator, guide)
    elif not summed:
        parts = _sampled_parts(model, batch, generator, guide)
    elif model.ir.summed_chain():
        parts = chain_summed_out(model, batch, generator, guide, _parts_and_trace)
    else:
        parts = summed_out(model, batch, generator, guide, _sampled_parts, present)
    for name, there in present.items():
        for key in (f"nll[{name}]", f"aux[{name}]"):
            if key in parts:
                parts[key] = torch.where(there, parts[key], 0)
    return parts


def _observed_where_present(model: CompiledModel, batch: Batch, present: dict[str, Tensor],
                            generator: Generator | None, guide: CompiledModel | None = None) -> dict[str, Tensor]:
    """The ELBO's parts with continuous latents bound to data: each such latent is drawn
    from its guide (reparametrized) on the rows that miss it and takes the data's value on
    the others, where its term is -log p(value | parents) instead of the KL, and
    `class[NAME]` is -log q(value | ...). The guide runs once to draw the latents, then
    the sampled ELBO runs on the mixed values (on the same noise: the latents' own guides
    do not read them, so a drawn row is the sample itself)."""
    by = guide or model
    rows = next(iter(batch.values())).shape[0]
    noise = by.draw(rows, generator, guide=True)
    drawn = by.infer({k: v for k, v in batch.items() if k not in present}, noise)
    mixed = {n: torch.where(_rows(there, batch[n]), batch[n], drawn.values[n]) for n, there in present.items()}
    parts, p = _parts_and_trace(model, {**batch, **mixed}, generator, guide, noise)
    for name, there in present.items():
        parts[f"kl[{name}]"] = torch.where(there, -model.log_prob(name, p), parts[f"kl[{name}]"])
        parts[f"class[{name}]"] = torch.where(there, -by.log_prob(name, drawn, batch[name]), 0)
    return parts


def _rows(there: Tensor, like: Tensor) -> Tensor:
    """A per-row mask shaped to broadcast over `like`'s other dimensions."""
    return there.view(-1, *[1] * (like.dim() - 1))


def present_rows(model: ir.Model, batch: Batch) -> tuple[Batch, dict[str, Tensor]]:
    """The batch with its missing values (NaN rows of a node that may miss them) set to
    0, and per such node the rows that hold a value (for a latent bound to data, always:
    the rows that hold it observe it)."""
    present = {}
    for name, value in batch.items():
        if model.has(name) and model.may_miss(name):
            missing = torch.isnan(value).flatten(1).any(1)
            if missing.any() or model.node(name).kind == "latent":
                present[name] = ~missing
                batch = {**batch, name: torch.where(_rows(missing, value), 0, value)}
    return batch, present


def _bound_only(parts: dict[str, Tensor]) -> dict[str, Tensor]:
    """The ELBO's own terms: without the classification terms that `alpha` adds and the
    auxiliary predictors' that `aux` weighs."""
    return {k: v for k, v in parts.items() if not k.startswith(("class[", "aux["))}


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
    return _parts_and_trace(model, batch, generator, guide, noise)[0]


def _parts_and_trace(model: CompiledModel, batch: Batch, generator: Generator | None,
                     guide: CompiledModel | None = None, noise: Batch | None = None) -> tuple[dict[str, Tensor], Trace]:
    """`_sampled_parts` as the reference computes them, and the generative pass's trace
    they were read from (what summing a chain out reads per step)."""
    terms = latent_terms(model.ir)
    if not model.ir.fully_guided():  # every latent summed out of the model: the batch gives them all
        p = model.run({}, given=batch)
        return {**{f"nll[{n.name}]": -model.log_prob(n.name, p) for n in model.ir.of_kind("observed")},
                **{f"kl[{name}]": -model.log_prob(name, p) for name in terms}}, p
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
    parts.update({f"aux[{n.name}]": -model.log_prob(n.name, q) for n in model.ir.of_kind("observed") if n.guide})
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
    return parts, p


def elbo(model: CompiledModel, batch: Batch, generator: Generator | None = None,
         beta: float = 1.0, free_bits: float = 0.0) -> tuple[Tensor, Terms]:
    """-ELBO, its KL terms weighted by `beta`; with `free_bits`, a layer's KL counts at
    least `free_bits` nats per dimension in the loss (Kingma et al., 2016, one group per
    latent node), so no layer gains by collapsing onto its prior. The logged terms are
    the true ones."""
    parts = {k: v.mean() for k, v in _elbo_parts(model, batch, generator).items()}
    floors = {f"kl[{n.name}]": free_bits * n.size * (model.ir.time.steps if n.timed else 1)
              for n in model.ir.of_kind("latent")} if free_bits else {}
    alpha = model.ir.train.alpha if model.ir.train else 0.0
    aux = model.ir.train.aux if model.ir.train else 1.0
    loss = sum(beta * v.clamp(min=floors.get(k, 0.0)) if k.startswith("kl") else alpha * v if k.startswith("class[")
               else aux * v if k.startswith("aux[") else v for k, v in parts.items())
    return loss, {**_detached(parts), "-elbo": sum(_bound_only(parts).values()).detach()}


def negative_elbo(model: CompiledModel, batch: Batch, generator: Generator | None = None,
                  guide: CompiledModel | None = None) -> float:
    """-ELBO per example (beta = 1), without gradient: the reported objective. Latents
    bound to data are inferred on every row (their values left out), so that it bounds
    -log p of the observed nodes alone, comparable with and without labels."""
    hidden = {k: v for k, v in batch.items() if k not in model.ir.bound_latents()}
    with torch.no_grad():
        return float(sum(v.mean() for v in _bound_only(_elbo_parts(model, hidden, generator, guide)).values()))


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
    `mle_parts` unless the model interprets or values are missing (a node's term is
    dropped on the rows that miss it: those count as 0 in its mean)."""
    batch, present = present_rows(model.ir, batch)
    if not model.interpret and not present:
        return model.mle_parts(batch, generator)
    observed = {n.name: batch[n.name] for n in model.ir.of_kind("observed")}
    p = model.run({}, inputs=inputs_of(model.ir, batch), given=observed)
    return {f"nll[{n}]": -torch.where(present[n], model.log_prob(n, p), 0).mean() if n in present
            else -model.log_prob(n, p).mean() for n in observed}


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
    infers_bound: bool = False
    """Infers a latent bound to data where the data miss it (and scores it where they give it)."""
    parts: str | None = None
    """The generated function that computes its terms (`lower.generate_losses.SOURCES`),
    which `dgmc compile --emit code` prints beside the ELBO's (None: none is generated)."""


OBJECTIVES: Registry[Objective] = Registry("objective")


def register_objective(objective: Objective, *, replace: bool = False) -> Objective:
    """Make `objective` known to specs under its name (`train NAME(...)`): its function
    takes (model, batch, generator, beta) and returns (loss, logged terms), as `elbo` does."""
    from ..core.registry import RegistryError

    if not isinstance(objective, Objective):
        raise RegistryError(f"register_objective takes a dgmc.Objective, not {type(objective).__name__}.")
    return OBJECTIVES.register(objective.name, objective, replace=replace)
for _objective in (
    Objective("elbo", elbo, "evidence lower bound, latents reparametrized (continuous latents)", latents=True,
              discrete_latents=False, options=("warmup", "free_bits", "beta", "enumerate", "alpha", "aux"),
              infers_bound=True, parts="elbo_parts"),
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
