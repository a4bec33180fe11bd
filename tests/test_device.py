"""On a CUDA device (skipped without one; `bench/gpu_check.sh` runs them on a lent GPU):
every command runs with `--device cuda`, a training and a distillation step make no
host sync between the loop's reads, and the generated code computes on the GPU what it
computes on the CPU, up to float tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dgmc
from dgmc.cli import main
from dgmc.datasets import load_split
from dgmc.distillation.distill import distillation_loss
from dgmc.losses import generate
from dgmc.lower import compile_model
from dgmc.training.loop import _step
from dgmc.training.objectives import elbo

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_every_command_runs_on_cuda(tmp_path: Path) -> None:
    run = tmp_path / "run"
    quick = ["--quick", "--no-progress", "--device", "cuda"]
    assert main(["run", str(ROOT / "specs/vae.dgm"), "--out", str(run), "--seeds", "0", "--widths", "0.25",
                 *quick]) == 0
    assert main(["eval", str(run), "--device", "cuda", "--no-progress"]) == 0
    assert main(["train", str(ROOT / "specs/hm.dgm"), "--out", str(tmp_path / "hm"), *quick]) == 0
    assert main(["distill", str(ROOT / "specs/hm.dgm"), "--teacher", str(tmp_path / "hm/teacher.pt"), *quick]) == 0
    assert main(["continual", str(ROOT / "specs/cvae.dgm"), "--out", str(tmp_path / "cont"), "--seeds", "0",
                 *quick]) == 0


def test_a_training_and_a_distillation_step_do_not_wait_for_the_device() -> None:
    model = dgmc.load(ROOT / "specs/vae.dgm")
    teacher = compile_model(model).cuda()
    student = compile_model(model, 0.25).cuda()
    data = {k: v[:128].cuda() for k, v in load_split(model).train.items()}
    generator = torch.Generator("cuda").manual_seed(0)
    terms = generate(model, "ours")
    steps = {
        "teacher": (teacher, torch.optim.Adam(teacher.parameters()), lambda: elbo(teacher, data, generator)),
        "student": (student, torch.optim.Adam(student.generative_parameters()),
                    lambda: distillation_loss(teacher, student, terms, "ours", 128, {}, generator)),
    }
    for module, optimiser, loss in steps.values():
        _step(module, optimiser, loss)  # the first step makes the code and Adam's state
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(3):
                _step(module, optimiser, loss)
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("name", ["vae", "hvae", "vrnn", "conv_vae"])
def test_generated_code_on_cuda_is_the_cpu_code(name: str) -> None:
    model = dgmc.load(ROOT / f"specs/{name}.dgm")
    cpu = compile_model(model)
    gpu = compile_model(model).cuda()
    gpu.load_state_dict(cpu.state_dict())
    noise = cpu.draw(16, torch.Generator().manual_seed(0))
    inputs = {n.name: torch.zeros(16, n.size) for n in model.of_kind("input")}
    on_cpu = cpu.run(noise, inputs)
    on_gpu = gpu.run({k: v.cuda() for k, v in noise.items()}, {k: v.cuda() for k, v in inputs.items()})
    for node, value in on_cpu.values.items():
        torch.testing.assert_close(on_gpu.values[node].cpu(), value, rtol=1e-3, atol=1e-4, msg=node)
