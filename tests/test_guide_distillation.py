"""A distilled student is a complete model: its guide is distilled from the teacher's
guide with the same per-node terms on the inference graph, on a stream of its own."""

from __future__ import annotations

import math
from pathlib import Path

import torch

import dgmc
from dgmc.datasets import load_split
from dgmc.distillation.distill import distill, held_out_objectives
from dgmc.losses import guide_fed, guide_terms
from dgmc.lower.runtime import kl_per_row
from dgmc.lower.trace import Trace

ROOT = Path(__file__).resolve().parents[1]
STEPS = 300


def _teacher(model: dgmc.ir.Model) -> dgmc.CompiledModel:
    torch.manual_seed(0)
    return dgmc.train(model, steps=150).eval()


def test_the_student_guide_learns_and_its_elbo_is_finite_and_below_an_untrained_guide() -> None:
    model = dgmc.load(ROOT / "specs/vae.dgm")
    teacher = _teacher(model)
    student, history = distill(model, teacher, 0.25, "ours", seed=0, steps=STEPS, progress=False)
    assert len(history["guide[z]"]) == STEPS
    assert sum(history["guide[z]"][-10:]) < sum(history["guide[z]"][:10]) / 2  # the guide's term falls
    split = load_split(model)
    own = held_out_objectives(teacher, student, split)
    assert math.isfinite(own["test_objective"]) and math.isfinite(own["test_objective_teacher_guide"])
    untrained = dgmc.compile(model, 0.25)
    untrained.load_state_dict({k: v for k, v in student.state_dict().items() if not k.startswith("nets.q_")},
                              strict=False)  # the same generative student, its guide as initialised
    assert own["test_objective"] < held_out_objectives(teacher, untrained, split)["test_objective"] - 1
    assert own["test_objective"] < own["test_objective_teacher_guide"] + 0.5  # as good a proposal as the teacher's


def test_distilling_the_guide_leaves_the_generative_student_as_it_was(monkeypatch) -> None:
    """The guide's noise has a stream of its own and its terms reach guide networks only:
    the generative weights equal those of a distillation without the guide, bit for bit."""
    model = dgmc.load(ROOT / "specs/hvae.dgm")
    teacher = _teacher(model)
    with_guide, history = distill(model, teacher, 0.1, "local", seed=1, steps=20, progress=False)
    assert "guide[z1]" in history
    monkeypatch.setattr(dgmc.ir.Model, "fully_guided", lambda self: False)  # no guide to distill
    plain, plain_history = distill(model, teacher, 0.1, "local", seed=1, steps=20, progress=False)
    assert "guide[z1]" not in plain_history
    guided = dict(with_guide.named_parameters())
    for name, parameter in plain.named_parameters():
        assert torch.equal(parameter, guided[name]) != name.startswith("nets.q_"), name


def test_guide_terms_are_the_latent_terms_and_local_feeds_the_teacher_guides_latents() -> None:
    model = dgmc.load(ROOT / "specs/hvae.dgm")
    assert [t.node for t in guide_terms(model, "ours")] == ["z3", "z2", "z1"]
    assert {t.weight for t in guide_terms(model, "ours")} == {1.0}  # lambda weighs the generative terms only
    assert {t.divergence for t in guide_terms(model, "ours")} == {"w2"}
    assert guide_fed(model, "ours") == ()
    assert set(guide_fed(model, "local")) == {"z1", "z2", "z3"}


def test_the_elbo_of_saturated_bernoulli_logits_is_finite() -> None:
    """torch's Bernoulli KL is infinite once a probability rounds to 1 in float32; the
    family's closed form, on the logits, is not."""
    model = dgmc.load(ROOT / "specs/hm.dgm")
    compiled = dgmc.compile(model, 0.25)
    q = Trace(values={"z2": torch.zeros(3, 2)}, noise={}, params={"z2": {"logits": torch.full((3, 2), -15.0)}})
    p = Trace(values={}, noise={}, params={"z2": {"logits": torch.full((3, 2), 18.0)}})
    torch_kl = torch.distributions.kl_divergence(torch.distributions.Bernoulli(logits=q.params["z2"]["logits"]),
                                                 torch.distributions.Bernoulli(logits=p.params["z2"]["logits"]))
    assert torch.isinf(torch_kl).all()
    kl = kl_per_row(compiled, "z2", q, p)
    assert kl.shape == (3,) and torch.allclose(kl, torch.full((3,), 2 * 18.0), rtol=1e-5)


FEATURES = """model features {
  data digits(binarize) { x = pixels }
  latent z : Normal[4](loc = 0, scale = 1)
  observed x : Bernoulli[64]
  deterministic r : Real[16]
  z -> x via mlp(16)
  x -> r via mlp(16)  # a feature extractor that only the guide reads
  guide { r -> z via mlp(8) }
  train elbo(steps = 20)
  distill(width = 0.5, steps = 5, seed = 0, method = ours)
}
"""


def test_a_state_only_the_guide_reads_is_the_guides_not_warned_counted_and_distilled_with_it() -> None:
    model, diagnostics = dgmc.check_text(FEATURES)
    assert not [d.message for d in diagnostics if "'r'" in d.message]  # "cannot be learned from data" no more
    teacher = dgmc.compile(model)
    assert {teacher.owners[name] for name in teacher.owners if name.startswith("nets.p_r.")} == {("r", "guide network")}
    r_params = {id(p) for p in teacher.nets["p_r"].parameters()}
    assert r_params <= {id(p) for p in teacher.guide_parameters()}
    assert not r_params & {id(p) for p in teacher.generative_parameters()}
    assert teacher.parameter_counts()["r"] == {"model": 0, "guide": 64 * 16 + 16 + 16 * 16 + 16}
    torch.manual_seed(0)
    initial = dgmc.compile(model, 0.5).nets["p_r"].state_dict()  # as distill builds the student (its seed)
    student, history = distill(model, teacher, 0.5, "ours", seed=0, steps=5, progress=False)
    assert "guide[z]" in history
    moved = [not torch.equal(value, student.nets["p_r"].state_dict()[key]) for key, value in initial.items()]
    assert all(moved)  # distilled with the guide, no longer held with the generative networks


def test_a_state_the_model_reads_stays_generative_whoever_else_reads_it() -> None:
    vrnn = dgmc.load(ROOT / "specs/vrnn.dgm")  # h is read by z, x and the guide of z
    assert dgmc.ir.order.guide_states(vrnn) == set()
    compiled = dgmc.compile(vrnn)
    assert {compiled.owners[name] for name in compiled.owners if name.startswith("nets.p_h.")} == {("h", "network")}
    edges = [("x", "r1", 0), ("r1", "r2", 0), ("r1", "s", 0), ("s", "y", 0)]
    kinds = {"x": "observed", "r1": "deterministic", "r2": "deterministic", "s": "deterministic", "y": "observed",
             "z": "latent"}
    assert dgmc.ir.order.guide_side(kinds, edges, [("r2", "z", 0)]) == {"r2"}  # r1 feeds s, which y reads
    assert dgmc.ir.order.guide_side(kinds, edges[:2], [("r2", "z", 0)]) == {"r1", "r2"}  # through another state
    assert dgmc.ir.order.guide_side(kinds, edges[:2], []) == set()  # read by nothing: not the guide's either
