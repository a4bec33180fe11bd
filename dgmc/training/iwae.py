"""The importance-weighted bound (Burda et al., 2016): as an objective (`train iwae(k = K)`)
and as the reported estimate of a model's test log-likelihood.

With K draws z_1..z_K from the guide q(z | x), each weighed by w_k = p(x, z_k) / q(z_k | x),

    IWAE_K(x) = log (1/K) sum_k w_k  <=  log p(x),

a lower bound that tightens as K grows (IWAE_1 is the ELBO on one sample) and reaches
log p(x) as K -> infinity. Trained on, it lets the guide stay broader than the ELBO's
(its gradient weighs each draw by its normalised weight); reported with a large K, it is
the standard estimate of a model's negative log-likelihood, since the ELBO mixes the
model's fit with its guide's.

A log weight needs every latent's term on the draw itself: never a closed-form KL, which
is the expectation of that term, not its value at z_k.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..core.base import lazy_import
from .objectives import OBJECTIVES, Batch, Objective, Terms, present_rows

if TYPE_CHECKING:
    from torch import Generator, Tensor

    from ..lower import CompiledModel

torch = lazy_import("torch")

IWAE_K = 100
"""The draws per row of the reported `test_iwae` (IWAE-100)."""
IWAE_ROWS = 512
"""The test rows it is measured on (the split's first, the same for every model of a
run): a 32x32 image model's decoder runs k times per row, so the whole of a large test
split would cost minutes per model."""
QUICK = (10, 64)
"""(draws, rows) of a `--quick` smoke run's estimate."""
ROWS_PER_PASS = 16384
"""The most rows (test rows times draws) one pass of the metric runs."""


def log_weights(model: CompiledModel, batch: Batch, generator: Generator | None = None,
                guide: CompiledModel | None = None) -> Tensor:
    """log p(x, z) - log q(z | x) per row of `batch`, z one draw of `guide`'s inference
    pass (default: the model's own guide). An observed value missing from a row (NaN)
    drops its term there, as the ELBO does. Under a borrowed guide the draw before the
    first step (`z[0]`) comes from the guide model's initial distribution, so its
    log-ratio counts too (under the model's own it is 0)."""
    batch, present = present_rows(model.ir, batch)
    by = guide or model
    q = by.infer(batch, generator=generator)
    drawn = tuple(model.initial_names.values())
    if guide is None:  # the inference pass computed the deterministic states with these very nets
        given = q.values
    else:  # another model's states do not fit: recompute them
        random = (*drawn, *(n.name for n in model.ir.of_kind("input", "latent", "observed")))
        given = {name: q.values[name] for name in random}
    p = model.run({}, given=given)
    total = 0
    for node in model.ir.of_kind("observed"):
        logp = model.log_prob(node.name, p)
        total = total + (torch.where(present[node.name], logp, 0) if node.name in present else logp)
    for name in (*(n.name for n in model.ir.of_kind("latent")), *(drawn if guide is not None else ())):
        total = total + model.log_prob(name, p) - model.log_prob(name, q)
    return total


def iwae_bound(model: CompiledModel, batch: Batch, k: int, generator: Generator | None = None,
               guide: CompiledModel | None = None) -> Tensor:
    """IWAE_k of each row of `batch` (nats): each row repeated k times (consecutive), one
    log weight per copy, then log of their mean, taken stably (logsumexp)."""
    weights = _weights(model, batch, k, generator, guide)
    return torch.logsumexp(weights, dim=1) - math.log(k)


def _weights(model: CompiledModel, batch: Batch, k: int, generator: Generator | None = None,
             guide: CompiledModel | None = None) -> Tensor:
    """The log weights of k draws per row, [rows, k]: each row repeated k times."""
    rows = next(iter(batch.values())).shape[0]
    copies = {name: value.repeat_interleave(k, 0) for name, value in batch.items()}
    return log_weights(model, copies, generator, guide).view(rows, k)


def iwae(model: CompiledModel, batch: Batch, generator: Generator | None = None,
         beta: float = 1.0) -> tuple[Tensor, Terms]:
    """-IWAE_k (k from `train iwae(k = K)`), batch mean; logged beside it, -ELBO on the
    same draws (the mean log weight), which IWAE_k bounds from above."""
    k = model.ir.train.k if model.ir.train else 1
    weights = _weights(model, batch, k, generator)
    loss = -(torch.logsumexp(weights, dim=1) - math.log(k)).mean()
    return loss, {"-iwae": loss.detach(), "-elbo": -weights.mean().detach()}


def iwae_applies(model: CompiledModel) -> bool:
    """Whether the model has a test IWAE: latents, every one drawn from a guide (none summed
    out of the model, which no guide proposes)."""
    return model.ir.fully_guided() and not model.ir.summed_out()


def iwae_metrics(model: CompiledModel, data: Batch, seed: int, k: int = IWAE_K, rows: int | None = IWAE_ROWS,
                 guide: CompiledModel | None = None, quick: bool = False) -> dict[str, float | int]:
    """`test_iwae`: -IWAE_k per example of the first `rows` rows of `data` (None: all; an
    upper bound on the test NLL, tighter than -ELBO; `QUICK`'s k and rows with `quick`),
    taken a chunk at a time, on noise from `seed`; values of latents
    bound to data (labels) are hidden, so that it bounds -log p of the observed nodes
    alone, as the reported -ELBO does; `iwae_k` and `iwae_rows` say k and the rows.
    Nothing where the model has no such bound."""
    if not iwae_applies(model):
        return {}
    k, rows = QUICK if quick else (k, rows)
    hidden = {name: value[:rows] for name, value in data.items() if name not in model.ir.bound_latents()}
    rows = next(iter(hidden.values())).shape[0]
    chunk = max(1, ROWS_PER_PASS // k)
    generator = torch.Generator(model._anchor.device).manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for start in range(0, rows, chunk):
            part = {name: value[start:start + chunk] for name, value in hidden.items()}
            total += float(iwae_bound(model, part, k, generator, guide).sum())
    return {"test_iwae": -total / rows, "iwae_k": k, "iwae_rows": rows}


OBJECTIVES.register("iwae", Objective(
    "iwae", iwae, "importance-weighted bound on k draws per row (Burda et al. 2016), latents reparametrized",
    latents=True, discrete_latents=False, options=("k",)), origin="dgmc")
