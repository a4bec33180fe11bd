"""What every reader shares: the `Table` a data file becomes, and the operating
system's refusals turned into `DataError`s naming the file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...core.errors import DataError, did_you_mean

_KNOWN = (
    "CSV (.csv), TSV (.tsv, .tab), NumPy (.npy, .npz), Parquet (.parquet, .pq) or a folder of images with one "
    "subfolder per class")
"""What `--data` reads, for the messages that refuse a file."""


@dataclass(frozen=True)
class Table:
    """A data file as named columns, each [rows, *shape] (a 1-d array: one number per row)."""

    path: Path
    format: str
    columns: dict[str, np.ndarray]
    rows: int
    classes: tuple[str, ...] = ()
    """An image folder's class names: label i is the subfolder classes[i]."""
    lines: np.ndarray | None = field(default=None, repr=False, compare=False)
    """CSV/TSV: the line of the file on which each row starts, for `where`."""
    files: tuple[str, ...] = field(default=(), repr=False, compare=False)
    """An image folder: each row's image, relative to `path`, for `where`."""

    def where(self, row: int) -> str:
        """How a person finds row `row` (0-based) in the file: "line 7" for CSV/TSV (the
        editor's numbering, header and blank lines counted), "row 6" for NumPy files (the
        index numpy gives it, 0-based), the image's relative path for an image folder."""
        if not 0 <= row < self.rows:
            raise IndexError(f"row {row} of a table of {self.rows} rows")
        if self.lines is not None:
            return f"line {self.lines[row]}"
        return self.files[row] if self.files else f"row {row}"

    def column(self, name: str) -> np.ndarray:
        """The column `name`; a DataError listing the columns there are when it is missing."""
        if name in self.columns:
            return self.columns[name]
        raise DataError(f"{self.path} has no column '{name}' (its columns: {', '.join(self.columns)})."
                        f"{did_you_mean(name, self.columns)}")


def _raise(error: OSError) -> None:
    raise error


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or folder.") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror or error}).") from None
    except ValueError as error:  # a NUL byte in the path
        raise DataError(f"{path!r} is not a valid path ({error}).") from None


@contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """The operating system's refusals (permissions, a vanished file, a read error) as a
    DataError naming the file."""
    try:
        yield
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror or error}).") from None
