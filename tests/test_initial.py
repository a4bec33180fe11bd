"""The draw before the first step (`init z ~ Normal(...)`, specs/ssm.dgm): z[0] is a
reparametrized sample of its own noise, the first step reads it as z[t-1], the ELBO
trains its learned parameters, and distillation has a term for it and feeds it to
`local` students. Checked against plain torch on the compiled module's own weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

import dgmc
from dgmc.distillation.distill import distillation_loss
from dgmc.families.base import MIN_SCALE
from dgmc.losses import generate
from dgmc.lower import CompiledModel, compile_model
from dgmc.training.objectives import _elbo_parts, elbo

SSM = Path(__file__).resolve().parent.parent / "specs" / "ssm.dgm"


def ssm(width: float | None = None, seed: int = 0) -> CompiledModel:
    torch.manual_seed(seed)
    model = compile_model(dgmc.load(SSM), width)
    with torch.no_grad():  # away from the zero start, so that loc and scale are told apart
        model.free["p_z[0]"].normal_()
    return model


def initial(model: CompiledModel) -> Normal:
    """The initial Normal of z, from the raw free vector [loc | raw scale]."""
    loc, raw = model.free["p_z[0]"].split(4)
    return Normal(loc, F.softplus(raw) + MIN_SCALE)


def data(batch: int = 8) -> dict[str, torch.Tensor]:
    return {"x": torch.randn(batch, 40, 1, generator=torch.Generator().manual_seed(3))}


def test_spec_names_the_draw_and_its_learned_parameters() -> None:
    model = dgmc.load(SSM)
    assert [n.name for n in model.initials()] == ["z"]
    assert model.initial_name("z") == "z[0]"
    assert model.node("z").initial == {"loc": "learned", "scale": "learned"}
    compiled = compile_model(model)
    assert compiled.owners["free.p_z[0]"] == ("z", "initial distribution")
    assert compiled.free["p_z[0]"].shape == (8,)


def test_sample_draws_z0_from_its_noise_and_the_first_step_reads_it() -> None:
    model = ssm()
    trace = model.sample(16, generator=torch.Generator().manual_seed(1))
    start = initial(model)
    eps = trace.noise["z[0]"]
    assert eps.shape == (16, 4)
    torch.testing.assert_close(trace.values["z[0]"], start.loc + start.scale * eps, rtol=0, atol=0)
    loc_1 = model.nets["p_z"](trace.values["z[0]"])
    torch.testing.assert_close(trace.params["z"]["loc"][:, 0], loc_1)
    # a student run on the same noise draws the same z[0] when its initial is the same
    student = ssm(0.5)
    with torch.no_grad():
        student.free["p_z[0]"].copy_(model.free["p_z[0]"])
    again = student.run(trace.noise)
    torch.testing.assert_close(again.values["z[0]"], trace.values["z[0]"], rtol=0, atol=0)


def test_guide_proposes_z0_from_the_initial_and_reads_it_at_the_first_step() -> None:
    model = ssm()
    post = model.infer(data(), generator=torch.Generator().manual_seed(2))
    start = initial(model)
    torch.testing.assert_close(post.values["z[0]"], start.loc + start.scale * post.noise["z[0]"], rtol=0, atol=0)
    raw = model.nets["q_z"](torch.cat([data()["x"][:, 0], post.values["z[0]"]], dim=-1))
    torch.testing.assert_close(post.params["z"]["loc"][:, 0], raw[:, :4])


def test_elbo_trains_the_initial_parameters_and_leaves_its_zero_kl_out() -> None:
    model = ssm()
    loss, terms = elbo(model, data(), torch.Generator().manual_seed(4))
    assert "kl[z[0]]" not in terms  # q(z0) is p(z0): the KL is zero
    loss.backward()
    gradient = model.free["p_z[0]"].grad
    assert gradient is not None and gradient[:4].abs().sum() > 0 and gradient[4:].abs().sum() > 0


def test_a_borrowed_guide_counts_the_kl_of_the_initials() -> None:
    teacher, student = ssm(seed=0), ssm(0.5, seed=1)
    parts = _elbo_parts(student, data(), torch.Generator().manual_seed(5), guide=teacher)
    expected = kl_divergence(initial(teacher), initial(student)).sum()
    torch.testing.assert_close(parts["kl[z[0]]"], expected.expand(8))


@pytest.mark.parametrize("method", ["ours", "local"])
def test_distillation_term_of_z0_is_the_kl_of_the_initials(method: str) -> None:
    teacher, student = ssm(seed=0), ssm(0.5, seed=1)
    terms = generate(teacher.ir, method)
    assert [t.node for t in terms][:1] == ["z[0]"] and terms[0].kind == "latent"
    _, logged = distillation_loss(teacher, student, terms, method, 8, {}, torch.Generator().manual_seed(6))
    expected = kl_divergence(initial(teacher), initial(student)).sum()
    assert logged["latent[z[0]]"] == pytest.approx(float(expected.detach()), rel=1e-5)


def test_local_feeds_the_teachers_z0_and_ours_draws_the_students_own() -> None:
    teacher, student = ssm(seed=0), ssm(0.5, seed=1)
    assert "z[0]" in teacher.fed("local") and "z[0]" not in teacher.fed("ours")
    with torch.no_grad():
        t = teacher.sample(8, generator=torch.Generator().manual_seed(7))
        local = student.run(t.noise, given={n: t.values[n] for n in teacher.fed("local")})
        ours = student.run(t.noise, given={n: t.values[n] for n in teacher.fed("ours")})
    torch.testing.assert_close(local.values["z[0]"], t.values["z[0]"], rtol=0, atol=0)
    start = initial(student)
    torch.testing.assert_close(ours.values["z[0]"], start.loc + start.scale * t.noise["z[0]"], rtol=0, atol=0)


def test_unset_initial_parameters_are_learned_and_a_fixed_initial_needs_no_term() -> None:
    text = SSM.read_text().replace("init z ~ Normal(loc = learned, scale = learned)", "init z ~ Normal(scale = 0.5)")
    model = dgmc.loads(text)
    assert model.node("z").initial == {"loc": "learned", "scale": 0.5}
    fixed = dgmc.loads(text.replace("Normal(scale = 0.5)", "Normal(loc = 0, scale = 0.5)"))
    assert "z[0]" not in [t.node for t in generate(fixed)]
    assert "p_z[0]" not in compile_model(fixed).free
