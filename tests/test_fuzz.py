"""Short runs of the fuzz scripts in bench/ (each runs 10,000+ inputs): grammar-aware
mutations of the shipped specs, character mutations and random text raise nothing but
`DgmError`; damaged and foreign checkpoints nothing but `CheckpointError`."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import dgmc

ROOT = Path(__file__).resolve().parents[1]


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzzed_inputs_raise_only_dgm_error() -> None:
    fuzz = _bench_module("fuzz_front_end")
    kinds = set()
    for kind, text in fuzz.inputs(random.Random(2026), 1500):
        kinds.add(kind)
        try:
            fuzz.front_end(text)
        except dgmc.DgmError as error:
            assert error.diagnostics and "Traceback" not in error.render()
    assert kinds == set(fuzz.KINDS)


def test_fuzzed_checkpoints_raise_only_checkpoint_error(tmp_path: Path) -> None:
    """A short run of bench/fuzz_checkpoint.py (which runs 10,000+ inputs)."""
    fuzz = _bench_module("fuzz_checkpoint")
    made = fuzz.originals()
    hm = dgmc.load(fuzz.HM)
    models = {"teacher": dgmc.lower.compile_model(hm), "student": dgmc.lower.compile_model(hm, fuzz.WIDTH)}
    outcomes = set()
    path = tmp_path / "fuzz.pt"
    for kind, target, data in fuzz.inputs(random.Random(2026), 150, made):
        path.write_bytes(data)
        outcomes.add((kind, fuzz.attempt(path, target, models)))
    assert {kind for kind, _ in outcomes} == set(fuzz.KINDS)
    assert ("other", "loaded") in outcomes and ("truncated", "refused") in outcomes
