"""The losses, as the graph determines them: the divergence registry (`divergences`:
closed forms from the families, Monte Carlo estimates on the shared noise otherwise), the
distillation methods registry (`methods`: what a student is fed, how terms are weighed),
the distillation loss (`terms`: one term per latent and per observed node) and which of
the ELBO's latent terms may be a closed-form KL (`elbo`). `dgmc.lower` generates their code."""

from .divergences import DIVERGENCES, divergence, is_closed, reduce
from .terms import Term, describe, generate, guide_fed, guide_terms

__all__ = ["DIVERGENCES", "Term", "describe", "divergence", "generate", "guide_fed", "guide_terms", "is_closed",
           "reduce"]
