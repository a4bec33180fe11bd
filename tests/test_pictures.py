"""The pictures after training: each shipped spec, untrained, gets the pictures its graph
and data call for, as valid PNGs of a sensible size, deterministically; loss curves draw
from any history (positive, signed, non-finite, empty)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import matplotlib.image
import pytest
import torch

import dgmc
from dgmc.datasets import Split, load_split
from dgmc.evaluation.pictures import write_loss_curves, write_pictures
from dgmc.lower import compile_model

SPECS = Path(__file__).resolve().parent.parent / "specs"
EXPECTED = {
    "vae": {"samples_x"}, "hvae": {"samples_x"}, "cvae": {"samples_x"},
    "hm": {"scatter"}, "vrnn": {"sequences_x"}, "classifier": {"confusion_y"},
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def assert_picture(path: Path) -> None:
    width, height = png_size(path)
    assert 400 <= width <= 2000 and 300 <= height <= 1200, (path.name, width, height)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.01, f"{path.name} is blank"


@pytest.fixture(scope="module")
def splits() -> dict[str, tuple[dgmc.ir.Model, Split]]:
    loaded = {}
    for name in EXPECTED:
        model = dgmc.load(SPECS / f"{name}.dgm")
        loaded[name] = (model, load_split(model))
    return loaded


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_spec_gets_its_pictures(name: str, splits, tmp_path: Path) -> None:
    model, split = splits[name]
    torch.manual_seed(0)
    compiled = compile_model(model)
    compiled.train()
    written = write_pictures(compiled, split, tmp_path, generator=torch.Generator().manual_seed(0),
                             history={"loss": [5.0, 4.0, 3.0]})
    assert compiled.training, "the model's mode is restored"
    stems = {p.stem for p in written}
    assert stems == {f"teacher_{s}" for s in EXPECTED[name]} | {"teacher_loss"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written), "no temp files left"
    for path in written:
        assert_picture(path)


def test_deterministic_given_the_generator(splits, tmp_path: Path) -> None:
    model, split = splits["hm"]
    torch.manual_seed(0)
    compiled = compile_model(model, width=0.25)  # a student draws the same way

    def draw(folder: str, seed: int) -> list[Path]:
        return write_pictures(compiled, split, tmp_path / folder, "student", torch.Generator().manual_seed(seed))

    first, again, other = draw("a", 3), draw("b", 3), draw("c", 4)
    assert [p.name for p in first] == ["student_scatter.png"]
    assert first[0].read_bytes() == again[0].read_bytes() != other[0].read_bytes()


def test_inputs_missing_from_the_split_mean_no_pictures(splits, tmp_path: Path) -> None:
    model, split = splits["cvae"]
    partial = Split({"x": split.train["x"]}, {"x": split.test["x"]}, None, None)
    assert write_pictures(compile_model(model), partial, tmp_path) == []


def test_small_fake_splits(splits, tmp_path: Path) -> None:
    """Fewer test rows than samples, and classes with no test row at all (their real tiles
    stay empty), still draw."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 1, 2, 2])
    x = (torch.rand(5, 64, generator=generator) > 0.5).float()
    fake = Split({"x": x, "c": torch.eye(10)[labels]}, {"x": x, "c": torch.eye(10)[labels]}, labels, labels)
    for name in ("vae", "cvae"):
        written = write_pictures(compile_model(splits[name][0]), fake, tmp_path / name, samples=9)
        assert [p.name for p in written] == ["teacher_samples_x.png"]
        assert_picture(written[0])


@pytest.mark.parametrize("history", [
    {"loss": [100 * math.exp(-i / 50) + (i % 3) for i in range(300)], "kl": [1 + (i % 5) for i in range(300)]},
    {"elbo": [-100 + i / 10 for i in range(300)], "recon": [50.0] * 150 + [float("nan")] + [40.0] * 149},
    {"only": [1.0]},
    {"all_nan": [float("nan")] * 10, "zero": [0.0, 0.0]},
    {},
])
def test_loss_curves(history: dict[str, list[float]], tmp_path: Path) -> None:
    path = write_loss_curves(history, tmp_path / "deep" / "loss.png", "teacher: training loss")
    assert path == tmp_path / "deep" / "loss.png"
    assert_picture(path)
    assert [p.name for p in path.parent.iterdir()] == ["loss.png"]


def test_a_family_without_a_mean_is_pictured_by_its_samples(tmp_path: Path) -> None:
    """RelaxedBernoulli has no mean (`Family.mean` is None): its images show samples."""
    model = dgmc.loads("""model relaxed_x {
  data digits(scale) { x = pixels }
  latent z : Normal[2](loc = 0, scale = 1)
  observed x : RelaxedBernoulli[64]
  z -> x via mlp(8)
}""")
    torch.manual_seed(0)
    written = write_pictures(compile_model(model), load_split(model), tmp_path,
                             generator=torch.Generator().manual_seed(0))
    assert [path.name for path in written] == ["teacher_samples_x.png"]
    assert_picture(written[0])
