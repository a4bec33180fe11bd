"""NumPy's .npy and .npz, memory-mapped wherever the bytes lie in the file as they are
(.npy, and .npz members stored uncompressed); headers are checked against the bytes
actually present before anything is mapped."""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from ...core.errors import DataError
from .base import Table, _os_errors

_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_HEAD_BYTES = 1 << 17  # covers any .npy header numpy accepts (at most 10,000 characters)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # a zip local file header: signature ... name and extra lengths


@dataclass(frozen=True)
class _Header:
    """What a .npy header declares, and where its data start (`size`: the header's bytes)."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    size: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python integers: a corrupt shape cannot overflow


def _read_npy(path: Path) -> Table:
    """A plain array is one column named after the file; a structured array one column per
    field. Memory-mapped, read-only."""
    with _os_errors(path), path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
        available = os.fstat(file.fileno()).st_size
    header = _npy_header(str(path), head)
    _check_header(str(path), header, available - header.size, fields=True)
    values = _map(str(path), path, header, header.size)
    if header.dtype.names:
        return Table(path, "npy", {name: values[name] for name in header.dtype.names}, header.shape[0])
    return Table(path, "npy", {path.stem: values}, header.shape[0])


def _read_npz(path: Path) -> Table:
    """One column per member, named as np.load names it (without '.npy'). Members stored
    uncompressed are memory-mapped; compressed members (np.savez_compressed) are
    decompressed into memory, their size first checked against the archive's directory.
    Stored members are mapped without checking their CRC: that would read them whole."""
    columns: dict[str, np.ndarray] = {}
    with _os_errors(path), _zip_errors(path), zipfile.ZipFile(path) as archive:
        size = path.stat().st_size
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if name in columns:
                raise DataError(f"{path}: the archive holds the array '{name}' more than once.")
            columns[name] = _read_member(path, archive, info, size)
    return Table(path, "npz", columns, _common_rows(path, columns))


@contextmanager
def _zip_errors(path: Path) -> Iterator[None]:
    """zipfile's ways of refusing a corrupt, truncated or unsupported archive (bad CRC,
    encryption, an unknown compression method, a broken deflate/bzip2/lzma stream, names
    that do not decode) as a DataError."""
    import lzma

    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, ValueError,
            OverflowError, struct.error, zlib.error, lzma.LZMAError) as error:
        raise DataError(f"{path}: not a valid .npz archive ({error}).") from None
    except MemoryError:
        raise DataError(f"{path}: a compressed array too large to decompress into memory; "
                        f"save it with np.savez (uncompressed), which dgmc maps from the file instead.") from None


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> np.ndarray:
    """One member as an array; `size` is the archive's, which no member may reach past (a
    corrupt directory's sizes would otherwise become reads, and allocations, that large)."""
    where = f"{path}, array '{info.filename}'"
    if not 0 <= info.header_offset <= info.header_offset + info.compress_size <= size:
        raise DataError(f"{where}: the archive is corrupt (the array would lie outside the file).")
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1:  # bit 0: encrypted
        return _map_member(path, where, info)
    with archive.open(info) as member:
        head = member.read(_HEAD_BYTES)
        header = _npy_header(where, head)
        _check_header(where, header, info.file_size - header.size, fields=False)
        data = head[header.size:] + member.read(max(0, header.nbytes - len(head) + header.size))
    if len(data) < header.nbytes:
        raise DataError(f"{where}: truncated ({len(data)} bytes of data where the header declares {header.nbytes}).")
    return np.ndarray(header.shape, header.dtype, buffer=data, order="F" if header.fortran else "C")


def _map_member(path: Path, where: str, info: zipfile.ZipInfo) -> np.ndarray:
    """Memory-map a stored member where its bytes lie: after its local file header, whose
    name and extra field lengths are read from the local header itself (they may differ
    from the central directory's)."""
    with path.open("rb") as file:
        file.seek(info.header_offset)
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(file.read(_LOCAL_HEADER.size).ljust(30, b"\0"))
        if signature != b"PK\x03\x04":
            raise DataError(f"{where}: the archive is corrupt (no local file header at byte {info.header_offset}).")
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        file.seek(start)
        head = file.read(min(_HEAD_BYTES, info.file_size))
    header = _npy_header(where, head)
    _check_header(where, header, info.file_size - header.size, fields=False)
    return _map(where, path, header, start + header.size)


def _npy_header(where: str, head: bytes) -> _Header:
    """The header at the start of `head`, parsed by numpy's own readers. Version 3.0 differs
    from 2.0 only in encoding field names as UTF-8 rather than Latin-1, so it is read as 2.0
    and the names re-decoded."""
    stream = io.BytesIO(head)
    try:
        version = npy.read_magic(stream)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise DataError(f"{where}: NumPy format version {version[0]}.{version[1]}, which dgmc does not know.")
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = read(stream)
        if version == (3, 0) and dtype.names:
            dtype.names = tuple(name.encode("latin-1").decode("utf-8") for name in dtype.names)
    except DataError:
        raise
    # numpy evaluates the header as a Python literal and builds a dtype from it; what a corrupt one
    # raises is undocumented and varied (ValueError, TypeError, IndexError, KeyError, RecursionError...).
    except Exception as error:
        raise DataError(f"{where}: not a valid .npy array ({error}).") from None
    return _Header(tuple(shape), bool(fortran), dtype, stream.tell())


def _check_header(where: str, header: _Header, available: int, fields: bool) -> None:
    """Refuse what cannot become a column before anything is mapped or allocated: no rows,
    a negative length, anything but numbers (`fields`: or a structured array of numbers),
    and a shape whose bytes are not all there (a corrupt header may declare exabytes)."""
    if not header.shape:
        raise DataError(f"{where}: a single value (a 0-d array), not rows of values.")
    if min(header.shape) < 0:
        raise DataError(f"{where}: the header declares a negative length, shape {header.shape}.")
    if header.shape[0] == 0:
        raise DataError(f"{where}: no rows (shape {header.shape}).")
    for name, dtype in _fields(header.dtype, fields):
        if dtype.base.kind not in _NUMERIC_KINDS or dtype.base.names:
            what = f"the field '{name}'" if name else "the array"
            raise DataError(f"{where}: {what} holds {dtype} values, not numbers (bool, integer or float)"
                            f"{'; dgmc never loads pickled objects' if dtype.hasobject else ''}.")
    if header.nbytes > available:
        raise DataError(f"{where}: the header declares shape {header.shape} of {header.dtype} ({header.nbytes} bytes) "
                        f"but only {max(available, 0)} bytes follow it; the file is truncated or corrupt.")


def _fields(dtype: np.dtype, structured: bool) -> list[tuple[str, np.dtype]]:
    """What must each be numeric: the fields of a structured dtype (where they become
    columns), else the dtype itself."""
    if not (structured and dtype.names):
        return [("", dtype)]
    return [(name, dtype.fields[name][0]) for name in dtype.names]


def _map(where: str, path: Path, header: _Header, offset: int) -> np.ndarray:
    """The array read-only from `offset`, memory-mapped: nothing is read until used."""
    try:
        return np.memmap(path, dtype=header.dtype, mode="r", offset=offset, shape=header.shape,
                         order="F" if header.fortran else "C")
    except (ValueError, OSError, OverflowError) as error:  # mmap's refusals: past the end, no memory
        raise DataError(f"{where}: cannot map the data ({error}).") from None


def _common_rows(path: Path, columns: dict[str, np.ndarray]) -> int:
    if not columns:
        raise DataError(f"{path}: the archive holds no arrays.")
    (first, values), *rest = columns.items()
    for name, other in rest:
        if len(other) != len(values):
            raise DataError(f"{path}: the array '{name}' has {len(other)} rows but '{first}' has {len(values)}; "
                            f"the arrays of an .npz are columns of one table, with the same number of rows.")
    return len(values)
