"""`--tensorboard`: every logged term of every step as TensorBoard scalars."""

from __future__ import annotations

from pathlib import Path

import pytest

from dgmc.cli import main
from dgmc.training import loop

ROOT = Path(__file__).resolve().parents[1]


def test_train_writes_every_term_of_every_step(tmp_path: Path) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    try:
        assert main(["train", str(ROOT / "specs/vae.dgm"), "--out", str(tmp_path), "--quick", "--no-progress",
                     "--tensorboard"]) == 0
    finally:
        loop.scalars_to(None)
    (run,) = (tmp_path / "tensorboard").iterdir()
    assert run.name == "teacher"
    events = accumulator.EventAccumulator(str(run))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss", "nll[x]", "kl[z]", "-elbo"}
    steps = [e.step for e in events.Scalars("kl[z]")]
    assert steps == list(range(1, loop.QUICK_STEPS + 1))
