"""`dgmc fmt`: canonical, idempotent, meaning-preserving, comment-keeping; and the
front end never fails with anything but `DgmError`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import specs

import dgmc
from dgmc.cli import main
from dgmc.core.base import without_spans
from dgmc.frontend.fmt import format_text
from dgmc.frontend.parse import comments, parse

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "specs").glob("*.dgm"))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def syntax_ir(text: str):
    return without_spans(parse(text).model_dump(mode="json"))


def graph_ir(text: str):
    return without_spans(dgmc.loads(text).model_dump(mode="json"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_specs_are_formatted(path: Path) -> None:
    assert main(["fmt", "--check", str(path)]) == 0


def test_messy_layout_becomes_canonical_and_keeps_every_comment() -> None:
    messy = (
        "# head\n\nmodel   m{const Z=4   # size\nlatent z:Normal[Z]( loc=0,scale = 1 ) "
        "observed x : Bernoulli[ 8 ]\n\n\n  z->x via mlp( 16,act=tanh)\n"
        "  guide { # inference\n     x -> z   # amortized\n  }\n  distill ( width = [ 0.5 , 0.25 ] ) { z : w2\n"
        "  x via\n  # in the middle\n   linear }\n}\n# tail\n"
    )
    expected = (
        "# head\n\nmodel m {\n  const Z = 4  # size\n  latent z : Normal[Z](loc = 0, scale = 1)\n"
        "  observed x : Bernoulli[8]\n\n  z -> x via mlp(16, act = tanh)\n  guide {  # inference\n"
        "    x -> z  # amortized\n  }\n  distill(width = [0.5, 0.25]) {\n    z : w2\n"
        "    x via linear  # in the middle\n  }\n}\n# tail\n"
    )
    assert format_text(messy) == expected


def test_fmt_check_flags_unformatted_file_and_fmt_rewrites_it(tmp_path: Path, capsys) -> None:
    path = tmp_path / "m.dgm"
    path.write_text("model m { observed x : Normal[1] }")
    assert main(["fmt", "--check", str(path)]) == 1
    assert "not formatted" in capsys.readouterr().out
    assert main(["fmt", str(path)]) == 0
    assert path.read_text() == "model m {\n  observed x : Normal[1]\n}\n"
    assert main(["fmt", "--check", str(path)]) == 0


@FAST
@given(specs())
def test_generated_specs_check_and_order_respects_every_edge(text: str) -> None:
    model = dgmc.loads(text)
    position = {name: i for i, name in enumerate(model.order)}
    for node in model.nodes:
        for parent in node.parents:
            if parent.lag == 0:
                assert position[parent.name] < position[node.name]
    dgmc.lint(model)


@FAST
@given(specs())
def test_fmt_round_trips_and_is_idempotent(text: str) -> None:
    formatted = format_text(text)
    assert format_text(formatted) == formatted
    assert syntax_ir(formatted) == syntax_ir(text)
    assert graph_ir(formatted) == graph_ir(text)
    # every comment survives, in order (comments trailing one line are joined on it)
    assert " ".join(c[2] for c in comments(formatted)) == " ".join(c[2] for c in comments(text))


def _mutations(draw_text: str, data) -> str:
    kind = data.draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
    start = data.draw(st.integers(0, len(draw_text)))
    end = data.draw(st.integers(start, min(len(draw_text), start + 12)))
    piece = data.draw(st.sampled_from(
        ["", "->", "[t-1]", "[t+1]", "{", "}", "(", ")", ",", "=", "#", "\n", "via", "latent", "z", "0",
         "-1e999", "1e999", "..", "[", "]", "mlp(", "time t in 3..1", "99999999999999999999", "é", "\x00"]))
    if kind == "delete":
        return draw_text[:start] + draw_text[end:]
    if kind == "insert":
        return draw_text[:start] + piece + draw_text[start:]
    if kind == "replace":
        return draw_text[:start] + piece + draw_text[end:]
    return draw_text[:end] + draw_text[start:end] + draw_text[end:]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([p.read_text() for p in SHIPPED]), st.data())
def test_mutated_specs_raise_only_dgm_error(text: str, data) -> None:
    for _ in range(data.draw(st.integers(1, 3))):
        text = _mutations(text, data)
    try:
        dgmc.loads(text)
        format_text(text)
    except dgmc.DgmError as error:
        assert error.diagnostics and error.render()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.text(alphabet="model{}[]()->,=:#.t0123456789 latentxyzvia\n", max_size=120))
def test_arbitrary_text_raises_only_dgm_error(text: str) -> None:
    try:
        dgmc.loads(text)
    except dgmc.DgmError as error:
        assert error.diagnostics and error.render()
