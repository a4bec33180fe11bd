"""What every reader shares: the `Table` a data file becomes, the registry `READERS` of
the formats `--data` reads (each module registers its own in the package's
`__init__`; a plugin adds one the same way), and the operating system's refusals turned
into `DataError`s naming the file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...core.errors import DataError, did_you_mean
from ...core.registry import Registry, RegistryError


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


@dataclass(frozen=True)
class Reader:
    """A format `--data` reads: its function, and what `read_table` chooses it by (the
    path's suffix, and whether the path is a folder), so that a new format is one
    registration rather than another branch."""

    read: Callable[[Path], Table]
    label: str
    """How messages name the format ("CSV"); readers of one label are listed together."""
    suffixes: tuple[str, ...] = ()
    """The suffixes it reads, lower case with their dot (".csv"); a folder reader without
    any reads every folder no other folder reader claims."""
    folders: bool = False
    """Reads a folder (the path is a directory) rather than a regular file."""

    def __post_init__(self) -> None:
        bad = [suffix for suffix in self.suffixes if not suffix.startswith(".") or suffix != suffix.lower()]
        if bad:
            raise RegistryError(f"reader {self.label}: suffixes are lower case and start with a dot, not {bad}.")


READERS: Registry[Reader] = Registry("reader", spec_names=False)


def known() -> str:
    """What `--data` reads, for the messages that refuse a file: each label once, with
    the suffixes of all its readers, in registration order."""
    labels: dict[str, list[str]] = {}
    for reader in READERS.values():
        labels.setdefault(reader.label, []).extend(reader.suffixes)
    said = [label + (f" ({', '.join(suffixes)})" if suffixes else "") for label, suffixes in labels.items()]
    return " or ".join([", ".join(said[:-1]), said[-1]]) if len(said) > 1 else "".join(said)


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
