"""Golden-file tests of the checker and of the graph IR.

- `tests/bad/NN_short_name.dgm`: a small spec with one mistake (42 has several, to show
  that a check reports all of them). `NN_short_name.err` holds exactly what
  `dgmc check tests/bad/NN_short_name.dgm` prints to stderr, run from the repository root.
- `specs/*.dgm` and `tests/good/*.dgm` check without errors; `tests/golden/<stem>.ir.json`
  holds the IR dump (`model.model_dump_json(indent=2)`) of each.

After an intended change of a message or of the IR, regenerate and review the diff:

    pytest tests/test_golden.py --regen-goldens
    git diff tests/bad tests/golden
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dgmc.api import load
from dgmc.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD_DIR = ROOT / "tests" / "bad"
GOOD_DIRS = (ROOT / "specs", ROOT / "tests" / "good")
GOLDEN_DIR = ROOT / "tests" / "golden"

BAD = sorted(BAD_DIR.glob("*.dgm"))
GOOD = sorted(path for folder in GOOD_DIRS for path in folder.glob("*.dgm"))

HEADER = re.compile(
    r"(?P<title>Syntax error|Semantic error|Warning) in '(?P<file>[^']+)', "
    r"line (?P<line>\d+), column (?P<column>\d+) to (?:line (?P<end_line>\d+), column )?(?P<end>\d+):"
)
RULE = "   " + "-" * 49
SOURCE_LINE = re.compile(r"   +(?P<number>\d+):(?:  (?P<text>.*))?")


def rel(path: Path) -> str:
    """The path as the goldens spell it: relative to the repository root, with '/'."""
    return path.relative_to(ROOT).as_posix()


def golden_of(spec: Path) -> Path:
    return GOLDEN_DIR / f"{spec.stem}.ir.json"


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so file names in messages are the relative ones."""
    monkeypatch.chdir(ROOT)


def compare_or_write(path: Path, actual: str, regen: bool) -> None:
    if regen:
        if not path.exists() or path.read_text() != actual:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual)
        return
    assert path.exists(), f"{rel(path)} is missing: run `pytest tests/test_golden.py --regen-goldens` and review it"
    assert actual == path.read_text(), f"{rel(path)} is out of date (regenerate with --regen-goldens if intended)"


# --- bad specs -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", BAD, ids=lambda p: p.stem)
def test_bad_spec_prints_its_golden_errors(spec: Path, at_root, capsys, regen_goldens: bool) -> None:
    status = main(["check", rel(spec)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert status == 1
    assert out == ""
    assert err.startswith(("Syntax error in ", "Semantic error in "))
    compare_or_write(spec.with_suffix(".err"), err, regen_goldens)


def _blocks(err: str) -> list[tuple[list[str], str]]:
    """The (frame lines, message) of each diagnostic in a rendered error."""
    parts = err.rstrip("\n").split("\n\n")
    assert len(parts) % 2 == 0, "every diagnostic is a framed excerpt, a blank line and a message"
    return [(parts[i].split("\n"), parts[i + 1]) for i in range(0, len(parts), 2)]


@pytest.mark.parametrize("spec", BAD, ids=lambda p: p.stem)
def test_bad_golden_is_located(spec: Path) -> None:
    """Each .err shows located errors: a header, the excerpt of the real source framed by
    rules, carets under the header's column, and a one-line message."""
    err_path = spec.with_suffix(".err")
    if not err_path.exists():
        pytest.skip("no .err yet (test_every_bad_spec_has_an_err reports it)")
    source = spec.read_text().splitlines()
    blocks = _blocks(err_path.read_text())
    assert any(not frame[0].startswith("Warning") for frame, _ in blocks), "at least one error"
    for frame, message in blocks:
        header = HEADER.fullmatch(frame[0])
        assert header, frame[0]
        assert header["file"] == rel(spec)
        assert frame[1] == RULE and frame[-1] == RULE
        line, column = int(header["line"]), int(header["column"])
        assert 1 <= line <= len(source) + 1
        numbered = {}
        for i, text in enumerate(frame[2:-1], start=2):
            match = SOURCE_LINE.fullmatch(text)
            if match:
                number = int(match["number"])
                numbered[number] = i
                expected = source[number - 1].rstrip() if number <= len(source) else ""
                assert (match["text"] or "") == expected, f"the excerpt misquotes line {number}"
        assert line in numbered, f"the excerpt does not show line {line}"
        carets = frame[numbered[line] + 1]
        prefix = frame[numbered[line]].index(":") + 3
        assert carets.strip(" ") and set(carets.strip(" ")) == {"^"}, "carets under the error's line"
        assert carets.index("^") == prefix + column - 1, "carets start at the header's column"
        if header["end_line"] is None:
            assert len(carets.strip(" ")) == max(1, int(header["end"]) - column + 1)
        assert "\n" not in message and message.strip() == message and message[-1] in ".?", message


def test_there_are_enough_bad_specs() -> None:
    assert len(BAD) >= 25


def test_every_bad_spec_has_an_err() -> None:
    specs = {p.stem for p in BAD}
    errs = {p.stem for p in BAD_DIR.glob("*.err")}
    assert not specs - errs, f"bad specs without an .err (run --regen-goldens): {sorted(specs - errs)}"
    assert not errs - specs, f".err files without a spec (delete them): {sorted(errs - specs)}"


def test_bad_specs_are_named_nn_short_name() -> None:
    odd = [p.name for p in BAD if not re.fullmatch(r"\d\d_[a-z0-9_]+\.dgm", p.name)]
    assert not odd
    numbers = [p.name[:2] for p in BAD]
    assert len(set(numbers)) == len(numbers), "each number once"


def test_the_several_errors_spec_reports_all_of_them() -> None:
    """One run reports every error of a check, not only the first."""
    (spec,) = BAD_DIR.glob("*_several_errors.dgm")
    blocks = _blocks(spec.with_suffix(".err").read_text())
    assert len(blocks) >= 3


# --- good and shipped specs --------------------------------------------------------------


@pytest.mark.parametrize("spec", GOOD, ids=rel)
def test_good_spec_checks_and_matches_its_ir_golden(spec: Path, at_root, capsys, regen_goldens: bool) -> None:
    status = main(["check", rel(spec)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert status == 0, err
    assert not re.search(r"^(Syntax|Semantic) error", err, re.MULTILINE), err
    assert out.startswith(f"{rel(spec)}: ok (")
    compare_or_write(golden_of(spec), load(spec).model_dump_json(indent=2) + "\n", regen_goldens)


def test_good_stems_are_unique() -> None:
    """Goldens are named by stem, so specs/ and tests/good/ must not share one."""
    stems = [p.stem for p in GOOD]
    assert len(set(stems)) == len(stems)


def test_every_golden_belongs_to_a_spec() -> None:
    stems = {p.stem for p in GOOD}
    orphans = sorted(p.name for p in GOLDEN_DIR.glob("*.ir.json") if p.name.removesuffix(".ir.json") not in stems)
    assert not orphans, f"goldens without a spec (delete them): {orphans}"
