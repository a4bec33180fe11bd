"""A short run of bench/fuzz_front_end.py: grammar-aware mutations of the shipped specs,
character mutations and random text raise nothing but `DgmError` (the script itself runs
10,000+ inputs)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import dgmc
from dgmc.fmt import format_text

ROOT = Path(__file__).resolve().parents[1]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_front_end", ROOT / "bench" / "fuzz_front_end.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzed_inputs_raise_only_dgm_error() -> None:
    kinds = set()
    for kind, text in _fuzz_module().inputs(random.Random(2026), 1500):
        kinds.add(kind)
        try:
            dgmc.loads(text)
            format_text(text)
        except dgmc.DgmError as error:
            assert error.diagnostics and "Traceback" not in error.render()
    assert kinds == {"tokens", "chars", "splice", "random"}
