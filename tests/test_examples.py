"""The examples run as a user would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_tour_runs() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "api_tour.py")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "order: z4 -> z3 -> y2 -> z2 -> z1 -> y1" in out and "test -ELBO: teacher" in out
    assert "refused: 'y1' has shape (4, 2), but it is observed Normal[1]: expected (4, 1)." in out
    assert "exported:" in out and "loaded back, same samples: True" in out
