"""Training a teacher: the objectives it can be trained by (`objectives`: the registry
`OBJECTIVES`, which the checker reads too; `iwae`, the importance-weighted bound, which
also gives the reported test estimate of -log p), the ELBO with discrete latents summed out
(`summed`), the loop (`loop`), the checkpoints every model is saved to and loaded from
(`checkpoint`). Training on several processes under torchrun is `dgmc.scale`.
"""

from . import iwae as _iwae  # noqa: F401  registers the `iwae` objective
