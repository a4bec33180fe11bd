"""Reading spec files: UTF-8 whatever the locale, a byte-order mark accepted, bytes that are
not UTF-8 a located error, unreadable files an error that says why, `-` for stdin."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from dgmc.cli import main

ROOT = Path(__file__).resolve().parents[1]
HM = ROOT / "specs" / "hm.dgm"


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="ascii"))


def test_bytes_that_are_not_utf8_are_located_at_the_first_bad_byte(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "latin1.dgm"
    spec.write_bytes("model m {\n  latent z : Normal[2]  # café\n}\n".encode("latin-1"))
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Syntax error in '{spec}', line 2, column 30 to 30:")
    assert "byte 0xE9" in err and "Save the spec as UTF-8." in err and "Traceback" not in err
    caret_line = err.splitlines()[4]  # header, rule, line 1, line 2, carets
    assert caret_line.index("^") == err.splitlines()[3].index("caf") + 3


def test_random_bytes_are_a_syntax_error_not_a_traceback(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "noise.dgm"
    spec.write_bytes(bytes(range(256)) * 3)
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Syntax error in '{spec}', line ") and "Traceback" not in err


def test_a_byte_order_mark_is_accepted_and_the_locale_is_ignored(tmp_path: Path, capsys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")
    spec = tmp_path / "bom.dgm"
    spec.write_bytes(b"\xef\xbb\xbf" + HM.read_text().replace("# root", "# r\xf4ot").encode("utf-8"))
    assert main(["check", str(spec)]) == 0
    assert capsys.readouterr().out == f"{spec}: ok (6 nodes)\n"


@pytest.mark.parametrize("case", ["missing", "directory", "permission"])
def test_cannot_read_says_why(case: str, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    path = {"missing": tmp_path / "nothere.dgm", "directory": tmp_path}.get(case, tmp_path / "secret.dgm")
    if case == "permission":  # root reads any file, so the refusal is simulated
        path.write_text(HM.read_text())

        def refuse(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", refuse)
    why = {"missing": "no such file", "directory": "it is a directory, not a spec file",
           "permission": "permission denied"}[case]
    for command in (["check"], ["compile"], ["train", "--out", str(tmp_path / "out")]):
        assert main([command[0], str(path), *command[1:]]) == 1
        assert capsys.readouterr().err == f"dgmc: error: cannot read '{path}': {why}.\n"


def test_dash_reads_the_spec_from_standard_input(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    text = HM.read_bytes()
    _stdin(monkeypatch, text)
    assert main(["check", "-"]) == 0
    assert capsys.readouterr().out == "<stdin>: ok (6 nodes)\n"
    _stdin(monkeypatch, text)
    assert main(["compile", "-", "--emit", "order"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:2] == ["1.", "z4"]
    _stdin(monkeypatch, text)
    assert main(["render", "-", "-o", str(tmp_path / "hm.dot")]) == 0
    assert "z4 -> z3" in (tmp_path / "hm.dot").read_text().replace('"', "")


def test_fmt_of_standard_input_writes_standard_output(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, b"model  m {latent z : Normal[2](loc=0,scale=1)}")
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == "model m {\n  latent z : Normal[2](loc = 0, scale = 1)\n}\n"
    _stdin(monkeypatch, b"model  m {}")
    assert main(["fmt", "--check", "-"]) == 1
    assert capsys.readouterr().out == "<stdin>: not formatted (run `dgmc fmt -`)\n"


def test_a_syntax_error_on_standard_input_names_it(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, b"model m {\n  laten z : Normal[2]\n}\n")
    assert main(["check", "-"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Syntax error in '<stdin>', line 2, column 3 to 7:")
    assert err.rstrip().endswith("'laten' does not begin a statement. Did you mean 'latent'?")
