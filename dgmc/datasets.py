"""The built-in datasets as the language sees them: their columns, each column's size
and value domain, and the preprocessing options each accepts. Nothing here loads data;
that is the training stage's job. Every dataset ships offline (scikit-learn's digits, the
Old Faithful CSV inside this package, mnist1d generated from code).
"""

from __future__ import annotations

from dataclasses import dataclass

from .families import Domain


@dataclass(frozen=True)
class Column:
    """A data column: `size` values per row (per sequence, when `sequence`), of `domain`
    once preprocessed; `numeric` columns are real-valued until binarized."""

    size: int
    domain: Domain
    sequence: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Dataset:
    name: str
    columns: dict[str, Column]
    flags: tuple[str, ...]
    """Preprocessing options given by name alone, e.g. `digits(binarize)`."""
    exclusive: tuple[str, ...]
    """Flags of which at most one may be given (they rescale the same values)."""
    rows: int
    doc: str


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "digits",
            {"pixels": Column(64, "real", doc="8x8 grey levels 0..16"),
             "label": Column(10, "onehot", doc="the digit, one-hot")},
            flags=("binarize", "scale", "standardize"),
            exclusive=("binarize", "scale", "standardize"),
            rows=1797, doc="scikit-learn's load_digits",
        ),
        Dataset(
            "old_faithful",
            {"eruptions": Column(1, "real", doc="eruption time, minutes"),
             "waiting": Column(1, "real", doc="waiting time to the next eruption, minutes")},
            flags=("standardize",), exclusive=(),
            rows=272, doc="Old Faithful geyser, shipped in dgmc/data/old_faithful.csv",
        ),
        Dataset(
            "mnist1d",
            {"signal": Column(40, "real", sequence=True, doc="a 40-point 1-d signal"),
             "label": Column(10, "onehot", doc="the class, one-hot")},
            flags=("standardize",), exclusive=(),
            rows=5000, doc="mnist1d sequences generated offline with make_dataset",
        ),
    )
}

DATA_OPTIONS = ("classes", "test_fraction")
"""Keyword options every dataset takes: `classes = [0, 1]` keeps only those labels;
`test_fraction = 0.2` sets the held-out share."""
