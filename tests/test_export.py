"""`dgmc export`: the exported sampler and guide give the compiled module's values on the
same noise, read back by onnxruntime and by torch.jit.load, for vae, hvae, hm and vrnn;
the files record the spec's hash and the width.

Tolerance: 1e-5 absolute on continuous values (the same float32 kernels in another
order); binary and one-hot values must match exactly, which they do on these seeds (a
threshold 1[u < sigmoid(logits)] could flip on a rounding difference one time in ~1e7)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.exporter import example, export, interface, metadata
from dgmc.lower import CompiledModel, compile_model
from dgmc.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-5
BATCH = 5


def trained_like(name: str, width: float | None) -> CompiledModel:
    """A compiled model with random (not zero) weights everywhere."""
    torch.manual_seed(0)
    compiled = compile_model(dgmc.load(ROOT / f"specs/{name}.dgm"), width)
    for p in compiled.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    return compiled.eval()


def reference(compiled: CompiledModel, args: tuple[torch.Tensor, ...], guide: bool) -> list[torch.Tensor]:
    io = interface(compiled, guide)
    given = dict(zip(io.given, args[: len(io.given)], strict=True))
    noise = dict(zip(io.noise, args[len(io.given):], strict=True))
    with torch.no_grad():
        trace = compiled.infer(given, noise) if guide else compiled.run(noise, given)
    return [trace.values[n] for n in io.outputs]


def run_onnx(path: Path, names: list[str], args: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [torch.from_numpy(a) for a in session.run(None, {n: a.numpy() for n, a in zip(names, args, strict=True)})]


def run_torchscript(path: Path, names: list[str], args: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 steers users to torch.export
        return list(torch.jit.load(str(path))(*args))


RUNNERS = {"onnx": run_onnx, "torchscript": run_torchscript}


SAMPLERS = [("vae", 0.25), ("hvae", 0.1), ("hm", None), ("vrnn", 0.25)]
GUIDES = [("vae", None, "onnx"), ("hm", 0.5, "torchscript"), ("vrnn", None, "onnx"),
          ("dmm", 0.5, "onnx"), ("srnn", None, "torchscript")]  # a guide with a backward scan


@pytest.mark.parametrize("name,width,guide,fmt", [(n, w, False, f) for n, w in SAMPLERS for f in RUNNERS]
                         + [(n, w, True, f) for n, w, f in GUIDES])
def test_export_gives_the_compiled_values_on_the_same_noise(name: str, width: float | None, guide: bool, fmt: str,
                                                            tmp_path: Path) -> None:
    compiled = trained_like(name, width)
    path = export(compiled, fmt, tmp_path / f"m.{fmt}", guide)
    io = interface(compiled, guide)
    args = example(compiled, io, guide, batch=BATCH, seed=1)  # another batch size than the traced one
    got = RUNNERS[fmt](path, io.input_names, args)
    for node, value, expected in zip(io.outputs, got, reference(compiled, args, guide), strict=True):
        assert value.shape == expected.shape, node
        family = compiled.families.get(node.split("[")[0])
        if family is not None and family.discrete:
            assert torch.equal(value, expected), node
        else:
            torch.testing.assert_close(value, expected, rtol=0, atol=ATOL, msg=node)
    meta = metadata(path)
    assert meta["spec_hash"] == checkpoint.spec_hash(compiled.ir, width) and meta["width"] == width
    assert meta["inputs"] == io.input_names and meta["part"] == ("guide" if guide else "sampler")


def test_export_command_finds_the_spec_of_a_run_and_names_the_interface(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    (run / "students").mkdir(parents=True)
    shutil.copyfile(ROOT / "specs/hm.dgm", run / "spec.dgm")
    student = trained_like("hm", 0.25)
    checkpoint.save(run / "students" / "student_ours_w0.25_s0.pt", student, {})
    assert main(["export", str(run), "--student", "student_ours_w0.25_s0", "--format", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert "eps_z4, eps_z3, eps_y2" in out and "outputs z4, z3, y2, z2, z1, y1" in out
    exported = run / "students" / "student_ours_w0.25_s0.jit.pt"
    assert metadata(exported)["width"] == 0.25
    assert main(["export", str(run / "students" / "student_ours_w0.25_s0.pt"), "--guide"]) == 0
    assert (run / "students" / "student_ours_w0.25_s0_guide.onnx").is_file()
    assert main(["export", str(run)]) == 1  # no teacher in this run
    assert "has no teacher" in capsys.readouterr().err
