"""The value types a node can have, and what the language knows about each.

Latent and observed nodes have a distribution *family*; input and deterministic nodes
have a plain *domain* (they are given, or computed, never sampled). Each family says
which arguments it takes, which divergences can compare two of its members, and the
default divergence used by distillation. Later stages (lowering) attach the torch
behaviour to the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Domain = Literal["real", "binary", "onehot"]

DIVERGENCES: dict[str, str] = {
    "kl": "KL(teacher || student), closed form",
    "reverse_kl": "KL(student || teacher), closed form",
    "w2": "squared 2-Wasserstein distance (Normal only)",
    "bce": "binary cross-entropy of student logits against teacher probabilities (Bernoulli only)",
    "mse": "mean squared error between the two parameter vectors",
}


@dataclass(frozen=True)
class Family:
    """A distribution family a latent or observed node can have.

    `params` are the arguments a spec may fix (`Normal[1](scale = 0.5)`); a parameter
    not fixed is computed by the node's network, or learned as a free parameter when the
    node has no parents. `positive` lists those that must be > 0; `unit` those in [0, 1].
    """

    name: str
    domain: Domain
    params: tuple[str, ...]
    default_divergence: str
    divergences: tuple[str, ...]
    discrete: bool
    positive: tuple[str, ...] = ()
    unit: tuple[str, ...] = ()
    root_only: tuple[str, ...] = ()
    """Parameters that only a node without parents may fix (a network computes them)."""
    min_size: int = 1
    doc: str = field(default="", compare=False)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("Normal", "real", ("loc", "scale"), "kl", ("kl", "reverse_kl", "w2", "mse"),
               discrete=False, positive=("scale",), root_only=("loc",), doc="diagonal Gaussian; eps ~ N(0, I)"),
        Family("Laplace", "real", ("loc", "scale"), "kl", ("kl", "reverse_kl", "mse"),
               discrete=False, positive=("scale",), root_only=("loc",), doc="diagonal Laplace; inverse-CDF noise"),
        Family("Bernoulli", "binary", ("probs",), "bce", ("kl", "reverse_kl", "bce", "mse"),
               discrete=True, unit=("probs",), root_only=("probs",), doc="independent bits; u ~ U(0, 1)"),
        Family("Categorical", "onehot", (), "kl", ("kl", "reverse_kl", "mse"),
               discrete=True, min_size=2, doc="one of k classes, one-hot; Gumbel-max noise"),
    )
}

DOMAINS: dict[str, Domain] = {"Real": "real", "Binary": "binary", "OneHot": "onehot"}
"""Types of input nodes (any domain) and deterministic nodes (Real only)."""

DETERMINISTIC_DOMAINS = ("Real",)
