"""Distillation losses: the divergence registry (closed forms from the families, Monte
Carlo estimates on the shared noise otherwise), and the loss generated from the graph,
one term per latent and per observed node."""

from .divergences import DIVERGENCES, divergence, is_closed, reduce
from .terms import Term, describe, generate, guide_fed, guide_terms

__all__ = ["DIVERGENCES", "Term", "describe", "divergence", "generate", "guide_fed", "guide_terms", "is_closed",
           "reduce"]
