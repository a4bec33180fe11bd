"""Distillation losses: divergences registered per (divergence, family), and the loss
generated from the graph, one term per latent and per observed node."""

from .divergences import DIVERGENCES, reduce
from .terms import Term, describe, generate

__all__ = ["DIVERGENCES", "Term", "describe", "generate", "reduce"]
