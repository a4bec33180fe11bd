"""Export a trained model for use outside dgmc: `dgmc export CKPT_OR_RUN_DIR --format
onnx|torchscript`.

In semi-auxiliary form a model holds no random op: every random node is g(noise,
params). So the exported sampler is a deterministic function, noise (and inputs) in, every
node's value out, and whoever runs it draws the noise: `eps_NODE` of the shape and law
`dgmc compile --emit code` shows (a standard normal for Normal nodes, a uniform for
Bernoulli ones, ...). With `--guide`, the guide is exported the same way: data and the
latents' noise in, the latents out. Time-indexed models are unrolled over their steps.

The file records what it was made from: the spec's name and hash, the width (none for
the teacher), and its input and output names (ONNX metadata_props; a `dgmc.json` extra
file in TorchScript).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from .core.errors import UserError
from .lower import CompiledModel
from .lower.plan import Pass
from .training import checkpoint

SUFFIX = {"onnx": ".onnx", "torchscript": ".jit.pt"}
OPSET = 17
EXAMPLE_BATCH = 2


class ExportError(UserError):
    """A model that cannot be exported as asked (no guide to export, an unknown student)."""


@dataclass(frozen=True)
class Interface:
    """The exported function's inputs and outputs, in order: given values (inputs, data),
    then noise (`eps_NODE`); outputs are node values."""

    given: tuple[str, ...]
    noise: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def input_names(self) -> list[str]:
        return [*self.given, *(f"eps_{n}" for n in self.noise)]


def interface(compiled: CompiledModel, guide: bool) -> Interface:
    """The sampler: inputs and every sampled node's noise in, every node out. The guide:
    the data (observed, inputs, latents without a guide) and the guided latents' noise
    in, the latents out."""
    walk: Pass | None = compiled.inference if guide else compiled.generative
    if walk is None:
        raise ExportError(f"'{compiled.ir.name}' has no guide to export.")
    given = tuple(s.node for s in walk.steps if s.role == "given")
    noise = tuple(s.node for s in walk.steps if s.role == "sample")
    if guide:
        outputs = tuple(s.node for s in walk.steps if s.key.startswith("q_"))
    else:
        outputs = tuple(s.node for s in walk.steps)
    return Interface(given, noise, outputs)


class Exported(nn.Module):
    """The compiled model's pass as a function of positional tensors, as exporters want."""

    def __init__(self, compiled: CompiledModel, guide: bool) -> None:
        super().__init__()
        self.compiled = compiled.eval()
        self.guide = guide
        self.io = interface(compiled, guide)

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        given = dict(zip(self.io.given, tensors[: len(self.io.given)], strict=True))
        noise = dict(zip(self.io.noise, tensors[len(self.io.given):], strict=True))
        trace = self.compiled.infer(given, noise) if self.guide else self.compiled.run(noise, given)
        return tuple(trace.values[name] for name in self.io.outputs)


def example(compiled: CompiledModel, io: Interface, guide: bool, batch: int = EXAMPLE_BATCH,
            seed: int = 0) -> tuple[Tensor, ...]:
    """Inputs of the right shapes and laws for tracing (and for tests): a sample of the
    model itself, its node values standing in for data."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {n.name: torch.rand(batch, *((compiled.steps,) if n.timed else ()), n.size, generator=generator)
              .round() for n in compiled.ir.of_kind("input")}
    with torch.no_grad():
        trace = compiled.sample(batch, inputs, generator)
        if guide:  # the guide's own noise (its latents' laws are the model's)
            noise = compiled.infer({n: trace.values[n] for n in io.given}, generator=generator).noise
        else:
            noise = trace.noise
    return (*(trace.values[n] for n in io.given), *(noise[n] for n in io.noise))


def export(compiled: CompiledModel, fmt: str, out: Path, guide: bool = False) -> Path:
    """Write the sampler (or the guide) of `compiled` to `out` in `fmt`."""
    module = Exported(compiled, guide)
    args = example(compiled, module.io, guide)
    meta = {"spec_name": compiled.ir.name, "spec_hash": checkpoint.spec_hash(compiled.ir, compiled.width),
            "width": compiled.width, "part": "guide" if guide else "sampler",
            "inputs": module.io.input_names, "outputs": list(module.io.outputs)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values: the passes are fixed per model
        if fmt == "torchscript":
            traced = torch.jit.trace(module, args, check_trace=False)
            torch.jit.save(traced, str(out), _extra_files={"dgmc.json": json.dumps(meta)})
        else:
            _onnx(module, args, out, meta)
    return out


def _onnx(module: Exported, args: tuple[Tensor, ...], out: Path, meta: dict) -> None:
    """The TorchScript-based ONNX exporter (no torch.export graph capture: the passes are
    plain tensor code once traced), batch size dynamic, then the metadata."""
    onnx = _onnx_module()
    names = module.io.input_names
    outputs = list(module.io.outputs)
    torch.onnx.export(module, args, str(out), input_names=names, output_names=outputs, opset_version=OPSET,
                      dynamic_axes={n: {0: "batch"} for n in [*names, *outputs]}, dynamo=False)
    proto = onnx.load(str(out))
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in meta.items()})
    onnx.save(proto, str(out))


def metadata(path: Path) -> dict:
    """What an exported file records of its model (either format)."""
    if path.suffix == ".onnx":
        return {p.key: json.loads(p.value) for p in _onnx_module().load(str(path)).metadata_props}
    files = {"dgmc.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load: the file is read, not run
        torch.jit.load(str(path), _extra_files=files)
    return json.loads(files["dgmc.json"])


def _onnx_module():
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the `onnx` package: pip install 'dgmc[export]'.") from None
    return onnx


# -- finding the model ----------------------------------------------------------------------


def default_out(ckpt: Path, fmt: str, guide: bool) -> Path:
    """Beside the checkpoint: `teacher.onnx`, `student_ours_w0.25_s0_guide.jit.pt`."""
    return ckpt.with_name(f"{ckpt.stem}{'_guide' if guide else ''}{SUFFIX[fmt]}")


