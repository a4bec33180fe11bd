"""The ELBO dgmc computes is the ELBO, E_q[log p(x, z) - log q(z | x)], whatever the
order the guide draws its latents in (`dgmc.losses.elbo`).

- Statistically, on every shipped spec with a guide and on random specs with bottom-up,
  top-down and mixed guides: the generated -ELBO and a brute-force all-Monte-Carlo
  -ELBO written here, on the same guide noise, differ per row by a variable whose mean
  must be 0 (the closed-form KLs replace their one-sample terms only where that keeps
  the expectation). The test: |mean| <= 5 standard errors over the rows (plus 1e-4 nats
  of float slack), a false alarm about once in 3.5 million; a model where the old rule
  (closed form everywhere) is wrong by a known amount shows the test sees a bias.
- Exactly, on small all-discrete models, by enumerating every joint value of the
  latents: E_q of the generated -ELBO equals sum_z q(z | x) [log q(z | x) - log p(x, z)].
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import GUIDE_ORDERS, specs

import dgmc
import dgmc.lower.generate_losses as generate_losses
from dgmc.cli import main
from dgmc.losses.elbo import LatentTerm, latent_terms
from dgmc.lower import CompiledModel, compile_model
from dgmc.training.objectives import _bound_only, _elbo_parts

ROOT = Path(__file__).resolve().parents[1]
GUIDED = [p for p in sorted((ROOT / "specs").glob("*.dgm"))
          if dgmc.load(p).fully_guided() and not dgmc.load(p).train.enumerate]
"""The shipped specs whose every latent is sampled from a guide (those that sum latents
out are held to the sampled ELBO in tests/test_enumerate.py)."""
ROWS = 2048
IMAGE_ROWS = 256
"""Rows of a model with shaped (image) nodes, whose passes cost far more per row."""
SIGMAS = 5.0

CHAIN = """
model chain {
  latent z2 : Normal[2](loc = 0, scale = 1)
  latent z1 : Normal[2]
  observed x : Normal[2](scale = 0.5)
  z2 -> z1 via linear
  z1 -> x via linear
  guide {
    x -> z1 via linear
    z1 -> z2 via linear
  }
}
"""
"""A top-down linear-Gaussian chain with a bottom-up guide: z1's generative parent z2 is
drawn from z1."""

SBN = """
model sbn {
  latent z2 : Bernoulli[2]
  latent z1 : Bernoulli[3]
  observed x : Bernoulli[4]
  z2 -> z1 via linear
  z1 -> x via linear
  guide {
    x -> z1 via linear
    GUIDE_OF_Z2
  }
}
"""
"""A sigmoid belief net; its guide of z2 is filled in per test (bottom-up or top-down)."""


def brute_force(module: CompiledModel, data: dict[str, torch.Tensor], noise: dict[str, torch.Tensor]
                ) -> torch.Tensor:
    """-[log p(x, z) - log q(z | x)] per row on the guide's sample: every node's
    log-density, nothing integrated."""
    q = module.infer(data, noise)
    p = module.run({}, given=q.values)
    log_p = sum(module.log_prob(n.name, p) for n in module.ir.of_kind("observed", "latent"))
    log_q = sum(module.log_prob(n.name, q) for n in module.ir.of_kind("latent"))
    return log_q - log_p


def gap(module: CompiledModel, seed: int = 0) -> tuple[float, float]:
    """Mean and standard error over rows of (generated -ELBO - brute force) on the same
    guide noise, the data drawn from the model; NaN where a random chain overflowed."""
    model = module.ir
    rows = IMAGE_ROWS if any(n.shape for n in model.nodes) else ROWS
    with torch.no_grad():
        inputs = {n.name: torch.rand(rows, *((model.time.steps,) if n.timed else ()), n.size,
                                     generator=torch.Generator().manual_seed(seed)).round()
                  for n in model.of_kind("input")}
        sample = module.sample(rows, inputs, torch.Generator().manual_seed(seed + 1))
        if not all(_finite(v) for v in (*sample.values.values(), *sample.params.values())):
            return float("nan"), float("nan")  # the chain overflowed: its densities cannot be built
        data = {**inputs, **{n.name: sample.values[n.name] for n in model.of_kind("observed")}}
        noise = module.draw(rows, torch.Generator().manual_seed(seed + 2), guide=True)
        generated = sum(_bound_only(module.elbo_parts(data, None, noise)).values())
        difference = generated - brute_force(module, data, noise)
    if not torch.isfinite(difference).all():
        return float("nan"), float("nan")
    return float(difference.mean()), float(difference.std() / rows ** 0.5)


def _finite(value: torch.Tensor | dict[str, torch.Tensor]) -> bool:
    """Every entry of a value (or of a dict of parameters) is finite."""
    tensors = value.values() if isinstance(value, dict) else (value,)
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def assert_unbiased(module: CompiledModel, random_spec: bool = False) -> None:
    mean, error = gap(module)
    if random_spec:
        assume(mean == mean)  # a random chain may overflow (a shipped spec may not: NaN fails below)
    assert abs(mean) <= SIGMAS * error + 1e-4, f"{module.ir.name}: bias {mean:.4g} +- {error:.2g}"


@pytest.mark.parametrize("path", GUIDED, ids=lambda p: p.stem)
def test_the_generated_elbo_is_unbiased_on_every_shipped_spec(path: Path) -> None:
    torch.manual_seed(0)
    assert_unbiased(compile_model(dgmc.load(path)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.sampled_from(GUIDE_ORDERS).flatmap(lambda order: specs(guides=order)))
def test_the_generated_elbo_is_unbiased_on_random_guides(text: str) -> None:
    model = dgmc.loads(text)
    assume(model.fully_guided() and model.of_kind("observed", "input"))
    torch.manual_seed(0)
    assert_unbiased(compile_model(model), random_spec=True)


def chain() -> CompiledModel:
    """CHAIN with strong dependences: p(z1 | z2) = N(3 z2, 1) and q(z2 | z1) centred on z1,
    so that holding z2 while integrating z1 is far off."""
    module = compile_model(dgmc.loads(CHAIN))
    with torch.no_grad():
        for key, gain in (("p_z1", 3.0), ("q_z2", 1.0), ("q_z1", 1.0), ("p_x", 1.0)):
            layer = module.nets[key]
            layer = layer if isinstance(layer, torch.nn.Linear) else next(
                m for m in layer.modules() if isinstance(m, torch.nn.Linear))
            layer.weight.zero_()
            layer.bias.zero_()
            size = layer.weight.shape[1]
            layer.weight[:size, :size] = gain * torch.eye(size)  # the loc rows; the scale rows stay softplus(0)
    return module


def all_closed(model) -> dict[str, LatentTerm]:
    """The rule before this fix: every latent's closed-form KL, whatever the guide."""
    return {name: LatentTerm(name, closed=True) for name in latent_terms(model)}


def test_the_rule_marks_latents_whose_parents_the_guide_draws_from_them() -> None:
    terms = latent_terms(dgmc.loads(CHAIN))
    assert terms["z1"] == LatentTerm("z1", closed=False, drawn_from=("z2",))
    assert terms["z2"].closed
    hvae = latent_terms(dgmc.load(ROOT / "specs/hvae.dgm"))
    assert [hvae[z].closed for z in ("z3", "z2", "z1")] == [True, False, False]
    assert all(t.closed for t in latent_terms(dgmc.load(ROOT / "specs/vae.dgm")).values())
    assert all(t.closed for t in latent_terms(dgmc.load(ROOT / "specs/vrnn.dgm")).values())  # lagged parents


def test_the_test_sees_the_bias_of_closed_forms_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_unbiased(chain())
    monkeypatch.setattr(generate_losses, "latent_terms", all_closed)
    mean, error = gap(chain())
    assert abs(mean) > 2 * SIGMAS * error, (mean, error)


def enumerated(module: CompiledModel, x: torch.Tensor) -> tuple[float, float]:
    """E_q of the generated -ELBO and the exact -ELBO, by summing over every joint value
    of the (Bernoulli) latents for the one data row `x`."""
    latents = module.ir.of_kind("latent")
    values = torch.tensor(list(itertools.product((0.0, 1.0), repeat=sum(n.size for n in latents))))
    split = dict(zip((n.name for n in latents), values.split([n.size for n in latents], dim=1), strict=True))
    data = {"x": x.expand(len(values), -1), **split}
    with torch.no_grad():
        q = module.infer(data)
        log_q = sum(module.log_prob(n.name, q) for n in latents)
        weight = log_q.exp()
        assert float(weight.sum()) == pytest.approx(1.0, abs=1e-5)
        p = module.run({}, given=q.values)
        exact = float((weight * (log_q - sum(module.log_prob(n.name, p) for n in module.ir.nodes
                                             if n.kind != "deterministic"))).sum())
        generated = float((weight * sum(_bound_only(module.elbo_parts(data)).values())).sum())
    return generated, exact


@pytest.mark.parametrize("guide_of_z2", ["z1 -> z2 via linear", "x -> z2 via linear", "x, z1 -> z2 via linear"],
                         ids=["bottom_up", "from_data", "mixed"])
def test_the_generated_elbo_is_exact_by_enumeration(guide_of_z2: str) -> None:
    module = compile_model(dgmc.loads(SBN.replace("GUIDE_OF_Z2", guide_of_z2)))
    with torch.no_grad():
        for parameter in module.parameters():  # strong dependences, so that a wrong rule shows
            parameter.copy_(3 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(7)))
    for x in ([0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]):
        generated, exact = enumerated(module, torch.tensor([x]))
        assert generated == pytest.approx(exact, rel=1e-5, abs=1e-5)


def test_enumeration_sees_the_bias_of_closed_forms_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate_losses, "latent_terms", all_closed)
    module = compile_model(dgmc.loads(SBN.replace("GUIDE_OF_Z2", "z1 -> z2 via linear")))
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(3 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(7)))
    generated, exact = enumerated(module, torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    assert abs(generated - exact) > 0.05


def test_the_reference_follows_the_same_rule() -> None:
    """The interpreted objective (the reference the generated code is tested against
    elsewhere) and the students' ELBO through a borrowed guide use the same terms."""
    module = chain()
    data = {"x": torch.randn(5, 2, generator=torch.Generator().manual_seed(0))}
    generated = module.elbo_parts(data, torch.Generator().manual_seed(1))
    module.interpret = True
    for parts in (_elbo_parts(module, data, torch.Generator().manual_seed(1)),
                  _elbo_parts(module, data, torch.Generator().manual_seed(1), guide=module)):
        for key, value in generated.items():
            torch.testing.assert_close(parts[key], value, rtol=0, atol=0, msg=key)


def test_emit_losses_says_which_term_is_closed_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(ROOT / "specs/hvae.dgm"), "--emit", "losses"]) == 0
    text = capsys.readouterr().out
    assert "kl[z3]  = KL(q(z3 | z2) || p(z3))  closed form" in text
    assert "kl[z1]  = log q(z1 | x) - log p(z1 | z2) on the guide's sample  Monte Carlo: the guide draws z2" in text
