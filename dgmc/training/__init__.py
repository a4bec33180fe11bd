"""Training a teacher: the objectives it can be trained by (`objectives`: the registry
`OBJECTIVES`, read by the checker without importing torch), the loop (`loop`), the
checkpoints every model is saved to and loaded from (`checkpoint`). Training on several
processes under torchrun is `dgmc.scale`.
"""
