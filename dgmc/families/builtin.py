"""The families dgmc ships, each in semi-auxiliary form: z = g(eps, params) with eps drawn
from a fixed, parameter-free distribution, so that a teacher and a student can be run on
the same noise.

Continuous and differentiable (train by `elbo` or `wake_sleep`): Normal, Laplace,
LogNormal, Exponential, Gumbel, Logistic, ContinuousBernoulli (values in [0, 1], for
images), and the relaxed discrete families RelaxedBernoulli and RelaxedOneHotCategorical
(Concrete / Gumbel-softmax, with a `temperature` setting). Discrete (values not
differentiable in the parameters: `wake_sleep`): Bernoulli, Categorical, Poisson.

Beta and Gamma are not registered: their exact samplers (rejection, or the inverse of
the regularized incomplete beta and gamma functions, which torch lacks) either draw a
number of uniforms that depends on the parameters, or have no parameter-free inverse
in torch, so teacher and student could not share one noise draw. Poisson has an exact
one: the inverse CDF of its counts on one uniform.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.base import lazy_import
from .base import TINY, Family, Params, logit, open_uniform, standard_gumbel, standard_normal, torch_kl, uniform

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_import("torch")

LOC_SCALE = {"loc": "real", "scale": "positive"}


@contextmanager
def unvalidated() -> Iterator[None]:
    """torch's distributions built inside validate nothing: a few (OneHotCategorical, the
    relaxed ones) build an inner distribution without passing `validate_args` on, which
    would raise on a NaN parameter where every other family lets the NaN through to the
    finiteness guard of training."""
    before = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(before)


# -- closed forms written out (each tested against torch's) ------------------------------


def kl_normal(family: Family, t: Params, s: Params) -> Tensor:
    ratio = (t["scale"] / s["scale"]) ** 2
    return 0.5 * (ratio + ((t["loc"] - s["loc"]) / s["scale"]) ** 2 - 1 - torch.log(ratio))


def w2_normal(family: Family, t: Params, s: Params) -> Tensor:
    """Squared 2-Wasserstein distance of two diagonal Gaussians, per dimension."""
    return (t["loc"] - s["loc"]) ** 2 + (t["scale"] - s["scale"]) ** 2


def kl_laplace(family: Family, t: Params, s: Params) -> Tensor:
    gap = (t["loc"] - s["loc"]).abs()
    return (torch.log(s["scale"] / t["scale"]) + gap / s["scale"]
            + t["scale"] / s["scale"] * torch.exp(-gap / t["scale"]) - 1)


def kl_bernoulli(family: Family, t: Params, s: Params) -> Tensor:
    p = torch.sigmoid(t["logits"])
    return (p * (torch.nn.functional.logsigmoid(t["logits"]) - torch.nn.functional.logsigmoid(s["logits"]))
            + (1 - p) * (torch.nn.functional.logsigmoid(-t["logits"]) - torch.nn.functional.logsigmoid(-s["logits"])))


def bce_bernoulli(family: Family, t: Params, s: Params) -> Tensor:
    """Cross-entropy of the student's logits against the teacher's probabilities (the
    authors' HM latent loss): KL plus the teacher's entropy, the same gradient."""
    probs = torch.sigmoid(t["logits"])
    return torch.nn.functional.binary_cross_entropy_with_logits(s["logits"], probs, reduction="none")


def kl_categorical(family: Family, t: Params, s: Params) -> Tensor:
    log_t, log_s = torch.nn.functional.log_softmax(t["logits"], -1), torch.nn.functional.log_softmax(s["logits"], -1)
    return (log_t.exp() * (log_t - log_s)).sum(-1)


# -- continuous ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Normal(Family):
    def noise(self, shape, generator, device):
        return standard_normal(shape, generator, device)

    def reparam(self, eps, params):
        return params["loc"] + params["scale"] * eps

    def base(self, params):
        return torch.distributions.Normal(params["loc"], params["scale"], validate_args=False)


@dataclass(frozen=True, kw_only=True)
class Laplace(Family):
    def noise(self, shape, generator, device):
        return uniform(shape, generator, device)

    def reparam(self, eps, params):
        """Inverse CDF: loc - scale * sign(u - 1/2) * log(1 - 2|u - 1/2|)."""
        centred = (eps - 0.5).clamp(-0.5 + TINY, 0.5 - TINY)
        return params["loc"] - params["scale"] * centred.sign() * torch.log1p(-2 * centred.abs())

    def base(self, params):
        return torch.distributions.Laplace(params["loc"], params["scale"], validate_args=False)


@dataclass(frozen=True, kw_only=True)
class LogNormal(Family):
    def noise(self, shape, generator, device):
        return standard_normal(shape, generator, device)

    def reparam(self, eps, params):
        return torch.exp(params["loc"] + params["scale"] * eps)

    def base(self, params):
        return torch.distributions.LogNormal(params["loc"], params["scale"], validate_args=False)


@dataclass(frozen=True, kw_only=True)
class Exponential(Family):
    def noise(self, shape, generator, device):
        return open_uniform(shape, generator, device)

    def reparam(self, eps, params):
        return -torch.log1p(-eps) / params["rate"]

    def base(self, params):
        return torch.distributions.Exponential(params["rate"], validate_args=False)


@dataclass(frozen=True, kw_only=True)
class Gumbel(Family):
    def noise(self, shape, generator, device):
        return open_uniform(shape, generator, device)

    def reparam(self, eps, params):
        return params["loc"] - params["scale"] * torch.log(-torch.log(eps))

    def base(self, params):
        return torch.distributions.Gumbel(params["loc"], params["scale"], validate_args=False)


@dataclass(frozen=True, kw_only=True)
class Logistic(Family):
    def noise(self, shape, generator, device):
        return open_uniform(shape, generator, device)

    def reparam(self, eps, params):
        return params["loc"] + params["scale"] * (torch.log(eps) - torch.log1p(-eps))

    def base(self, params):
        """U(0, 1) through the inverse sigmoid, then loc + scale * x (torch has no
        Logistic class)."""
        d, loc = torch.distributions, params["loc"]
        unit = d.Uniform(torch.zeros_like(loc), torch.ones_like(loc), validate_args=False)
        steps = [d.transforms.SigmoidTransform().inv, d.transforms.AffineTransform(loc, params["scale"])]
        return d.TransformedDistribution(unit, steps, validate_args=False)

    def mean(self, params):
        return params["loc"]


@dataclass(frozen=True, kw_only=True)
class ContinuousBernoulli(Family):
    def fix(self, name, value):
        return ("logits", logit(value)) if name == "probs" else (name, value)

    def noise(self, shape, generator, device):
        return open_uniform(shape, generator, device)

    def reparam(self, eps, params):
        return self.base(params).icdf(eps)

    def base(self, params):
        return torch.distributions.ContinuousBernoulli(logits=params["logits"], validate_args=False)


@dataclass(frozen=True, kw_only=True)
class RelaxedBernoulli(Family):
    """Concrete relaxation of a bit: sigmoid((logits + logistic noise) / temperature). Its
    mean has no closed form (sigmoid(logits) is the limit as the temperature goes to 0,
    not the mean), so `mean` is None, as torch has none."""

    def fix(self, name, value):
        return ("logits", logit(value)) if name == "probs" else (name, value)

    def noise(self, shape, generator, device):
        return open_uniform(shape, generator, device)

    def reparam(self, eps, params):
        logistic = torch.log(eps) - torch.log1p(-eps)
        return torch.sigmoid((params["logits"] + logistic) / self.setting("temperature")).clamp(TINY, 1 - TINY)

    def base(self, params):
        temperature = torch.tensor(self.setting("temperature"), dtype=params["logits"].dtype,
                                   device=params["logits"].device)
        with unvalidated():
            return torch.distributions.RelaxedBernoulli(temperature, logits=params["logits"], validate_args=False)


@dataclass(frozen=True, kw_only=True)
class RelaxedOneHotCategorical(Family):
    """Gumbel-softmax: softmax((logits + Gumbel noise) / temperature), a point of the
    simplex. Its mean has no closed form either: `mean` is None."""

    def noise(self, shape, generator, device):
        return standard_gumbel(shape, generator, device)

    def reparam(self, eps, params):
        return torch.softmax((params["logits"] + eps) / self.setting("temperature"), dim=-1).clamp_min(TINY)

    def base(self, params):
        temperature = torch.tensor(self.setting("temperature"), dtype=params["logits"].dtype,
                                   device=params["logits"].device)
        with unvalidated():
            return torch.distributions.RelaxedOneHotCategorical(temperature, logits=params["logits"],
                                                                validate_args=False)


# -- discrete ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Bernoulli(Family):
    def fix(self, name, value):
        return ("logits", logit(value)) if name == "probs" else (name, value)

    def noise(self, shape, generator, device):
        return uniform(shape, generator, device)

    def reparam(self, eps, params):
        return (eps < torch.sigmoid(params["logits"])).to(params["logits"].dtype)

    def base(self, params):
        return torch.distributions.Bernoulli(logits=params["logits"], validate_args=False)

    def support_size(self, size):
        return 2 ** size

    def support(self, size):
        """Every binary vector of `size` bits (2**size of them)."""
        codes = torch.arange(2 ** size)
        return ((codes[:, None] >> torch.arange(size - 1, -1, -1)) & 1).float()


@dataclass(frozen=True, kw_only=True)
class Categorical(Family):
    def fix(self, name, value):
        return ("logits", math.log(value) if value > 0 else -math.inf) if name == "probs" else (name, value)

    def noise(self, shape, generator, device):
        return standard_gumbel(shape, generator, device)

    def reparam(self, eps, params):
        logits = params["logits"]
        return torch.nn.functional.one_hot((logits + eps).argmax(-1), logits.shape[-1]).to(logits.dtype)

    def base(self, params):
        with unvalidated():
            return torch.distributions.OneHotCategorical(logits=params["logits"], validate_args=False)

    def support_size(self, size):
        return size

    def support(self, size):
        """The `size` one-hot vectors."""
        return torch.eye(size)


POISSON_TAIL = 12.0
"""The inverse CDF looks this many standard deviations (plus as many counts) above the
largest rate; the probability left beyond is below 1e-30."""


@dataclass(frozen=True, kw_only=True)
class Poisson(Family):
    def noise(self, shape, generator, device):
        return uniform(shape, generator, device)

    def reparam(self, eps, params):
        """The inverse CDF: the number of counts k whose CDF P(K <= k) lies below u."""
        rate = params["rate"]
        top = int((rate.max() + POISSON_TAIL * rate.max().sqrt() + POISSON_TAIL).ceil())  # one host sync
        counts = torch.arange(top + 1, dtype=rate.dtype, device=rate.device)
        cdf = torch.special.gammaincc(counts + 1, rate.unsqueeze(-1))
        return (eps.unsqueeze(-1) > cdf).sum(-1).to(rate.dtype)

    def base(self, params):
        return torch.distributions.Poisson(params["rate"], validate_args=False)


BUILTIN: tuple[Family, ...] = (
    Normal(name="Normal", domain="real", params=("loc", "scale"), constraints=LOC_SCALE, root_only=("loc",),
           divergences=("kl", "reverse_kl", "w2", "mse"), closed={"kl": kl_normal, "w2": w2_normal},
           formula="loc + scale * eps,  eps ~ N(0, I)", doc="diagonal Gaussian"),
    Laplace(name="Laplace", domain="real", params=("loc", "scale"), constraints=LOC_SCALE, root_only=("loc",),
            closed={"kl": kl_laplace},
            formula="loc - scale * sign(u - 1/2) * log(1 - 2|u - 1/2|),  u ~ U(0, 1)", doc="diagonal Laplace"),
    LogNormal(name="LogNormal", domain="positive", params=("loc", "scale"), constraints=LOC_SCALE,
              root_only=("loc",), closed={"kl": torch_kl},
              formula="exp(loc + scale * eps),  eps ~ N(0, I)", doc="exp of a Gaussian: positive values"),
    Exponential(name="Exponential", domain="positive", params=("rate",), constraints={"rate": "positive"},
                closed={"kl": torch_kl}, formula="-log(1 - u) / rate,  u ~ U(0, 1)", doc="positive waiting times"),
    Gumbel(name="Gumbel", domain="real", params=("loc", "scale"), constraints=LOC_SCALE, root_only=("loc",),
           closed={"kl": torch_kl}, formula="loc - scale * log(-log u),  u ~ U(0, 1)",
           doc="extreme values (maxima)"),
    Logistic(name="Logistic", domain="real", params=("loc", "scale"), constraints=LOC_SCALE, root_only=("loc",),
             formula="loc + scale * log(u / (1 - u)),  u ~ U(0, 1)",
             doc="heavier tails than the Gaussian; its KL is estimated"),
    ContinuousBernoulli(name="ContinuousBernoulli", domain="unit", params=("logits",),
                        constraints={"logits": "real"}, fixable={"probs": "unit"}, root_only=("probs",),
                        closed={"kl": torch_kl}, formula="F^-1(u; logits),  u ~ U(0, 1)",
                        doc="values in [0, 1], such as grey levels of images"),
    RelaxedBernoulli(name="RelaxedBernoulli", domain="unit", params=("logits",), constraints={"logits": "real"},
                     fixable={"probs": "unit"}, root_only=("probs",), settings={"temperature": 0.5},
                     formula="sigmoid((logits + log(u / (1 - u))) / temperature),  u ~ U(0, 1)",
                     doc="Concrete relaxation of independent bits; its KL is estimated"),
    RelaxedOneHotCategorical(name="RelaxedOneHotCategorical", domain="simplex", params=("logits",),
                             constraints={"logits": "real"}, fixable={}, settings={"temperature": 0.5},
                             event=True, min_size=2,
                             formula="softmax((logits + g) / temperature),  g ~ Gumbel(0, 1)",
                             doc="Gumbel-softmax relaxation of one of k classes; its KL is estimated"),
    Bernoulli(name="Bernoulli", domain="binary", params=("logits",), constraints={"logits": "real"},
              fixable={"probs": "unit"}, root_only=("probs",), discrete=True, default_divergence="bce",
              divergences=("kl", "reverse_kl", "bce", "mse"), closed={"kl": kl_bernoulli, "bce": bce_bernoulli},
              formula="1[u < sigmoid(logits)],  u ~ U(0, 1)", doc="independent bits"),
    Categorical(name="Categorical", domain="onehot", params=("logits",), constraints={"logits": "real"},
                fixable={"logits": "real", "probs": "unit"}, root_only=("logits", "probs"), discrete=True, event=True,
                min_size=2,
                closed={"kl": kl_categorical},
                formula="onehot(argmax(logits + g)),  g ~ Gumbel(0, 1)", doc="one of k classes, one-hot"),
    Poisson(name="Poisson", domain="count", params=("rate",), constraints={"rate": "positive"}, discrete=True,
            closed={"kl": torch_kl}, formula="#{k : P(K <= k) < u},  u ~ U(0, 1)", doc="counts"),
)
