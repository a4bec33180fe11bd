"""A short run of bench/fuzz_data_readers.py: mutated, header-edited, random and odd data
files and image folders make `read_table` accept them or raise a DataError that names the
input, never anything else (the script itself runs 10,000+ inputs)."""

from __future__ import annotations

import importlib.util
import random
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_data_readers", ROOT / "bench" / "fuzz_data_readers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzed_data_files_raise_only_data_error(tmp_path: Path) -> None:
    fuzz = _fuzz_module()
    outcomes = Counter(f"{kind}: {fuzz.feed(path)}" for kind, path in fuzz.inputs(random.Random(2026), 300, tmp_path))
    assert {outcome.split(":")[0] for outcome in outcomes} == {"mutated", "header", "random", "odd"}
    assert outcomes["mutated: accepted"] and outcomes["mutated: DataError"]
