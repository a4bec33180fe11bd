"""A tour of the Python API on the Helmholtz machine of the paper (runs in seconds):
spec -> typed graph -> compiled teacher -> a few training steps -> a student distilled
with the generated loss.

    python examples/api_tour.py
"""

from __future__ import annotations

from pathlib import Path

import torch

import dgmc
from dgmc.datasets import load_split
from dgmc.distill import distill, fidelity
from dgmc.losses import describe
from dgmc.lower import compile_model
from dgmc.train.loop import fit

SPEC = Path(__file__).resolve().parents[1] / "specs" / "hm.dgm"


def main() -> None:
    torch.set_num_threads(1)
    model = dgmc.load(SPEC)                         # parse + check: the typed, frozen graph IR
    print("order:", " -> ".join(model.order))
    print(describe(model))                          # the generated loss, one term per node

    torch.manual_seed(0)
    teacher = compile_model(model)                  # an nn.Module in semi-auxiliary form
    split = load_split(model)                       # Old Faithful, standardized, train/test
    fit(teacher, model.train, split.train, steps=300, seed=0, progress=False)

    trace = teacher.sample(4)                       # values, noise and parameters of every node
    replay = teacher.run(trace.noise, given={n: trace.values[n] for n in teacher.semi})
    assert all(torch.equal(trace.values[n], replay.values[n]) for n in trace.values)
    print("y1 samples:", trace.values["y1"].flatten().tolist())

    student, history = distill(model, teacher, width=0.25, method="ours", seed=0, steps=300, progress=False)
    print(f"student: {sum(p.numel() for p in student.generative_parameters())} parameters, "
          f"final loss {history['loss'][-1]:.4f}")
    print("fidelity:", {k: round(v, 4) for k, v in fidelity(model, teacher, student, split).items()})


if __name__ == "__main__":
    main()
