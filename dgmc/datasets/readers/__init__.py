"""Reading a user's data file (`--data PATH`) into named numpy columns.

Formats: CSV and TSV with a header row, NumPy's .npy and .npz, Parquet (with pyarrow), and a
folder of PNG/JPEG images with one subfolder per class (one module each), registered in
`READERS` (a plugin registers a `Reader` of its own the same way). Nothing here knows
specs: a later stage binds columns to nodes and checks values against their families, and
points at bad rows with `Table.where`, so every message names a place in the user's own file.

Whatever bytes a file holds, the only exception that leaves this module is `DataError` (the
CLI prints it without a traceback): a crash on a malformed file would show the user a stack
instead of the line to fix. NumPy files are memory-mapped wherever the bytes lie in the file
as they are (.npy, and .npz members stored uncompressed), so a data set larger than memory
loads; their headers are checked against the bytes actually present before anything is mapped.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from pathlib import Path

from ...core.errors import DataError
from .base import READERS, Reader, Table, _os_errors, _raise, _stat, known
from .delimited import _read_delimited
from .images import _read_images
from .npy import _read_npy, _read_npz
from .parquet import _read_parquet

__all__ = ["READERS", "Reader", "Table", "file_digest", "read_table"]

_CHUNK = 1 << 20

for _name, _reader in (
    ("csv", Reader(functools.partial(_read_delimited, kind="csv"), "CSV", (".csv",))),
    ("tsv", Reader(functools.partial(_read_delimited, kind="tsv"), "TSV", (".tsv", ".tab"))),
    ("npy", Reader(_read_npy, "NumPy", (".npy",))),
    ("npz", Reader(_read_npz, "NumPy", (".npz",))),
    ("parquet", Reader(_read_parquet, "Parquet", (".parquet", ".pq"))),
    ("images", Reader(_read_images, "a folder of images with one subfolder per class", folders=True)),
):
    READERS.register(_name, _reader, origin="dgmc")


def read_table(path: str | Path) -> Table:
    """Read a data file, or a folder, into a `Table` by the registered reader that claims
    it (`READERS`: by the suffix, and whether it is a folder)."""
    path = Path(path)
    mode = _stat(path).st_mode
    reader = _reader_for(path, stat.S_ISDIR(mode))
    if not reader.folders and not stat.S_ISREG(mode):
        raise DataError(f"{path} is not a regular file.")
    return reader.read(path)


def _reader_for(path: Path, folder: bool) -> Reader:
    """The first reader of files (or of folders) that claims the path's suffix; for a
    folder, else the first folder reader that claims no suffix (the image folder)."""
    suffix = path.suffix.lower()
    fitting = [reader for reader in READERS.values() if reader.folders == folder]
    chosen = next((r for r in fitting if suffix in r.suffixes), None) or \
        next((r for r in fitting if folder and not r.suffixes), None)
    if chosen is not None:
        return chosen
    if folder:
        raise DataError(f"{path}: a folder, and no reader of folders claims it; dgmc reads {known()}.")
    raise DataError(f"{path}: dgmc reads {known()}, not '{path.suffix}' files." if path.suffix
                    else f"{path}: a file without a suffix; dgmc reads {known()}.")


def file_digest(path: Path) -> str:
    """The sha256 of a data file (hex, first 16 characters), by which a run knows its data
    again. For a folder, of every file below it in sorted order, each as its relative name
    and its own digest, so that moving an image to another class changes it too. Files are
    read in chunks: a data file need not fit in memory."""
    path = Path(path)
    digest = hashlib.sha256()
    with _os_errors(path):
        if not path.is_dir():
            return _hash_file(path).hex()[:16]
        for name, file in _files_below(path):
            encoded = name.encode("utf-8", "surrogateescape")
            digest.update(len(encoded).to_bytes(8, "little") + encoded + _hash_file(file))
    return digest.hexdigest()[:16]


def _hash_file(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def _files_below(folder: Path) -> list[tuple[str, Path]]:
    """Every file below `folder` with its '/'-separated name relative to it, sorted. Links
    to folders are followed, as the image reader follows them, each real folder once so
    that a cycle of links ends; an unreadable folder is an error, not a silent gap."""
    found, seen = [], set()
    for root, folders, files in os.walk(folder, followlinks=True, onerror=_raise):
        real = os.path.realpath(root)
        if real in seen:
            folders.clear()
            continue
        seen.add(real)
        found += [(Path(root, name).relative_to(folder).as_posix(), Path(root, name)) for name in files]
    return sorted(found)
