"""Shared networks (`network NAME = ...`, `via NAME`): one module, one set of weights, for
every conditional that names it, held to a hand-written reference of specs/hvae_shared.dgm
on the same weights and noise; counted once, sized once in the student, and kept shared
through a checkpoint."""

from __future__ import annotations

from pathlib import Path

import references as ref
import torch

import dgmc
from dgmc.lower import compile_model
from dgmc.training import checkpoint

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs/hvae_shared.dgm"


def test_the_shared_network_is_one_module() -> None:
    model = dgmc.load(SPEC)
    teacher = compile_model(model)
    assert teacher.nets["p_z2"] is teacher.nets["p_z1"]
    unshared = compile_model(dgmc.loads(SPEC.read_text().replace("via down", "via mlp(H, H)")))
    once = sum(p.numel() for p in teacher.nets["p_z2"].parameters())
    assert sum(p.numel() for p in teacher.parameters()) == sum(p.numel() for p in unshared.parameters()) - once
    student = compile_model(model, 0.25)
    assert student.nets["p_z2"] is student.nets["p_z1"]
    assert [m.out_features for m in student.nets["p_z2"] if isinstance(m, torch.nn.Linear)] == [64, 64, 16]


def test_sample_matches_a_hand_written_chain_with_one_network() -> None:
    """z3 ~ N(0, I); z2 and z1 from the same MLP on their parent; x from its decoder: the
    generated pass and the reference agree on the same noise."""
    torch.manual_seed(0)
    module = compile_model(dgmc.load(SPEC))
    down = ref.ReluMLP.of(module.nets["p_z2"], 8, 16, depth=2)
    decoder = ref.ReluMLP.of(module.nets["p_x"], 8, 64, depth=2)
    generator = torch.Generator().manual_seed(1)
    noise = {"z3": torch.randn(5, 8, generator=generator), "z2": torch.randn(5, 8, generator=generator),
             "z1": torch.randn(5, 8, generator=generator), "x": torch.rand(5, 64, generator=generator)}
    trace = module.run(noise)
    z3 = noise["z3"]
    z2 = ref.normal_sample(ref.normal_from_raw(down(z3), 8), noise["z2"])
    z1 = ref.normal_sample(ref.normal_from_raw(down(z2), 8), noise["z1"])
    x = ref.bernoulli_sample({"logits": decoder(z1)}, noise["x"])
    largest = max(float((trace.values[n] - v).detach().abs().max()) for n, v in (("z2", z2), ("z1", z1)))
    assert largest < 1e-5, largest
    assert torch.equal(trace.values["x"], x)


def test_both_uses_train_the_one_network(tmp_path: Path) -> None:
    """A loss on z1 alone and one on z2 alone both reach the shared weights, and a
    checkpoint keeps them shared when loaded."""
    torch.manual_seed(0)
    module = compile_model(dgmc.load(SPEC))
    trace = module.sample(4, generator=torch.Generator().manual_seed(0))
    trace.params["z1"]["loc"].sum().backward()
    first = module.nets["p_z2"][0].weight.grad.clone()
    module.zero_grad()
    trace = module.sample(4, generator=torch.Generator().manual_seed(0))
    trace.params["z2"]["loc"].sum().backward()
    assert first.abs().sum() > 0 and module.nets["p_z1"][0].weight.grad.abs().sum() > 0
    path = checkpoint.save(tmp_path / "teacher.pt", module, {})
    loaded = compile_model(dgmc.load(SPEC))
    checkpoint.load(path, loaded)
    assert loaded.nets["p_z2"] is loaded.nets["p_z1"]
    assert torch.equal(loaded.nets["p_z1"][0].weight, module.nets["p_z2"][0].weight)
