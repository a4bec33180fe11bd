"""`dgmc check --pedantic`: valid distillations that are likely not what was meant."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dgmc
from dgmc.check.pedantic import pedantic
from dgmc.cli import main

ROOT = Path(__file__).resolve().parents[1]


def messages(text: str) -> list[str]:
    return [d.message for d in pedantic(dgmc.loads(text))]


def test_a_student_as_large_as_its_teacher_and_unused_lambdas_are_named() -> None:
    found = messages("""model lin {
      latent z : Normal[2](loc = 0, scale = 1)
      observed x : Bernoulli[3]
      z -> x via linear
      guide { x -> z }
      distill(width = 0.5, lambda = [1, 2], method = [local, scratch])
    }""")
    assert any("as many as the teacher" in m for m in found)
    assert any("no run uses them" in m for m in found)


def test_reverse_kl_estimated_on_a_discrete_sample_is_named() -> None:
    from dgmc.families import FAMILIES

    dgmc.register_family(replace(FAMILIES["Bernoulli"], name="OpenBernoulli", closed={}))  # no closed form
    try:
        found = messages("""model coins {
          latent c : OpenBernoulli[3]
          observed x : Normal[2]
          c -> x via mlp(8)
          guide { x -> c }
          distill(width = 0.5) { c : reverse_kl }
        }""")
    finally:
        FAMILIES.unregister("OpenBernoulli")
    assert [m for m in found if "'c' (OpenBernoulli) is distilled by reverse_kl" in m]


def test_discrete_latents_under_ours_with_lambda_0_and_a_quiet_spec(capsys) -> None:
    assert main(["check", "--pedantic", str(ROOT / "specs/hm.dgm")]) == 0
    assert "Latents z4, z3, z2, z1 are discrete: under ours with lambda 0" in capsys.readouterr().err
    assert main(["check", "--pedantic", str(ROOT / "specs/vae.dgm")]) == 0
    assert "Warning" not in capsys.readouterr().err
