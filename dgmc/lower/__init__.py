"""Lowering: graph IR -> PyTorch modules in semi-auxiliary form.

`plan` decides the passes (pure, IR in, passes out); `families` and `networks` are the
torch registries; `module` executes a plan as an `nn.Module`; `describe` prints what a
compiled module does.
"""

from .module import CompiledModel, MissingValueError, Trace, compile_model

__all__ = ["CompiledModel", "MissingValueError", "Trace", "compile_model"]
