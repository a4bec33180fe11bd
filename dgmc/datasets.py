"""The built-in datasets: what the language sees of them (columns, each column's size and
value domain, the preprocessing options each accepts; the checker reads only this), and
`load_split`, which turns a checked model's data statement into train and test tensors.

Nothing is ever downloaded: scikit-learn's digits ship inside scikit-learn, the Old Faithful
CSV inside this package (dgmc/data/), and mnist1d is generated from code, then cached. The
heavy imports (torch, scikit-learn, mnist1d) happen on first load, so `dgmc check` stays fast.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError
from .files import atomic
from .registry import Registry, RegistryError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from . import ir


@dataclass(frozen=True)
class Column:
    """A data column: `size` values per row (per sequence, when `sequence`), of `domain`
    once preprocessed; `numeric` columns are real-valued until binarized."""

    size: int
    domain: str
    """A value domain (`dgmc.families.DOMAINS`): real, binary, onehot..."""
    sequence: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Dataset:
    """A dataset a spec can name: its columns (what the checker sees) and its `load`,
    which returns every row unprocessed: real columns as [N, size] float arrays (sequences
    [N, L]), a `label` column as int64 class indices [N] (its `Column.size` the number of
    classes). `value_max` is the top of the raw value range: `scale` divides by it,
    `binarize` keeps values above its half."""

    name: str
    columns: dict[str, Column]
    flags: tuple[str, ...]
    """Preprocessing options given by name alone, e.g. `digits(binarize)`."""
    exclusive: tuple[str, ...]
    """Flags of which at most one may be given (they rescale the same values)."""
    rows: int
    doc: str
    load: Callable[[], dict[str, np.ndarray]]
    value_max: float = 1.0


DATASETS: Registry[Dataset] = Registry("dataset")


def register_dataset(dataset: Dataset, *, replace: bool = False) -> Dataset:
    """Make `dataset` known to specs under `dataset.name` (`data NAME { ... }`)."""
    if not isinstance(dataset, Dataset):
        raise RegistryError(f"register_dataset takes a dgmc.Dataset, not {type(dataset).__name__}.")
    unknown = set(dataset.flags) - set(FLAGS)
    if unknown:
        raise RegistryError(f"dataset {dataset.name}: unknown flags {sorted(unknown)} (known: {', '.join(FLAGS)}).")
    return DATASETS.register(dataset.name, dataset, replace=replace)


FLAGS = ("binarize", "scale", "standardize")

DATA_OPTIONS = ("classes", "test_fraction")
"""Keyword options every dataset takes: `classes = [0, 1]` keeps only those labels;
`test_fraction = 0.2` sets the held-out share."""


# ---- loading -------------------------------------------------------------------------------


MNIST1D_ARGS: dict[str, object] = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60], "scale_coeff": 0.4,
    "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 2e-2, "shear_scale": 0.75,
    "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
}
"""mnist1d's generation arguments (its defaults, less the download URL), pinned here so that
the data do not drift with the package's defaults and the cache key is known without
importing mnist1d (which pulls in matplotlib and scipy: about 1 s)."""


class DataError(UserError):
    """A model whose data cannot be loaded for a reason the checker cannot see (no data
    statement, `classes` that leave too few rows, an IR built by hand that binds a column
    to a node it does not fit). The message names the node and the column."""


@dataclass(frozen=True)
class Split:
    """A model's data, split once. `train`/`test` map each bound node to float32 rows:
    [N, size], or [N, T, size] for a time-indexed node. The labels (int64 class per row)
    are there whenever the dataset has a `label` column, bound or not, for pictures and
    metrics per class."""

    train: dict[str, torch.Tensor]
    test: dict[str, torch.Tensor]
    train_labels: torch.Tensor | None
    test_labels: torch.Tensor | None

    def rows(self, part: str) -> int:
        """The number of rows of `part` ("train" or "test")."""
        if part not in ("train", "test"):
            raise ValueError(f"part is 'train' or 'test', not {part!r}")
        for tensor in (*getattr(self, part).values(), getattr(self, f"{part}_labels")):
            if tensor is not None:
                return int(tensor.shape[0])
        raise ValueError("this split holds no tensor")  # load_split never builds one


def load_split(model: ir.Model, split_seed: int = 0) -> Split:
    """Load `model`'s dataset, keep its `classes`, split it (a shuffle seeded by
    `split_seed`, `test_fraction` of the rows held out, at least one each side) and
    preprocess each bound column. Statistics (`standardize`) come from the train rows only,
    so nothing of the test rows leaks into training. Every dataset splits by the same
    rule; mnist1d's own train/test parts are pooled first."""
    import numpy as np
    import torch

    data = model.data
    if data is None:
        raise DataError(f"The model '{model.name}' has no data statement: there is nothing to load.")
    dataset = DATASETS.get(data.dataset)
    if dataset is None:
        raise DataError(f"Unknown dataset '{data.dataset}' (known: {', '.join(DATASETS)}).")
    shapes = {name: _row_shape(model, name, column, dataset) for name, column in data.columns.items()}
    if not shapes and "label" not in dataset.columns:
        raise DataError(f"The model '{model.name}' binds no column of {dataset.name}: there is nothing to load.")
    if not 0 < data.test_fraction < 1:
        raise DataError(f"test_fraction is a share of the rows, strictly between 0 and 1, not {data.test_fraction}.")
    if not isinstance(split_seed, int) or split_seed < 0:
        raise DataError(f"split_seed is an integer >= 0, not {split_seed!r}.")

    raw = dataset.load()
    labels = raw.get("label")
    rows = np.arange(len(next(iter(raw.values()))))
    if len(rows) < 2:
        raise DataError(f"{dataset.name} holds {len(rows)} row(s): a split needs at least 2.")
    for name, column in data.columns.items():
        _validate(raw[column], name, column, dataset)
    if data.classes is not None:
        if labels is None:
            raise DataError(f"{dataset.name} has no label column, so `classes` cannot choose rows.")
        rows = rows[np.isin(labels, data.classes)]
        if len(rows) < 2:
            users = [n for n, c in data.columns.items() if c == "label"]
            bound = f", bound to node '{users[0]}'" if users else ""
            raise DataError(f"classes = {list(data.classes)} keep {len(rows)} row(s) of {dataset.name} "
                            f"(column 'label'{bound}): a split needs at least 2.")
    rows = rows[np.random.default_rng(split_seed).permutation(len(rows))]
    n_test = min(max(round(len(rows) * data.test_fraction), 1), len(rows) - 1)
    test_rows, train_rows = rows[:n_test], rows[n_test:]

    parts: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] = ({}, {})
    for name, column in data.columns.items():
        prepared = _prepare(raw[column], dataset.columns[column], data.flags, train_rows, test_rows,
                            dataset.value_max)
        for part, values in zip(parts, prepared, strict=True):
            part[name] = torch.from_numpy(values.reshape(len(values), *shapes[name]))
    if labels is None:
        return Split(parts[0], parts[1], None, None)
    return Split(parts[0], parts[1], torch.from_numpy(labels[train_rows]), torch.from_numpy(labels[test_rows]))


def _validate(values: np.ndarray, node: str, column: str, dataset: Dataset) -> None:
    """The loaded values must be what the metadata (and so the checker) promised: the
    column's width, and finite (NaN or Inf would poison training many steps later, far
    from the cause)."""
    import numpy as np

    where = f"The data of node '{node}' (column '{column}' of {dataset.name})"
    expected = 1 if dataset.columns[column].domain == "onehot" else dataset.columns[column].size
    width = int(np.prod(values.shape[1:], dtype=np.int64))
    if width != expected:
        raise DataError(f"{where} have {width} values per row, not the {expected} the column should have.")
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        raise DataError(f"{where} are not finite (NaN or Inf) in {int(bad.sum())} row(s), "
                        f"the first being row {int(np.argmax(bad))}.")


def _row_shape(model: ir.Model, name: str, column_name: str, dataset: Dataset) -> tuple[int, ...]:
    """The shape of one row of node `name`: (size,), or (T, size) for a time-indexed node
    fed by a sequence column. The checker has seen to all this for a parsed spec; an IR
    built or edited by hand gets a DataError here instead of a reshape error later."""
    where = f"node '{name}' (column '{column_name}' of {dataset.name})"
    column = dataset.columns.get(column_name)
    if column is None:
        raise DataError(f"The {where}: {dataset.name} has no such column ({', '.join(dataset.columns)}).")
    if not model.has(name) or model.node(name).kind not in ("observed", "input"):
        what = f"is {model.node(name).kind}" if model.has(name) else "is not in the model"
        raise DataError(f"The {where} {what}: only observed and input nodes take data.")
    node = model.node(name)
    if node.timed and model.time is not None and column.sequence and model.time.steps * node.size == column.size:
        return (model.time.steps, node.size)
    if not node.timed and not column.sequence and node.size == column.size:
        return (node.size,)
    raise DataError(f"The {where} does not fit: the column has {column.size} values per row"
                    f"{' (a sequence)' if column.sequence else ''}; the node takes {node.size}"
                    f"{' per step' if node.timed else ''}.")


def _prepare(values: np.ndarray, column: Column, flags: tuple[str, ...], train_rows: np.ndarray,
             test_rows: np.ndarray, value_max: float) -> tuple[np.ndarray, np.ndarray]:
    """One column's train and test values as float32 [N, size]: labels one-hot; real
    columns binarized, scaled or standardized (with train-only statistics, per column of
    values, i.e. per pixel or per time step; a constant column keeps std 1)."""
    import numpy as np

    if column.domain == "onehot":
        eye = np.eye(column.size, dtype=np.float32)
        return eye[values[train_rows]], eye[values[test_rows]]
    train, test = values[train_rows].astype(np.float64), values[test_rows].astype(np.float64)
    if "binarize" in flags:
        train, test = train > value_max / 2, test > value_max / 2
    elif "scale" in flags:
        train, test = train / value_max, test / value_max
    elif "standardize" in flags:
        mean, std = train.mean(axis=0), train.std(axis=0)
        std = np.where(std > 1e-12 * (1 + np.abs(mean)), std, 1.0)
        train, test = (train - mean) / std, (test - mean) / std
    return train.astype(np.float32), test.astype(np.float32)


def _digits() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 digits, which ship inside scikit-learn: no download."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return {"pixels": np.asarray(bunch.data, dtype=np.float64), "label": np.asarray(bunch.target, dtype=np.int64)}


def _old_faithful() -> dict[str, np.ndarray]:
    import numpy as np

    text = (resources.files("dgmc") / "data" / "old_faithful.csv").read_text(encoding="utf-8")
    header, *lines = [line for line in csv.reader(io.StringIO(text)) if line]
    table = np.array(lines, dtype=np.float64)
    return {column: table[:, [i]] for i, column in enumerate(header)}


def cache_dir() -> Path:
    """Where generated data are kept: `$DGMC_CACHE`, else ~/.cache/dgmc."""
    return Path(os.environ.get("DGMC_CACHE") or Path.home() / ".cache" / "dgmc")


def _mnist1d() -> dict[str, np.ndarray]:
    """mnist1d's 5000 rows (its train part, then its test part), generated with
    `make_dataset` (never `get_dataset`, which downloads) and cached as .npz: generating
    costs about 2 s, reading the cache milliseconds. The file name hashes the generation
    arguments and mnist1d's version, so a change of either regenerates."""
    import numpy as np

    key = json.dumps({"mnist1d": metadata.version("mnist1d"), **MNIST1D_ARGS}, sort_keys=True)
    path = cache_dir() / f"mnist1d-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    with contextlib.suppress(OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile), np.load(path) as cached:
        return {"signal": cached["signal"], "label": cached["label"]}
    arrays = _generate_mnist1d()
    with contextlib.suppress(OSError), atomic(path) as temporary, temporary.open("wb") as file:
        np.savez(file, **arrays)  # an unwritable cache costs time, not the run
    return arrays


def _generate_mnist1d() -> dict[str, np.ndarray]:
    """Run mnist1d's generator. It reseeds the global `random` and `numpy.random` states,
    so they are saved and restored (loading data must not change a caller's random
    stream), and anything it prints is swallowed."""
    import numpy as np
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    vars(args).update(MNIST1D_ARGS)
    states = random.getstate(), np.random.get_state()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            made = make_dataset(args)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    return {"signal": np.concatenate([made["x"], made["x_test"]]).astype(np.float64),
            "label": np.concatenate([made["y"], made["y_test"]]).astype(np.int64)}


for _dataset in (
    Dataset("digits", {"pixels": Column(64, "real", doc="8x8 grey levels 0..16"),
                       "label": Column(10, "onehot", doc="the digit, one-hot")},
            flags=FLAGS, exclusive=FLAGS, rows=1797, doc="scikit-learn's load_digits", load=_digits,
            value_max=16.0),  # binarize keeps pixel > 8, the usual threshold for a Bernoulli model of these images
    Dataset("old_faithful", {"eruptions": Column(1, "real", doc="eruption time, minutes"),
                             "waiting": Column(1, "real", doc="waiting time to the next eruption, minutes")},
            flags=("standardize",), exclusive=(), rows=272,
            doc="Old Faithful geyser, shipped in dgmc/data/old_faithful.csv", load=_old_faithful),
    Dataset("mnist1d", {"signal": Column(40, "real", sequence=True, doc="a 40-point 1-d signal"),
                        "label": Column(10, "onehot", doc="the class, one-hot")},
            flags=("standardize",), exclusive=(), rows=5000,
            doc="mnist1d sequences generated offline with make_dataset", load=_mnist1d),
):
    DATASETS.register(_dataset.name, _dataset, origin="dgmc")
