"""What a dataset is to dgmc: its columns as the checker sees them (`Column`,
`Dataset`, the registry `DATASETS`), the errors data raise, and the `Split` a model's
data become."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.registry import Registry, RegistryError

if TYPE_CHECKING:
    import numpy as np
    import torch




@dataclass(frozen=True)
class Column:
    """A data column: `size` values per row (per sequence, when `sequence`), of `domain`
    once preprocessed; `numeric` columns are real-valued until binarized."""

    size: int
    domain: str
    """A value domain (`dgmc.families.DOMAINS`): real, binary, onehot..."""
    sequence: bool = False
    doc: str = ""
    shape: tuple[int, ...] | None = None
    """An image column's dimensions, channels first ((1, 8, 8)): what a shaped node bound
    to it declares. Its `size` is their product."""


@dataclass(frozen=True)
class Dataset:
    """A dataset a spec can name: its columns (what the checker sees) and its `load`,
    which returns every row unprocessed: real columns as [N, size] float arrays (sequences
    [N, L]), a `label` column as int64 class indices [N] (its `Column.size` the number of
    classes)."""

    name: str
    columns: dict[str, Column]
    flags: tuple[str, ...]
    """Preprocessing options given by name alone, e.g. `digits(binarize)`."""
    exclusive: tuple[str, ...]
    """Flags of which at most one may be given (they rescale the same values)."""
    rows: int
    doc: str
    load: Callable[[], dict[str, np.ndarray]]


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

DATA_OPTIONS = ("classes", "test_fraction", "labelled")
"""Keyword options every dataset takes: `classes = [0, 1]` keeps only those labels;
`test_fraction = 0.2` sets the held-out share; `labelled = 0.1` keeps the class labels
(the one-hot columns) in that share of the training rows and hides them in the rest."""



def cache_dir() -> Path:
    """Where generated data are kept: `$DGMC_CACHE`, else ~/.cache/dgmc."""
    return Path(os.environ.get("DGMC_CACHE") or Path.home() / ".cache" / "dgmc")


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



def listing() -> str:
    """`dgmc datasets`: every registered dataset, where it comes from, its options and
    columns."""
    lines = []
    for name, dataset in DATASETS.items():
        lines.append(f"{name}: {dataset.rows:,} rows; {dataset.doc} ({DATASETS.origin_of(name)})")
        lines.append(f"  options: {', '.join(dataset.flags) or 'none'}")
        for column_name, column in dataset.columns.items():
            shape = f"{column.size} per sequence" if column.sequence else str(column.size)
            shape = f"[{', '.join(map(str, column.shape))}]" if column.shape else shape
            lines.append(f"  {column_name:<12} {column.domain:<8} {shape:<16} {column.doc}")
    return "".join(line + "\n" for line in lines)
