"""The installed wheel carries the grammar (it lives in grammar/ at the top of the
repository, outside the package), and the code stays ruff-clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_grammar_and_parses_with_it(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("dgmc-*.whl"))
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        assert "dgmc/grammar/dgm.lark" in archive.namelist()
        archive.extractall(unpacked)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import dgmc, dgmc.frontend.parse as p;"
        "assert dgmc.__file__.startswith(sys.argv[1]), dgmc.__file__;"
        "assert str(p.grammar_path()).startswith(sys.argv[1]), p.grammar_path();"
        "print(dgmc.loads('model m { observed x : Normal[1] }').order)"
    )
    # run away from the source tree, so that its grammar/ cannot be found by accident
    result = subprocess.run([sys.executable, "-c", probe, str(unpacked)], cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "('x',)"


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "dgmc", "tests", "bench", "examples"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
