"""Step timings on a CUDA device, for docs/PERFORMANCE.md's block `gpu`.

    python bench/gpu_timing.py --out gpu.md                              # on the GPU (bench/gpu_check.sh)
    python bench/gpu_timing.py --from gpu.md --write docs/PERFORMANCE.md  # here: the measured block, in place

A teacher step (VAE, HVAE, conv VAE: `objectives.elbo`, backward, Adam) and a distillation
step (`distill.distillation_loss` of the first width's `ours` student, backward, Adam),
eager, in ms per step with the device synchronised around each timed stretch. Then
`torch.compile` of the VAE's ELBO on noise drawn outside it (no random op inside), with
`mode="reduce-overhead"`, which replays the step as a CUDA graph.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perf import data_batch, load, machine, write_block

from dgmc.distillation.distill import distillation_loss
from dgmc.losses import generate
from dgmc.lower import compile_model
from dgmc.training.objectives import elbo

BATCH = {"vae": 128, "hvae": 128, "conv_vae": 64}


def ms_per_call(fn: Callable[[], object], device: torch.device, reps: int = 7, inner: int = 20) -> float:
    """Median over `reps` stretches of `inner` calls, the device synchronised around each."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / inner * 1e3)
    return statistics.median(times)


def trained(module, loss: Callable[[], torch.Tensor], parameters) -> Callable[[], None]:
    optimiser = torch.optim.Adam(parameters, lr=1e-3)

    def step() -> None:
        value = loss()
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()
    return step


def measure(device: torch.device) -> list[str]:
    rows = []
    for name, batch_size in BATCH.items():
        model = load(name)
        teacher = compile_model(model).to(device)
        batch = {k: v.to(device) for k, v in data_batch(model, batch_size).items()}
        generator = torch.Generator(device).manual_seed(0)
        teach = trained(teacher, lambda t=teacher, b=batch, g=generator: elbo(t, b, g)[0], teacher.parameters())
        width = model.distill.widths[0]
        student = compile_model(model, width).to(device)
        terms = generate(model, "ours")
        distil = trained(student, lambda s=student, t=teacher, n=terms, b=batch_size, g=generator:
                         distillation_loss(t, s, n, "ours", b, {}, g)[0], student.generative_parameters())
        rows.append(f"| {name} | {batch_size} | {ms_per_call(teach, device):.3f} | x{width:g} | "
                    f"{ms_per_call(distil, device):.3f} |")
    return rows


def compiled_vae(device: torch.device) -> str:
    model = load("vae")
    twin = compile_model(model).to(device)
    batch = {k: v.to(device) for k, v in data_batch(model, 128).items()}
    generator = torch.Generator(device).manual_seed(1)
    sampled = [s for s in twin.inference.steps if s.role == "sample"]

    def draw() -> dict[str, torch.Tensor]:
        return {s.node: s.family.noise((128, s.size), generator, device) for s in sampled}

    def loss_on(eps: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(v.mean() for v in twin.elbo_parts(batch, None, eps).values())

    eager = trained(twin, lambda: loss_on(draw()), twin.parameters())
    loss_on(draw())  # the code of these calls is generated before tracing
    fast_loss = torch.compile(loss_on, mode="reduce-overhead")
    fast = trained(twin, lambda: fast_loss(draw()), twin.parameters())
    start = time.perf_counter()
    fast()
    first = time.perf_counter() - start
    e, c = ms_per_call(eager, device), ms_per_call(fast, device)
    return (f"torch.compile(mode=\"reduce-overhead\") of the VAE's ELBO on given noise (batch 128): eager {e:.3f} ms, "
            f"compiled {c:.3f} ms, compiled/eager {c / e:.2f} (first step, compiling, {first:.1f} s)")


def report(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [f"Run of {time.strftime('%d %b %Y, %H:%M UTC', time.gmtime())} on {name} "
             f"(torch {torch.__version__}): `python bench/gpu_timing.py`.", "",
             *(f"- {line}" for line in machine()), "",
             "| spec | batch | teacher step ms | student | distillation step ms |", "|---|---:|---:|---|---:|",
             *measure(device), ""]
    try:
        lines.append(f"- {compiled_vae(device)}")
    except Exception as error:  # a compiler failure is a finding, not a crash of the whole report
        lines.append(f"- torch.compile(mode=\"reduce-overhead\") failed: {type(error).__name__}: "
                     f"{str(error).splitlines()[0][:200]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the block to this file (on the GPU machine)")
    parser.add_argument("--from", dest="source", type=Path, help="a block measured before (with --write)")
    parser.add_argument("--write", type=Path, metavar="MD", help="put the block into MD's `gpu` block")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only to try the script")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    block = args.source.read_text().strip() if args.source else report(torch.device(args.device))
    print(block)
    if args.out:
        args.out.write_text(block + "\n")
    if args.write:
        write_block(args.write, block, "gpu")


if __name__ == "__main__":
    main()
