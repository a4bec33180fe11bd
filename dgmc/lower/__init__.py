"""Lowering: graph IR -> PyTorch modules in semi-auxiliary form.

`plan` decides the passes (pure, IR in, passes out); `generate` and `generate_losses`
write each pass and each loss as Python source, which `module` compiles and runs as an
`nn.Module` (`CompiledModel`); `runtime` is all that source imports; `interpret` runs the
same passes by hand, the reference the generated code is tested against (`trace`: what a
pass returns). `dgmc.report.describe` prints what a compiled module does.
"""

from .module import CompiledModel, MissingValueError, Trace, compile_model

__all__ = ["CompiledModel", "MissingValueError", "Trace", "compile_model"]
