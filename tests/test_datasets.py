"""Loading the built-in datasets offline into tensors: shapes, preprocessing, the split, the
packaged CSV, mnist1d's cache, and errors a user can cause."""

from __future__ import annotations

import csv
import hashlib
import random
import socket
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import dgmc
from dgmc import datasets
from dgmc.datasets import DATASETS, DataError, Split, load_split
from dgmc.families import DOMAINS

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.dgm"))


def model(data: str, body: str, time: str = "") -> dgmc.Model:
    return dgmc.loads(f"model m {{\n{time}\ndata {data}\n{body}\n}}\n")


DIGITS_PLAIN = ("digits { x = pixels, c = label }", "input c : OneHot[10]\nobserved x : Normal[64]\nc -> x")
FAITHFUL_PLAIN = ("old_faithful { y1 = eruptions, y2 = waiting }",
                  "latent z : Normal[1]\nobserved y1 : Normal[1]\nobserved y2 : Normal[1]\nz -> y1, y2")


def sequence_model(steps: int, size: int, flags: str = "") -> dgmc.Model:
    return model(f"mnist1d{flags} {{ x = signal }}", f"latent z[t] : Normal[2]\nobserved x[t] : Normal[{size}]\n"
                 "z[t] -> x[t]", time=f"time t in 1..{steps}")


def fingerprints(*tensors: torch.Tensor) -> list[bytes]:
    """One bytes key per row, of all the given tensors' values in that row."""
    flat = [t.reshape(len(t), -1).numpy().astype(np.float64) for t in tensors]
    return [row.tobytes() for row in np.concatenate(flat, axis=1)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_loads_with_the_right_shapes_and_values(spec: Path) -> None:
    m = dgmc.load(spec)
    assert m.data is not None
    dataset = DATASETS[m.data.dataset]
    split = load_split(m)
    assert set(split.train) == set(split.test) == set(m.data.columns)
    assert set(m.data.columns) == {n.name for n in m.of_kind("observed", "input")} | set(m.bound_latents())
    for part in ("train", "test"):
        rows = split.rows(part)
        labels = getattr(split, f"{part}_labels")
        if "label" in dataset.columns:
            assert labels is not None and labels.dtype == torch.int64 and labels.shape == (rows,)
        else:
            assert labels is None
        for name, tensor in getattr(split, part).items():
            node, binding = m.node(name), m.data.bindings[name]
            kept, count = labels, rows
            if part == "train" and m.data.labelled < 1 and torch.isnan(tensor).any():  # hidden labels: missing rows
                there = ~torch.isnan(tensor).any(-1)
                assert binding.columns == ("label",) and 0 < int(there.sum()) < rows
                tensor, kept, count = tensor[there], labels[there], int(there.sum())
            column = dataset.columns[binding.columns[0]]
            assert tensor.dtype == torch.float32
            domain = node.family.domain if node.family else "onehot" if column.domain == "onehot" else "real"
            assert DOMAINS[domain].contains(tensor.numpy()).all(), name
            expected = (count, m.time.steps, node.size) if node.timed and m.time else (count, node.size)
            assert tensor.shape == expected, name
            flat = tensor.reshape(count, -1)
            if column.domain == "onehot":
                assert set(flat.unique().tolist()) <= {0.0, 1.0}
                assert torch.equal(flat.sum(1), torch.ones(count))
                assert kept is not None and torch.equal(flat.argmax(1), kept)
            elif binding.transform == "scale":
                assert flat.min() >= 0 and flat.max() <= 1 and len(flat.unique()) > 2
            elif "binarize" in m.data.flags:
                assert set(flat.unique().tolist()) == {0.0, 1.0}
            elif "scale" in m.data.flags:
                assert flat.min() >= 0 and flat.max() <= 1 and len(flat.unique()) > 2
            elif "standardize" in m.data.flags and part == "train":
                assert torch.allclose(flat.mean(0), torch.zeros(flat.shape[1]), atol=1e-4)
                assert torch.allclose(flat.std(0, unbiased=False), torch.ones(flat.shape[1]), atol=1e-4)
    total = split.rows("train") + split.rows("test")
    assert split.rows("test") == round(total * m.data.test_fraction)
    if m.data.classes is None:
        assert total == dataset.rows


def test_classes_keep_only_those_labels() -> None:
    split = load_split(dgmc.load(ROOT / "specs" / "cvae.dgm"))
    labels = torch.cat([split.train_labels, split.test_labels])
    assert set(labels.tolist()) == set(range(5))
    from sklearn.datasets import load_digits

    assert len(labels) == int((load_digits().target < 5).sum())  # 901
    for part in ("train", "test"):
        onehot = getattr(split, part)["c"]
        assert not onehot[:, 5:].any() and torch.equal(onehot.argmax(1), getattr(split, f"{part}_labels"))


def test_the_split_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    m = dgmc.load(ROOT / "specs" / "classifier.dgm")
    a, b, c = load_split(m, 0), load_split(m, 0), load_split(m, 1)
    for name in a.train:
        assert torch.equal(a.train[name], b.train[name]) and torch.equal(a.test[name], b.test[name])
    assert torch.equal(a.train_labels, b.train_labels)
    assert not torch.equal(a.train["x"], c.train["x"])
    assert a.rows("test") == c.rows("test")


def digits_rows() -> list[bytes]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return fingerprints(torch.tensor(bunch.data), torch.nn.functional.one_hot(torch.tensor(bunch.target), 10))


def faithful_rows() -> list[bytes]:
    with open(ROOT / "dgmc" / "data" / "old_faithful.csv", newline="") as file:
        lines = list(csv.reader(file))[1:]
    return fingerprints(torch.tensor([[float(v) for v in line] for line in lines], dtype=torch.float32))


def mnist1d_rows() -> list[bytes]:
    return fingerprints(torch.from_numpy(datasets.DATASETS["mnist1d"].load()["signal"]).float())


@pytest.mark.parametrize(("spec", "rows", "expected"), [
    (DIGITS_PLAIN, lambda s: fingerprints(s["x"], s["c"]), digits_rows),
    (FAITHFUL_PLAIN, lambda s: fingerprints(s["y1"], s["y2"]), faithful_rows),
    (("mnist1d { x = signal }", "latent z[t] : Normal[1]\nobserved x[t] : Normal[1]\nz[t] -> x[t]"),
     lambda s: fingerprints(s["x"]), mnist1d_rows),
], ids=["digits", "old_faithful", "mnist1d"])
@pytest.mark.parametrize("seed", [0, 7])
def test_train_and_test_are_disjoint_and_hold_every_row(
    spec: tuple[str, str], rows: Callable[[dict[str, torch.Tensor]], list[bytes]],
    expected: Callable[[], list[bytes]], seed: int,
) -> None:
    name = spec[0].split()[0]
    time = "time t in 1..40" if name == "mnist1d" else ""
    split = load_split(model(*spec, time=time), seed)
    train, test, everything = Counter(rows(split.train)), Counter(rows(split.test)), Counter(expected())
    assert train + test == everything  # as multisets: Old Faithful repeats some rows
    if len(everything) == sum(everything.values()):  # distinct rows (digits, mnist1d): no row on both sides
        assert not set(train) & set(test)
    assert sum(everything.values()) == DATASETS[name].rows


def test_old_faithful_has_272_rows_from_the_packaged_csv() -> None:
    packaged = resources.files("dgmc") / "data" / "old_faithful.csv"
    assert packaged.is_file()
    split = load_split(model(*FAITHFUL_PLAIN))
    assert split.rows("train") + split.rows("test") == 272
    assert Counter(fingerprints(split.train["y1"], split.train["y2"])) + Counter(
        fingerprints(split.test["y1"], split.test["y2"])) == Counter(faithful_rows())


def test_the_wheel_carries_the_csv_and_loads_it(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("dgmc-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        assert "dgmc/data/old_faithful.csv" in archive.namelist()
        archive.extractall(tmp_path / "site")
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import dgmc.datasets as d;"
             "assert d.__file__.startswith(sys.argv[1]); print(len(d.DATASETS['old_faithful'].load()['waiting']))")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "site")], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "272"


def test_standardize_uses_train_statistics_for_both_parts() -> None:
    body = "observed x : Normal[64]"
    scaled = load_split(model("digits(scale) { x = pixels }", body), 3)
    standard = load_split(model("digits(standardize) { x = pixels }", body), 3)
    raw_train, raw_test = scaled.train["x"].double() * 16, scaled.test["x"].double() * 16
    mean, std = raw_train.mean(0), raw_train.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))  # constant pixels (the corners) keep std 1
    assert torch.allclose(standard.train["x"].double(), (raw_train - mean) / std, atol=1e-5)
    assert torch.allclose(standard.test["x"].double(), (raw_test - mean) / std, atol=1e-5)
    assert (raw_train.std(0) == 0).any()  # the case is exercised


def test_a_sequence_column_becomes_consecutive_chunks_per_step() -> None:
    flat = load_split(sequence_model(40, 1)).train["x"].reshape(-1, 40)
    for steps, size in ((20, 2), (8, 5), (1, 40)):
        chunked = load_split(sequence_model(steps, size)).train["x"]
        assert chunked.shape == (len(flat), steps, size)
        for t in range(steps):
            assert torch.equal(chunked[:, t, :], flat[:, t * size:(t + 1) * size])


def test_mnist1d_standardizes_per_time_step() -> None:
    x = load_split(sequence_model(20, 2, "(standardize)")).train["x"].reshape(-1, 40)
    assert torch.allclose(x.mean(0), torch.zeros(40), atol=1e-4)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(40), atol=1e-4)


def test_mnist1d_is_generated_offline_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mnist1d.data
    import requests

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("dgmc tried to reach the network")

    monkeypatch.setenv("DGMC_CACHE", str(tmp_path))
    for target, name in ((requests, "get"), (requests.Session, "request"), (socket, "create_connection"),
                         (socket.socket, "connect"), (mnist1d.data, "get_dataset")):
        monkeypatch.setattr(target, name, no_network)
    random.seed(5)
    np.random.seed(5)
    before = random.random(), np.random.rand()
    random.seed(5)
    np.random.seed(5)
    first = load_split(sequence_model(40, 1))
    assert (random.random(), np.random.rand()) == before  # the caller's random streams are untouched
    cached = list(tmp_path.iterdir())
    assert len(cached) == 1 and cached[0].suffix == ".npz"  # no temporary file left behind

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_network)  # now only the cache can answer
    again = load_split(sequence_model(40, 1))
    assert torch.equal(first.train["x"], again.train["x"]) and torch.equal(first.test_labels, again.test_labels)
    assert first.rows("train") + first.rows("test") == 5000


def test_user_mistakes_raise_data_error_naming_node_and_column() -> None:
    with pytest.raises(DataError, match="no data statement"):
        load_split(dgmc.loads("model m { observed x : Normal[1] }"))
    cvae = dgmc.load(ROOT / "specs" / "cvae.dgm")
    assert cvae.data is not None
    nothing = cvae.model_copy(update={"data": cvae.data.model_copy(update={"classes": ()})})
    with pytest.raises(DataError, match=r"digits holds 0 row\(s\) of classes \[\]: a split into train and test"):
        load_split(nothing)
    bindings = dict(cvae.data.bindings)
    bindings["x"] = bindings["x"].model_copy(update={"columns": ("label",)})
    swapped = cvae.model_copy(update={"data": cvae.data.model_copy(update={"bindings": bindings})})
    with pytest.raises(DataError, match=r"'x' takes 64 values per row, but column 'label' of digits gives 10"):
        load_split(swapped)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        Split({}, {}, torch.zeros(1), torch.zeros(1)).rows("validation")


def test_sprites_are_rendered_bit_for_bit_over_the_full_factor_grid(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from dgmc.datasets import sprites

    monkeypatch.setenv("DGMC_CACHE", str(tmp_path))
    first = sprites.sprites()
    image = first["image"]
    assert image.shape == (11520, 1, 32, 32) and image.dtype == np.uint8 and set(np.unique(image)) == {0, 1}
    # the golden hash of every 97th image, made by this renderer (SPRITES_VERSION 1)
    assert hashlib.sha256(np.ascontiguousarray(image[::97]).tobytes()).hexdigest()[:16] == "aace09cbab9e5802"
    factors = np.concatenate([first["label"][:, None], first["scale"], first["rotation"], first["x"], first["y"]], 1)
    assert len(np.unique(factors, axis=0)) == 11520  # every combination once
    assert np.bincount(first["label"]).tolist() == [3840, 3840, 3840]
    assert image[:, 0, [0, -1], :].sum() == image[:, 0, :, [0, -1]].sum() == 0  # no shape leaves the frame
    assert len(list(tmp_path.glob("sprites-*.npz"))) == 1
    monkeypatch.setattr(sprites, "render_sprites", lambda: pytest.fail("rendered again despite the cache"))
    again = sprites.sprites()
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert "sprites" in DATASETS and DATASETS["sprites"].columns["image"].shape == (1, 32, 32)
