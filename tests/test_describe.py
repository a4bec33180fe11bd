"""`dgmc compile --emit summary|code`: what a user reads about a compiled model."""

from __future__ import annotations

from pathlib import Path

import dgmc
from dgmc.cli import main
from dgmc.lower import compile_model
from dgmc.report.describe import code, summary

ROOT = Path(__file__).resolve().parents[1]


def test_summary_counts_match_the_compiled_modules() -> None:
    model = dgmc.load(ROOT / "specs/hm.dgm")
    table = summary(model)
    teacher, student = compile_model(model), compile_model(model, 0.25)
    total = table.splitlines()[-1].split()
    assert total == ["total", f"{sum(p.numel() for p in teacher.generative_parameters()):,}",
                     f"{sum(p.numel() for p in student.generative_parameters()):,}",
                     f"{sum(p.numel() for p in teacher.guide_parameters()):,}"]
    assert "student x0.25" in table.splitlines()[0]
    assert any(line.split()[:4] == ["y2", "observed", "Normal[1]", "mlp(8)"] for line in table.splitlines())


def test_code_shows_every_node_of_both_passes_and_the_time_loop() -> None:
    text = code(dgmc.load(ROOT / "specs/vrnn.dgm"))
    run, infer = text.split("def infer")
    assert "for t in range(40):" in run and "h_prev = self.initial('h', batch)" in run
    assert "z_loc, z_scale = p_z(h_prev).split(8, dim=-1)" in run
    assert "z_scale = torch.nn.functional.softplus(z_scale) + 0.0001" in run
    assert "h, h_carry = p_h_cell.step(p_h, h_in, h_prev, h_carry)" in run
    assert "# line 16: x[t], z[t], h[t-1] -> h[t] via gru  # recurrence" in run
    assert "x = given['x'][:, t]" in infer and "z_loc, z_scale = q_z(z_in).split(8, dim=-1)" in infer


def test_code_of_a_student_names_its_width(capsys) -> None:
    assert main(["compile", str(ROOT / "specs/hm.dgm"), "--emit", "code", "--width", "0.25"]) == 0
    out = capsys.readouterr().out
    student = compile_model(dgmc.load(ROOT / "specs/hm.dgm"), 0.25)
    assert out.startswith(f'"""hm, student (width 0.25): {sum(p.numel() for p in student.parameters())} parameters.')
    assert "y2_loc = p_y2(z3)" in out and "y2_scale = anchor.new_full((batch, 1), 0.5)" in out
