"""Data transforms: what a data binding does to its columns before they feed a node,
`x = scale(pixels, max = 255)`, and the dataset options that apply one to every real
column (`digits(binarize)`). One registry, `TRANSFORMS`, read by the checker (names,
arguments, the domain of the result) and by the loader (the function).

Statistics (a mean, a range, the classes) come from the training rows only, so nothing
of the test rows leaks into training. Each function takes the train and test values,
float64 [N, width], and the binding's arguments with their defaults filled in (None:
taken from the training rows), and returns both transformed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.registry import Registry

if TYPE_CHECKING:
    import numpy as np

Apply = Callable[["np.ndarray", "np.ndarray", dict], tuple["np.ndarray", "np.ndarray"]]


@dataclass(frozen=True)
class DataTransform:
    name: str
    apply: Apply
    doc: str
    domain: str | None
    """The domain of the result (None: that of the input, real)."""
    args: tuple[str, ...] = ()
    """Named numeric arguments, each optional."""
    integers: bool = False
    """Needs whole numbers (class indices)."""
    reads_missing: bool = False
    """Sees the rows that miss a value (NaN) too; the others transform the rows that hold
    one and leave the rest missing."""


def _standardize(train: np.ndarray, test: np.ndarray, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per value column: zero mean, unit variance on the training rows (a constant column
    keeps its scale)."""
    import numpy as np

    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-12 * (1 + np.abs(mean)), std, 1.0)
    return (train - mean) / std, (test - mean) / std


def _range(train: np.ndarray, args: dict) -> tuple[float, float]:
    low = args.get("min")
    high = args.get("max")
    low = float(train.min()) if low is None else low
    high = float(train.max()) if high is None else high
    return low, high if high > low else low + 1.0


def _scale(train: np.ndarray, test: np.ndarray, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """(x - min) / (max - min): the range [min, max] onto [0, 1]; min defaults to 0 when
    every training value is >= 0 (grey levels), else to their minimum; max to their maximum."""
    if args.get("min") is None and train.size and train.min() >= 0:
        args = {**args, "min": 0.0}
    low, high = _range(train, args)
    return (train - low) / (high - low), (test - low) / (high - low)


def _binarize(train: np.ndarray, test: np.ndarray, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """1 above `threshold` (default: the middle of the training values' range), else 0."""
    threshold = args.get("threshold")
    if threshold is None:
        low, high = _range(train, {"min": args.get("min"), "max": args.get("max")})
        threshold = (low + high) / 2
    return (train > threshold).astype(float), (test > threshold).astype(float)


def _onehot(train: np.ndarray, test: np.ndarray, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """Class indices 0..classes-1 (one column) as one-hot rows; `classes` defaults to
    the largest training index + 1."""
    import numpy as np

    classes = args.get("classes")
    classes = int(train.max()) + 1 if classes is None else int(classes)
    eye = np.eye(classes)
    return eye[train[:, 0].astype(np.int64)], eye[test[:, 0].astype(np.int64)]


def _present(train: np.ndarray, test: np.ndarray, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """1 where a row holds its value, 0 where it misses it (NaN, an empty cell, or a label
    hidden by `labelled`): a mask for a guide that reads a node with missing values."""
    import numpy as np

    return [(~np.isnan(part).any(axis=1, keepdims=True)).astype(float) for part in (train, test)]


TRANSFORMS: Registry[DataTransform] = Registry("data transform")
for _transform in (
    DataTransform("standardize", _standardize, "zero mean and unit variance per value column", "real"),
    DataTransform("scale", _scale, "the range [min, max] onto [0, 1]", "unit", args=("min", "max")),
    DataTransform("binarize", _binarize, "1 above a threshold, else 0", "binary", args=("threshold", "min", "max")),
    DataTransform("onehot", _onehot, "an integer class column as one-hot rows", "onehot", args=("classes",),
                  integers=True),
    DataTransform("present", _present, "1 where the row holds its value, 0 where it is missing", "binary",
                  reads_missing=True),
):
    TRANSFORMS.register(_transform.name, _transform, origin="dgmc")


FIXES = {"binary": "binarize", "onehot": "onehot", "unit": "scale"}
"""The transform whose values lie in a domain: the fix of a binding whose values do not."""


def fix_for(node: str, columns: Sequence[str], domain: str) -> str:
    """` Write x = binarize(pixels).`: the binding that brings its columns' values into
    `domain` ('' where no transform does, or one-hot of several columns), so that the
    checker (a registered dataset) and the loader (a data file) suggest the same fix."""
    transform = FIXES.get(domain)
    if transform is None or (transform == "onehot" and len(columns) > 1):
        return ""
    source = columns[0] if len(columns) == 1 else f"[{', '.join(columns)}]"
    return f" Write {node} = {transform}({source})."
