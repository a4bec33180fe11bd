"""The torch side of each distribution family: parameters from a network's raw output,
the `torch.distributions` object, the parameter-free noise and the reparametrization
z = g(eps, params) of the semi-auxiliary form (../shared/METHOD.md).

Registered by the family names of `dgmc.families`; a family added there needs an entry
here, and `tests/test_lower.py` checks that every name has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Bernoulli, Distribution, Independent, Laplace, Normal, OneHotCategorical

MIN_SCALE = 1e-4
"""Added to every softplus scale, so that a scale never collapses to zero."""
_TINY = 1e-7

Params = dict[str, Tensor]


@dataclass(frozen=True)
class TorchFamily:
    """Base: `learnable` parameters in the order a network's output is split into.
    A parameter fixed by the spec (`Normal[1](scale = 0.5)`) is not computed."""

    name: str
    learnable: tuple[str, ...]
    differentiable: bool
    """Whether z = g(eps, params) passes gradient to the params (False for discrete)."""
    formula: str
    """g, as `dgmc compile --emit code` prints it."""

    def raw_size(self, size: int, fixed: dict[str, float]) -> int:
        return size * sum(1 for p in self.learnable if p not in fixed)

    def params(self, raw: Tensor | None, size: int, fixed: dict[str, float], batch: int,
               like: Tensor | None = None) -> Params:
        """Constrained parameters, each [batch, size], from the raw network output; fixed
        ones take the device and dtype of `raw`, else of `like` (a node with no network)."""
        out: Params = {}
        like = raw if raw is not None else like
        chunks = iter(raw.split(size, dim=-1)) if raw is not None else iter(())
        for name in self.learnable:
            if name in fixed:
                out[name] = self.from_fixed(name, fixed[name], size, batch, like)
            else:
                out[name] = self.constrain(name, next(chunks))
        return out

    def from_fixed(self, name: str, value: float, size: int, batch: int, like: Tensor | None) -> Tensor:
        kwargs = {"device": like.device, "dtype": like.dtype} if like is not None else {}
        return torch.full((batch, size), float(value), **kwargs)

    def constrain(self, name: str, raw: Tensor) -> Tensor:
        return raw

    def noise(self, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
        raise NotImplementedError

    def reparam(self, eps: Tensor, params: Params) -> Tensor:
        raise NotImplementedError

    def distribution(self, params: Params) -> Distribution:
        """Built every step, so without torch's argument checks: the parameters come
        constrained from `params` (validation cost ~0.2 ms a VAE step)."""
        raise NotImplementedError

    def mean(self, params: Params) -> Tensor:
        return self.distribution(params).mean


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


@dataclass(frozen=True)
class NormalFamily(TorchFamily):
    def constrain(self, name: str, raw: Tensor) -> Tensor:
        return F.softplus(raw) + MIN_SCALE if name == "scale" else raw

    def noise(self, shape, generator, device):
        gen_device = generator.device if generator is not None else device
        return torch.randn(shape, generator=generator, device=gen_device).to(device)

    def reparam(self, eps, params):
        return params["loc"] + params["scale"] * eps

    def distribution(self, params):
        return Independent(Normal(params["loc"], params["scale"], validate_args=False), 1, validate_args=False)


@dataclass(frozen=True)
class LaplaceFamily(TorchFamily):
    def constrain(self, name: str, raw: Tensor) -> Tensor:
        return F.softplus(raw) + MIN_SCALE if name == "scale" else raw

    def noise(self, shape, generator, device):
        return _uniform(shape, generator, device)

    def reparam(self, eps, params):
        """Inverse CDF: loc - scale * sign(u - 1/2) * log(1 - 2|u - 1/2|)."""
        centred = (eps - 0.5).clamp(-0.5 + _TINY, 0.5 - _TINY)
        return params["loc"] - params["scale"] * centred.sign() * torch.log1p(-2 * centred.abs())

    def distribution(self, params):
        return Independent(Laplace(params["loc"], params["scale"], validate_args=False), 1, validate_args=False)


@dataclass(frozen=True)
class BernoulliFamily(TorchFamily):
    def from_fixed(self, name, value, size, batch, like):
        p = min(max(value, _TINY), 1 - _TINY)
        return super().from_fixed(name, math.log(p / (1 - p)), size, batch, like)

    def noise(self, shape, generator, device):
        return _uniform(shape, generator, device)

    def reparam(self, eps, params):
        return (eps < torch.sigmoid(params["logits"])).to(params["logits"].dtype)

    def distribution(self, params):
        return Independent(Bernoulli(logits=params["logits"], validate_args=False), 1, validate_args=False)


@dataclass(frozen=True)
class CategoricalFamily(TorchFamily):
    def noise(self, shape, generator, device):
        u = _uniform(shape, generator, device).clamp(_TINY, 1 - _TINY)
        return -torch.log(-torch.log(u))

    def reparam(self, eps, params):
        logits = params["logits"]
        return F.one_hot((logits + eps).argmax(-1), logits.shape[-1]).to(logits.dtype)

    def distribution(self, params):
        return OneHotCategorical(logits=params["logits"], validate_args=False)


TORCH_FAMILIES: dict[str, TorchFamily] = {
    f.name: f
    for f in (
        NormalFamily("Normal", ("loc", "scale"), True, "loc + scale * eps,  eps ~ N(0, I)"),
        LaplaceFamily("Laplace", ("loc", "scale"), True,
                      "loc - scale * sign(u - 1/2) * log(1 - 2|u - 1/2|),  u ~ U(0, 1)"),
        BernoulliFamily("Bernoulli", ("logits",), False, "1[u < sigmoid(logits)],  u ~ U(0, 1)"),
        CategoricalFamily("Categorical", ("logits",), False, "onehot(argmax(logits + g)),  g ~ Gumbel(0, 1)"),
    )
}


def fixed_params(family: str, params: dict[str, float | str]) -> dict[str, float]:
    """The spec's fixed parameters in the torch family's terms (Bernoulli `probs` fixes
    the `logits`)."""
    fixed = {k: float(v) for k, v in params.items() if v != "learned"}
    if family == "Bernoulli" and "probs" in fixed:
        fixed["logits"] = fixed.pop("probs")
    return fixed
