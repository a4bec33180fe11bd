"""What a pass returns (`Trace`: per node its value, noise and distribution parameters;
time-indexed entries stacked to [batch, steps, ...]) and what a pass refuses."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..core.errors import UserError
from ..families import Params


class MissingValueError(UserError):
    """A pass needs a value that was not given (an input node, or data for inference)."""


class ShapeError(UserError):
    """A given value or noise that is not the shape of its node, or names no node."""


@dataclass
class Trace:
    values: dict[str, Tensor] = field(default_factory=dict)
    noise: dict[str, Tensor] = field(default_factory=dict)
    params: dict[str, Params] = field(default_factory=dict)


def stack_params(steps: list[Params]) -> Params:
    """Per-step parameters stacked to [batch, steps, ...], one tensor per parameter."""
    return {name: torch.stack([p[name] for p in steps], dim=1) for name in steps[0]}
