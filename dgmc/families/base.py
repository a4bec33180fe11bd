"""A distribution family: one object holds all dgmc knows of it.

What the checker reads (plain metadata, no torch): the parameters a spec may fix and
their ranges, the settings (a temperature), the domain of the values, whether the values
are discrete, the divergences that can compare two members. What lowering and the losses
call (torch, imported lazily, so `dgmc check` never loads it): the constrained
parameters from a network's raw output, the parameter-free noise, the reparametrization
z = g(eps, params) of the semi-auxiliary form, the torch distribution, and the
divergences that have a closed form (the others are estimated on the shared noise, see
`dgmc.losses.divergences`).

A family is added by registering one instance of a `Family` subclass (`FAMILIES`,
`dgmc.register_family`); `tests/test_families.py` walks the registry and checks every
entry's sampler against its distribution and its closed forms against estimates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..core.base import lazy_import

if TYPE_CHECKING:
    import numpy as np
    from torch import Generator, Tensor, device
    from torch.distributions import Distribution

torch = lazy_import("torch")

Constraint = Literal["real", "positive", "unit"]
Params = dict[str, "Tensor"]
ClosedForm = Callable[["Family", Params, Params], "Tensor"]
"""A divergence in closed form: (family, teacher's params, student's params) -> per dimension."""

MIN_SCALE = 1e-4
"""Added to every softplus-constrained parameter, so that a scale never collapses to zero."""
TINY = 1e-7
"""Keeps uniform noise off 0 and 1, where inverse CDFs are infinite."""


@dataclass(frozen=True)
class Domain:
    """The values a node can take (`doc` completes "values that are ..."). `contains`
    tells, per element of a numpy array, whether it belongs (data files are checked with
    it before any training step)."""

    name: str
    doc: str
    contains: Callable[[np.ndarray], np.ndarray]
    event: bool = False
    """True when the check is per row of the last axis (a one-hot vector), not per value."""


def _finite(v):
    import numpy as np

    return np.isfinite(v)


def _onehot(v):

    return ((v == 0) | (v == 1)).all(-1) & (v.sum(-1) == 1)


def _simplex(v):
    import numpy as np

    return np.isfinite(v).all(-1) & (v >= 0).all(-1) & (np.abs(v.sum(-1) - 1) < 1e-4)


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain("real", "finite", _finite),
    Domain("positive", "finite and > 0", lambda v: _finite(v) & (v > 0)),
    Domain("unit", "in [0, 1]", lambda v: (v >= 0) & (v <= 1)),
    Domain("binary", "0 or 1", lambda v: (v == 0) | (v == 1)),
    Domain("count", "whole numbers >= 0", lambda v: _finite(v) & (v >= 0) & (v == v.round())),
    Domain("onehot", "one-hot (one 1 per row, the rest 0)", _onehot, event=True),
    Domain("simplex", ">= 0 and sum to 1 per row", _simplex, event=True),
)}
"""The value domains of families and of input and deterministic nodes."""

NODE_DOMAINS: dict[str, str] = {"Real": "real", "Binary": "binary", "OneHot": "onehot"}
"""The types of input nodes (any of these) and deterministic nodes (Real only)."""
DETERMINISTIC_TYPES = ("Real",)


@dataclass(frozen=True, kw_only=True)
class Family:
    """Base of every family; subclasses implement `noise`, `reparam` and `base`.

    `params` are the distribution's parameters in the order a network's output is split
    into, each with a `constraints` entry (`real`: as computed; `positive`: softplus +
    MIN_SCALE). `fixable` are the parameters a spec may fix, with the range of a fixed
    value (by default the same names; Bernoulli fixes `probs`, which sets `logits`).
    `settings` are fixed numbers with defaults that shape the family (a temperature);
    a node's own values are bound with `with_settings`.
    """

    name: str
    domain: str
    params: tuple[str, ...]
    constraints: Mapping[str, Constraint]
    fixable: Mapping[str, Constraint] | None = None
    root_only: tuple[str, ...] = ()
    """Fixable parameters that only a node without parents may fix (a network computes them)."""
    settings: Mapping[str, float] = field(default_factory=dict)
    discrete: bool = False
    """Values not differentiable in the parameters: trained by wake-sleep, not elbo."""
    event: bool = False
    """The node's dimensions form one event (a one-hot vector), rather than independent values."""
    min_size: int = 1
    default_divergence: str = "kl"
    divergences: tuple[str, ...] = ("kl", "reverse_kl", "mse")
    closed: Mapping[str, ClosedForm] = field(default_factory=dict)
    """Divergences in closed form, per dimension (per event for `event` families)."""
    formula: str = ""
    """g(eps, params), as `dgmc compile --emit code` prints it."""
    doc: str = ""
    values: Mapping[str, float] = field(default_factory=dict)
    """The settings of one node (`with_settings`); the defaults where empty."""

    # -- metadata ---------------------------------------------------------------------

    @property
    def spec_params(self) -> Mapping[str, Constraint]:
        return self.constraints if self.fixable is None else self.fixable

    def fix(self, name: str, value: float) -> tuple[str, float]:
        """A value a spec fixed, in the family's own parameters (probs -> logits)."""
        return name, value

    def fix_aliases(self) -> tuple[str, ...]:
        """The fixable names that set the same parameter (Categorical's `logits` and
        `probs`): a spec gives at most one of them."""
        own = [self.fix(name, 0.5)[0] for name in self.spec_params]
        return tuple(name for name, param in zip(self.spec_params, own, strict=True) if own.count(param) > 1)

    def with_settings(self, values: Mapping[str, float]) -> Family:
        return dataclasses.replace(self, values={**self.settings, **values})

    def setting(self, name: str) -> float:
        return float(self.values.get(name, self.settings[name]))

    # -- torch behaviour ----------------------------------------------------------------

    def constrain(self, name: str, raw: Tensor) -> Tensor:
        if self.constraints[name] == "positive":
            return torch.nn.functional.softplus(raw) + MIN_SCALE
        return raw

    def raw_size(self, size: int, free: tuple[str, ...]) -> int:
        """The width of the raw vector that holds the parameters named in `free`."""
        return size * len(free)

    def assemble(self, computed: Tensor | None, learned: Tensor | None, spec: ParamSpec, size: int,
                 batch: int, like: Tensor) -> Params:
        """Every parameter, constrained, [batch, size] (or [size] broadcast for learned and
        fixed ones): computed ones from the network's raw output, learned ones from the
        node's free vector, fixed ones from the spec."""
        out: Params = {}
        parts = {"computed": _chunks(computed, size), "learned": _chunks(learned, size)}
        for name in self.params:
            if name in spec.given:
                continue
            if name in spec.fixed:
                out[name] = fixed_tensor(spec.fixed[name], batch, size, like)
            else:
                out[name] = self.constrain(name, next(parts["learned" if name in spec.learned else "computed"]))
        return out

    def noise(self, shape: tuple[int, ...], generator: Generator | None, device: device) -> Tensor:
        raise NotImplementedError

    def reparam(self, eps: Tensor, params: Params) -> Tensor:
        raise NotImplementedError

    def base(self, params: Params) -> Distribution:
        """The torch distribution per dimension (per event for `event` families), built
        every step, so without argument checks: the parameters come constrained."""
        raise NotImplementedError

    def distribution(self, params: Params) -> Distribution:
        """The node's distribution: the dimensions of a factorized family as one event."""
        base = self.base(params)
        return base if self.event else torch.distributions.Independent(base, 1, validate_args=False)

    def log_density(self, params: Params, value: Tensor) -> Tensor:
        """log p(value) per dimension (per event for `event` families)."""
        return self.base(params).log_prob(value)

    def support_size(self, size: int) -> int | None:
        """How many values a node of `size` dimensions can take (the rows `support` would
        build), counted without building them: a caller checks the count before it
        enumerates (40 bits are 2**40 values). None: not enumerable."""
        return None

    def support(self, size: int) -> Tensor | None:
        """Every value a node of `size` dimensions can take, [values, size], for a discrete
        family with a finite support (exact marginals enumerate it); None: not enumerable.
        Build it only after `support_size` said it is small enough."""
        return None

    def mean(self, params: Params) -> Tensor | None:
        """E[value] per dimension, the statistic evaluation reads of a node (a posterior
        mean, for active units); None where the family has none in closed form (torch
        raises NotImplementedError for it), which the report then says rather than failing."""
        try:
            return self.base(params).mean
        except NotImplementedError:
            return None


@dataclass(frozen=True)
class ParamSpec:
    """How each parameter of one node is given: `fixed` values (in the family's own
    parameters), `learned` ones (free, shared by every row), the rest computed by the
    node's network; `settings` the node's settings."""

    fixed: dict[str, float | tuple[float, ...]]
    """A number for every dimension, or one per dimension (`probs = [0.2, 0.8]`)."""
    learned: tuple[str, ...]
    computed: tuple[str, ...]
    settings: dict[str, float]
    given: tuple[str, ...] = ()
    """Parameters an expression of the parents gives (`x ~ Normal(loc = 2 * z, ...)`):
    neither a network's nor the node's own; `assemble` leaves them to its caller."""


def param_spec(family: Family, node_params: Mapping[str, float | tuple[float, ...] | str]) -> ParamSpec:
    """A node's IR parameters (numbers, lists of numbers, `learned`, `computed`) in the
    family's terms; a parameter fixed under one name (Categorical `probs`) is not also
    learned under the other (`logits`)."""
    fixed, learned, given = {}, [], []
    for name, value in node_params.items():
        if name in family.settings:
            continue
        if value == "expression":
            given.append(name)
        elif value == "learned":
            learned.append(family.fix(name, 0.0)[0])
        elif isinstance(value, tuple | list):
            own = family.fix(name, float(value[0]))[0]
            fixed[own] = tuple(family.fix(name, float(v))[1] for v in value)
        elif value != "computed":
            own, number = family.fix(name, float(value))
            fixed[own] = number
    settings = {k: float(node_params[k]) for k in family.settings if k in node_params}
    computed = tuple(p for p in family.params if p not in fixed and p not in learned and p not in given)
    learned_in_order = tuple(p for p in family.params if p in learned and p not in fixed)
    return ParamSpec(fixed=fixed, learned=learned_in_order, computed=computed, settings=settings,
                     given=tuple(p for p in family.params if p in given))


def fixed_tensor(value: float | tuple[float, ...], batch: int, size: int, like: Tensor) -> Tensor:
    """A fixed parameter as [batch, size]: one number everywhere, or one per dimension."""
    if isinstance(value, tuple):
        return like.new_tensor(value).expand(batch, size)
    return like.new_full((batch, size), value)


def _chunks(raw: Tensor | None, size: int):
    if raw is None:
        return iter(())
    return iter((raw,)) if raw.shape[-1] == size else iter(raw.split(size, dim=-1))


# -- noise ----------------------------------------------------------------------------


def uniform(shape: tuple[int, ...], generator: Generator | None, device: device) -> Tensor:
    """U(0, 1), drawn on the generator's device, then moved (CPU generators stay usable
    with a CUDA model)."""
    where = generator.device if generator is not None else device
    return _moved(torch.rand(shape, generator=generator, device=where), device)


def _moved(tensor: Tensor, device: device) -> Tensor:
    """`tensor` on `device`; no call at all when it is there (a step draws many)."""
    return tensor if tensor.device == device else tensor.to(device)


def open_uniform(shape: tuple[int, ...], generator: Generator | None, device: device) -> Tensor:
    """U(0, 1) kept TINY away from both ends."""
    return uniform(shape, generator, device).clamp(TINY, 1 - TINY)


def standard_normal(shape: tuple[int, ...], generator: Generator | None, device: device) -> Tensor:
    where = generator.device if generator is not None else device
    return _moved(torch.randn(shape, generator=generator, device=where), device)


def standard_gumbel(shape: tuple[int, ...], generator: Generator | None, device: device) -> Tensor:
    return -torch.log(-torch.log(open_uniform(shape, generator, device)))


def logit(p: float) -> float:
    p = min(max(p, TINY), 1 - TINY)
    return math.log(p / (1 - p))


def torch_kl(family: Family, t: Params, s: Params) -> Tensor:
    """KL(teacher || student) in closed form, as torch registers it for the pair."""
    return torch.distributions.kl_divergence(family.base(t), family.base(s))
