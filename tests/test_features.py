"""The Inception stand-in: a classifier trained once per dataset and split, cached, whose
penultimate layer is the metrics' feature space. Digits only (an MLP, about a second);
mnist1d's conv net takes seconds more and is covered by its shapes alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import dgmc
from dgmc.datasets import Split, load_split
from dgmc.evaluation import features
from dgmc.evaluation.features import FEATURES, Featurizer, featurizer, network

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vae() -> tuple[dgmc.Model, Split]:
    model = dgmc.load(ROOT / "specs" / "vae.dgm")
    return model, load_split(model)


@pytest.fixture(scope="module")
def trained(vae: tuple[dgmc.Model, Split], cache: Path) -> Featurizer:
    found = featurizer(*vae, "x")
    assert found is not None
    return found


def rows(split: Split, part: str = "test") -> np.ndarray:
    values = getattr(split, part)["x"]
    return values.reshape(len(values), -1).numpy()


def test_digits_features_are_64_d_and_separate_the_classes(trained: Featurizer, vae: tuple[dgmc.Model, Split]) -> None:
    values = rows(vae[1])
    found = trained(values)
    assert found.shape == (len(values), FEATURES) and found.dtype == np.float64
    assert (found >= 0).all() and found.std(axis=0).max() > 0  # ReLU units, not all dead
    assert trained.accuracy > 0.8
    assert "digits(binarize)" in trained.description and f"{trained.accuracy:.3f}" in trained.description


def test_the_second_call_loads_the_cache_without_training(
        trained: Featurizer, vae: tuple[dgmc.Model, Split], cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = list((cache / "features").glob("digits-binarize-classes-all-pixels-d64-v1-*.pt"))
    assert len(files) == 1
    monkeypatch.setattr(features, "_train", lambda *args: pytest.fail("trained again despite the cache"))
    again = featurizer(*vae, "x")
    assert again is not None and again.accuracy == trained.accuracy
    assert np.array_equal(again(rows(vae[1])), trained(rows(vae[1])))


def test_an_unreadable_cache_is_retrained_identically_without_touching_the_global_rng(
        trained: Featurizer, vae: tuple[dgmc.Model, Split], cache: Path) -> None:
    """Training is seeded: a retrained classifier gives the very same features, and the
    caller's torch random stream is where it was."""
    [path] = (cache / "features").glob("digits-binarize-classes-all-*.pt")
    path.write_bytes(b"not a checkpoint")
    state = torch.get_rng_state()
    again = featurizer(*vae, "x")
    assert torch.equal(torch.get_rng_state(), state)
    assert again is not None and np.array_equal(again(rows(vae[1])), trained(rows(vae[1])))
    assert torch.load(path, weights_only=True)["accuracy"] == again.accuracy  # overwritten, readable


def test_chosen_classes_keep_the_datasets_ten_outputs(cache: Path) -> None:
    model = dgmc.loads("model m {\n data digits(scale, classes = [3, 5]) { x = pixels }\n"
                       " latent z : Normal[2]\n observed x : Normal[64]\n z -> x\n}\n")
    found = featurizer(model, load_split(model), "x")
    assert found is not None and found.accuracy > 0.9 and "classes [3, 5]" in found.description
    [path] = (cache / "features").glob("digits-scale-classes-3+5-pixels-*.pt")
    assert torch.load(path, weights_only=True)["state"]["1.weight"].shape == (10, FEATURES)


def test_a_dataset_without_labels_has_no_featurizer() -> None:
    model = dgmc.load(ROOT / "specs" / "hm.dgm")
    assert featurizer(model, load_split(model), "y1") is None


def test_errors_name_the_problem(trained: Featurizer, vae: tuple[dgmc.Model, Split]) -> None:
    with pytest.raises(ValueError, match="node 'z' is not bound"):
        featurizer(*vae, "z")
    with pytest.raises(ValueError, match=r"flattened rows \[N, 64\]"):
        trained(np.zeros((3, 63)))
    with pytest.raises(ValueError, match=r"flattened rows \[N, 64\]"):
        trained(np.zeros((3, 64, 1)))


@pytest.mark.parametrize("steps, size", [(40, 1), (7, 3)])
def test_the_sequence_network_takes_flattened_steps(steps: int, size: int) -> None:
    net = network(steps * size, (steps, size), 10)
    x = torch.randn(5, steps * size)
    assert net[0](x).shape == (5, FEATURES) and net(x).shape == (5, 10)
    moved = x.reshape(5, steps, size).clone()
    moved[:, -1] += 1  # the last step reaches the features: the layout is [N, size, T]
    assert not torch.equal(net[0](moved.reshape(5, -1)), net[0](x))
