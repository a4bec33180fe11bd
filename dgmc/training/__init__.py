"""Training a teacher: the objectives it can be trained by (`objectives`: the registry
`OBJECTIVES`, which the checker reads too), the ELBO with discrete latents summed out
(`summed`), the loop (`loop`), the checkpoints every model is saved to and loaded from
(`checkpoint`). Training on several processes under torchrun is `dgmc.scale`.
"""
