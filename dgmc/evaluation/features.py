"""The feature space that stands in for Inception-v3 in the paper's metrics.

The authors compare samples on Inception pool features; no Inception weights can be had
offline, so for a dataset with labels we train a small classifier on the same train rows
the model sees, once, cache it on disk, and take its penultimate layer (64 ReLU units) as
the feature space: like Inception's, it keeps what tells the classes apart. Vectors get an
MLP; time-indexed nodes (mnist1d) a small 1-d conv net, which on mnist1d reaches about 0.8
test accuracy where the MLP stops near 0.6; image nodes (declared [C, H, W]) a small 2-d
conv net. Datasets without labels (old_faithful) have no classifier: `featurizer` returns
None and the metrics use the raw values there.

The cache key names the dataset, flags, classes, column, input size and `VERSION`, plus a
digest of the split's values and labels, so a different split or preprocessing never
reuses a classifier that saw the other test rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import ir
from ..core.files import write_bytes
from ..datasets import DATASETS, Split, cache_dir

VERSION = 1
"""Bump when the architecture or training recipe changes: old cache files are then ignored."""

FEATURES = 64
SEED = 0
STEPS = 1500
BATCH = 64
LR = 1e-3
WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class Featurizer:
    """A trained classifier's penultimate layer, the metrics' feature space."""

    description: str
    accuracy: float
    """The classifier's accuracy on the test split: how much class information the features hold."""
    net: nn.Module
    """Flattened values [N, D] -> features [N, FEATURES]."""

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Features of `values` [N, D] (rows already flattened) as float64 [N, FEATURES]."""
        rows = np.ascontiguousarray(values, dtype=np.float32)
        expected = next(m for m in self.net.modules() if isinstance(m, Standardize)).mean.numel()
        if rows.ndim != 2 or rows.shape[1] != expected:
            raise ValueError(f"the featurizer takes flattened rows [N, {expected}], not shape {rows.shape}")
        self.net.eval()
        with torch.no_grad():  # in chunks: memory stays bounded for any N
            parts = [self.net(torch.from_numpy(rows[i:i + 4096])) for i in range(0, len(rows), 4096)]
        return torch.cat(parts).numpy().astype(np.float64) if parts else np.zeros((0, FEATURES))


class Standardize(nn.Module):
    """Per-input standardization with train statistics, kept as buffers so that they are
    saved with the weights: the classifier then takes any flag's values (0/1, 0..16, z-scores)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(dim=0))
        std = x.std(dim=0)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))  # constant pixels: std 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Channels(nn.Module):
    """Flattened [N, T * size] -> [N, size, T], the layout of Conv1d."""

    def __init__(self, steps: int, size: int) -> None:
        super().__init__()
        self.steps, self.size = steps, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), self.steps, self.size).transpose(1, 2)


def network(dim: int, sequence: tuple[int, int] | None, classes: int,
            image: tuple[int, int, int] | None = None) -> nn.Sequential:
    """The classifier: `[0]` the features (standardize, body, 64 ReLU units), `[1]` the
    linear head. `sequence` = (steps, size) gives a 1-d conv body, `image` = (C, H, W) a
    2-d one, else an MLP D -> 128 -> 64. Initialised from `SEED` without touching the
    caller's global RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return _layers(dim, sequence, classes, image)


def _layers(dim: int, sequence: tuple[int, int] | None, classes: int,
            image: tuple[int, int, int] | None = None) -> nn.Sequential:
    if image is not None:
        channels, height, width = image
        side = (((height + 1) // 2 + 1) // 2) * (((width + 1) // 2 + 1) // 2)  # after two stride-2 convolutions
        body: list[nn.Module] = [nn.Unflatten(1, image), nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(64 * side, FEATURES), nn.ReLU()]
    elif sequence is None:
        body = [nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, FEATURES), nn.ReLU()]
    else:
        steps, size = sequence
        length = ((steps + 1) // 2 + 1) // 2  # after two stride-2 convolutions
        body = [Channels(steps, size), nn.Conv1d(size, 32, 5, padding=2), nn.ReLU(),
                nn.Conv1d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv1d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(), nn.Linear(32 * length, FEATURES), nn.ReLU()]
    return nn.Sequential(nn.Sequential(Standardize(dim), *body), nn.Linear(FEATURES, classes))


def featurizer(model: ir.Model, split: Split, node: str) -> Featurizer | None:
    """The feature space for data-bound node `node` of `model`, from the classifier cached
    for this dataset, preprocessing and split, trained (a few seconds) on first use. None
    when the dataset has no labels (e.g. old_faithful): use raw values there."""
    if split.train_labels is None or split.test_labels is None:
        return None
    if model.data is None or node not in model.data.columns or node not in split.train:
        bound = ", ".join(split.train) or "none"
        raise ValueError(f"node '{node}' is not bound to a data column of this split (bound: {bound})")
    column = model.data.columns[node]
    if column == "label":
        raise ValueError(f"node '{node}' holds the label itself: a classifier of it has nothing to learn")
    train, test = (_flat(part[node]) for part in (split.train, split.test))
    shape = tuple(split.train[node].shape[1:])
    sequence = (shape[0], shape[1]) if len(shape) == 2 else None
    dims = model.node(node).shape if model.has(node) else None
    image = dims if dims is not None and len(dims) == 3 else None
    labels = DATASETS[model.data.dataset].columns.get("label")
    classes = max(labels.size if labels else 0, int(split.train_labels.max()) + 1, int(split.test_labels.max()) + 1)

    net = network(train.shape[1], sequence, classes, image)
    path = cache_dir() / "features" / f"{_key(model.data, column, split, node, image)}.pt"
    accuracy = _load(net, path)
    if accuracy is None:
        net = network(train.shape[1], sequence, classes, image)  # a failed load may have changed some weights
        _train(net, train, split.train_labels)
        accuracy = _accuracy(net, test, split.test_labels)
        _save(net, accuracy, path)
    net.eval()
    kind = "a 2-d conv net" if image else "an MLP" if sequence is None else "a 1-d conv net"
    flags = f"({', '.join(model.data.flags)})" if model.data.flags else ""
    chosen = f", classes {list(model.data.classes)}" if model.data.classes is not None else ""
    description = (f"penultimate layer ({FEATURES}-d) of {kind} classifier trained on "
                   f"{model.data.dataset}{flags} {column} (node '{node}'{chosen}), test accuracy {accuracy:.3f}")
    return Featurizer(description, accuracy, net[0])


def _flat(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(len(values), -1).float().cpu()


def _key(data: ir.Data, column: str, split: Split, node: str, image: tuple[int, ...] | None = None) -> str:
    """A readable cache file name: dataset, flags, classes, column, input size, version,
    and a digest of the split's node values and labels (which also covers the split seed
    and test fraction)."""
    digest = hashlib.sha256()
    for tensor in (split.train[node], split.train_labels, split.test[node], split.test_labels):
        assert tensor is not None  # featurizer returns None before when labels are missing
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(repr((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    flags = "+".join(data.flags) or "raw"
    classes = "all" if data.classes is None else "+".join(map(str, data.classes))
    dim = int(np.prod(split.train[node].shape[1:]))
    body = "-conv" + "x".join(map(str, image)) if image else ""
    return f"{data.dataset}-{flags}-classes-{classes}-{column}-d{dim}{body}-v{VERSION}-{digest.hexdigest()[:16]}"


def _train(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> None:
    """Adam on cross-entropy for `STEPS` minibatches, each epoch a fresh permutation drawn
    from a generator seeded with `SEED`: the same weights on every run."""
    net[0][0].fit(x)
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    net.train()
    order = torch.randperm(len(x), generator=generator)
    position = 0
    with torch.enable_grad():
        for _ in range(STEPS):
            if position + BATCH > len(x) and position > 0:
                order, position = torch.randperm(len(x), generator=generator), 0
            batch = order[position:position + BATCH]
            position += BATCH
            loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).float().mean())


def _load(net: nn.Module, path: Path) -> float | None:
    """The cached weights into `net` and their test accuracy, or None when there is no
    readable cache file that fits (then the caller retrains and overwrites it)."""
    unreadable = (OSError, RuntimeError, EOFError, KeyError, TypeError, ValueError,
                  pickle.UnpicklingError, zipfile.BadZipFile)
    try:
        saved = torch.load(path, weights_only=True)
        if saved["version"] != VERSION:
            return None
        net.load_state_dict(saved["state"])
        return float(saved["accuracy"])
    except unreadable:
        return None


def _save(net: nn.Module, accuracy: float, path: Path) -> None:
    """Written atomically; an unwritable cache costs a retraining next time, not the run."""
    buffer = io.BytesIO()
    torch.save({"version": VERSION, "accuracy": accuracy, "state": net.state_dict()}, buffer)
    with contextlib.suppress(OSError):
        write_bytes(path, buffer.getvalue())
