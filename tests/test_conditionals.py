"""Conditionals written out (`x ~ Normal(loc = sqrt(1 - B) * z, scale = sqrt(B))`): the
diffusion chain of specs/ddpm.dgm, whose guide is the fixed forward process, held to a
hand-written PyTorch ELBO on the same weights and noise; the generated code equal to the
reference interpreter, in a scan too; constants folded; `fmt` keeping every tree."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import references as ref
import torch

import dgmc
from dgmc.frontend.fmt import format_text
from dgmc.lower import compile_model
from dgmc.training.objectives import elbo

ROOT = Path(__file__).resolve().parents[1]
DDPM = ROOT / "specs/ddpm.dgm"
B = 0.2


def _ddpm(interpret: bool = False):
    torch.manual_seed(0)
    module = compile_model(dgmc.load(DDPM))
    module.interpret = interpret
    return module


def _data(rows: int) -> torch.Tensor:
    return torch.randn(rows, 2, generator=torch.Generator().manual_seed(5))


def test_the_forward_process_is_fixed_and_folded() -> None:
    """The guide has no network and no parameters: sqrt(B) is folded to a number."""
    model = dgmc.load(DDPM)
    x3 = model.node("x3")
    assert x3.guide.net is None and x3.guide.exprs["scale"].value == pytest.approx(math.sqrt(B))
    assert x3.guide.exprs["loc"].text() == f"({math.sqrt(1 - B)!r} * x2)"
    module = compile_model(model)
    assert not [k for k in (*module.nets, *module.free) if k.startswith("q_")]


def test_ddpm_elbo_matches_a_hand_written_diffusion_elbo() -> None:
    """-ELBO = -log p(x0 | x1) + sum_k<10 [log q(x_k | x_{k-1}) - log p(x_k | x_{k+1})] +
    KL(q(x10 | x9) || N(0, I)), the forward chain x_k = sqrt(1 - B) x_{k-1} + sqrt(B) eps_k, the reverse
    steps one MLP; by hand on the module's weights and its guide noise."""
    module = _ddpm()
    x0 = _data(16)
    eps = module.draw(16, torch.Generator().manual_seed(9), guide=True)
    _, terms = elbo(module, {"x0": x0}, torch.Generator().manual_seed(9))
    reverse = ref.ReluMLP.of(module.nets["p_x9"], 2, 4, depth=2)
    assert module.nets["p_x0"] is module.nets["p_x9"]
    xs = [x0]
    for k in range(1, 11):
        xs.append(math.sqrt(1 - B) * xs[-1] + math.sqrt(B) * eps[f"x{k}"])
    scale = torch.full_like(x0, math.sqrt(B))
    total = -ref.normal_log_density(x0, ref.normal_from_raw(reverse(xs[1]), 2))
    for k in range(1, 10):  # Monte Carlo: the guide draws x_{k+1}, x_k's generative parent, from x_k
        log_q = ref.normal_log_density(xs[k], {"loc": math.sqrt(1 - B) * xs[k - 1], "scale": scale})
        total = total + log_q - ref.normal_log_density(xs[k], ref.normal_from_raw(reverse(xs[k + 1]), 2))
    loc = math.sqrt(1 - B) * xs[9]  # x10 has no generative parent: KL(q || N(0, I)) in closed form
    total = total + (0.5 * (scale**2 + loc**2 - 1 - torch.log(scale**2))).sum(-1)
    largest = float((terms["-elbo"] - total.mean()).abs())
    assert largest < 1e-4, largest


def test_generated_code_equals_the_interpreter() -> None:
    generated, interpreted = _ddpm(), _ddpm(interpret=True)
    x0 = _data(8)
    a = generated.infer({"x0": x0}, generator=torch.Generator().manual_seed(1))
    b = interpreted.infer({"x0": x0}, generator=torch.Generator().manual_seed(1))
    for name in (f"x{k}" for k in range(1, 11)):
        assert torch.equal(a.values[name], b.values[name]), name
        assert torch.equal(a.params[name]["loc"], b.params[name]["loc"]), name
    sa = generated.sample(8, generator=torch.Generator().manual_seed(2))
    sb = interpreted.sample(8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(sa.values["x0"], sb.values["x0"])


SCAN = """
model ar {
  const A = 0.9
  time t in 1..6
  latent x[t] : Normal[3]
  init x = 0
  observed y[t] : Normal[3](scale = 0.5)
  x[t] ~ Normal(loc = A * x[t-1] + tanh(x[t-1]) / 2, scale = softplus(-x[t-1]) + 0.1)
  x[t] -> y[t] via linear
}
"""


@pytest.mark.parametrize("interpret", [False, True])
def test_a_scan_writes_each_step_out(interpret: bool) -> None:
    """x[t] from x[t-1] by its expressions, step by step, as written by hand."""
    torch.manual_seed(0)
    module = compile_model(dgmc.loads(SCAN))
    module.interpret = interpret
    trace = module.sample(4, generator=torch.Generator().manual_seed(3))
    eps = trace.noise["x"]
    previous = torch.zeros(4, 3)
    for t in range(6):
        loc = 0.9 * previous + torch.tanh(previous) / 2
        scale = torch.nn.functional.softplus(-previous) + 0.1
        expected = loc + scale * eps[:, t]
        assert torch.allclose(trace.values["x"][:, t], expected, atol=1e-6), t
        previous = expected


@pytest.mark.parametrize("text", [
    "x ~ Normal(loc = -(-z) - -2 * (z - (1 - z)) / (2 * z), scale = sqrt(exp(z)) + 1)",
    "x ~ Normal(loc = z - z - z, scale = abs(z * (z * z)) + 0.5)",
])
def test_fmt_keeps_every_expression_tree(text: str) -> None:
    spec = f"model m {{ latent z : Normal[1](loc = 0, scale = 1)  observed x : Normal[1]  {text} }}"
    formatted = format_text(spec)
    assert format_text(formatted) == formatted
    one, two = dgmc.loads(spec).node("x"), dgmc.loads(formatted).node("x")
    assert {k: e.text() for k, e in one.exprs.items()} == {k: e.text() for k, e in two.exprs.items()}
