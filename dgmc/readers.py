"""Reading a user's data file (`--data PATH`) into named numpy columns.

Formats: CSV and TSV with a header row, NumPy's .npy and .npz, and a folder of PNG/JPEG
images with one subfolder per class. This module knows nothing of specs: a later stage binds
columns to nodes and checks values against their families, and points at bad rows with
`Table.where`, so every message names a place in the user's own file.

Whatever bytes a file holds, the only exception that leaves this module is `DataError` (the
CLI prints it without a traceback): a crash on a malformed file would show the user a stack
instead of the line to fix. NumPy files are memory-mapped wherever the bytes lie in the file
as they are (.npy, and .npz members stored uncompressed), so a data set larger than memory
loads; their headers are checked against the bytes actually present before anything is mapped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import stat
import struct
import warnings
import zipfile
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy

from .datasets import DataError
from .errors import did_you_mean

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".npy": "npy", ".npz": "npz"}
_KNOWN = "CSV (.csv), TSV (.tsv, .tab), NumPy (.npy, .npz) or a folder of images with one subfolder per class"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_HEAD_BYTES = 1 << 17  # covers any .npy header numpy accepts (at most 10,000 characters)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # a zip local file header: signature ... name and extra lengths
_CHUNK = 1 << 20
_PIXELS_PER_BYTE = 8300  # deflate expands a byte to at most 1032, a 1-bit PNG holds 8 pixels a byte; JPEG far fewer
_QUOTE_MAX = 40


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


def read_table(path: str | Path) -> Table:
    """Read a data file, or an image folder, into a `Table`; chosen by the suffix."""
    path = Path(path)
    mode = _stat(path).st_mode
    if stat.S_ISDIR(mode):
        return _read_images(path)
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: dgmc reads {_KNOWN}, not '{path.suffix}' files." if path.suffix
                        else f"{path}: a file without a suffix; dgmc reads {_KNOWN}.")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path} is not a regular file.")
    if kind == "npy":
        return _read_npy(path)
    if kind == "npz":
        return _read_npz(path)
    return _read_delimited(path, kind)


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


# CSV and TSV


def _read_delimited(path: Path, kind: str) -> Table:
    """A header row of column names, then rows of numbers, parsed to float64. `nan` and
    `inf` parse: non-finite values are a later stage's to report, with `where`."""
    with _os_errors(path), path.open("rb") as file:
        rows = _csv_rows(path, file, "," if kind == "csv" else "\t")
        header_line, header = next(rows, (0, []))
        if not header:
            raise DataError(f"{path}: the file is empty.")
        names = _column_names(path, header_line, header)
        lines, values = array("q"), array("d")
        for line, row in rows:
            values.extend(_numbers(path, line, row, names))
            lines.append(line)
    if not lines:
        raise DataError(f"{path}: there is a header row (line {header_line}) but no rows of data.")
    matrix = np.frombuffer(values, dtype=np.float64).reshape(len(lines), len(names))
    columns = {name: matrix[:, i].copy() for i, name in enumerate(names)}
    return Table(path, kind, columns, len(lines), lines=np.array(lines, dtype=np.int64))


def _csv_rows(path: Path, file: BinaryIO, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The rows that are not blank, each with the line it starts on. csv's own errors (a
    cell beyond its size limit, a stray carriage return) become DataErrors naming the line."""
    reader = csv.reader(_utf8_lines(path, file), delimiter=delimiter)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(f"{path}, line {reader.line_num}: {_csv_problem(error)}.") from None
        if len(row) > 1 or (row and row[0].strip()):
            yield start, row


def _csv_problem(error: csv.Error) -> str:
    """csv's message, but for a carriage return inside a line, where csv's own message
    suggests reopening the file, which is for the programmer, not the user."""
    if "new-line character" in str(error):
        return "a carriage return (\\r) that does not end a line; save the file with \\n or \\r\\n line endings"
    return str(error)


def _utf8_lines(path: Path, file: BinaryIO) -> Iterator[str]:
    """The file's lines decoded as UTF-8, a byte order mark at the start dropped. Decoding
    line by line keeps memory flat and names the line of a byte that is not UTF-8."""
    for number, raw in enumerate(file, start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{path}, line {number}: not UTF-8 text (byte {raw[error.start:error.start + 1]!r} "
                            f"at column {error.start + 1}); save the file as UTF-8.") from None
        yield text


def _column_names(path: Path, line: int, header: list[str]) -> list[str]:
    names = [cell.strip() for cell in header]
    if "" in names:
        raise DataError(f"{path}, line {line}: column {names.index('') + 1} of the header has no name.")
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise DataError(f"{path}, line {line}: the header names the column '{repeated[0]}' more than once.")
    return names


def _numbers(path: Path, line: int, row: list[str], names: list[str]) -> list[float]:
    if len(row) != len(names):
        raise DataError(f"{path}, line {line}: {len(row)} cell(s), but the header names {len(names)} column(s).")
    numbers = []
    for name, cell in zip(names, row, strict=True):
        try:
            numbers.append(float(cell))
        except ValueError:
            raise DataError(f"{path}, line {line}, column '{name}': {_quote(cell)} is not a number.") from None
    return numbers


def _quote(text: str) -> str:
    return repr(text if len(text) <= _QUOTE_MAX else text[:_QUOTE_MAX - 3] + "...")


# NumPy: .npy and .npz


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


# Image folders


def _read_images(folder: Path) -> Table:
    """One subfolder per class, in sorted order, giving labels 0..K-1; in each, its PNG and
    JPEG files in sorted order. Other files, nested folders and hidden entries are ignored.
    Columns: `image` uint8 [N, C, H, W] and `label` int64 [N]."""
    classes = _class_folders(folder)
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        images = _image_files(folder, name)
        files += [f"{name}/{image}" for image in images]
        labels += [label] * len(images)
    pixels = _decode_all(folder, files)
    columns = {"image": pixels, "label": np.array(labels, dtype=np.int64)}
    return Table(folder, "images", columns, len(files), classes=tuple(classes), files=tuple(files))


def _entries(folder: Path, want_folders: bool) -> list[str]:
    """The sorted names of the folder's visible subfolders (or files), links followed."""
    with _os_errors(folder), os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if not entry.name.startswith(".")
                      and (entry.is_dir() if want_folders else entry.is_file()))


def _class_folders(folder: Path) -> list[str]:
    classes = _entries(folder, want_folders=True)
    if not classes:
        raise DataError(f"{folder} is a folder, but not an image folder: it has no subfolders. An image folder "
                        f"holds one subfolder per class, each holding PNG or JPEG files; dgmc also reads {_KNOWN}.")
    return classes


def _image_files(folder: Path, name: str) -> list[str]:
    images = [file for file in _entries(folder / name, want_folders=False) if file.lower().endswith(_IMAGE_SUFFIXES)]
    if not images:
        raise DataError(f"{folder}: the class folder '{name}' holds no PNG or JPEG images.")
    return images


def _decode_all(folder: Path, files: list[str]) -> np.ndarray:
    """Every image as [C, H, W], all of the first image's size and channels (checked from each
    file's header before it is decoded, so a corrupt one claiming a huge size costs nothing)."""
    first = _decode(folder, files[0], None)
    return np.stack([first, *(_decode(folder, name, (files[0], first.shape)) for name in files[1:])])


def _decode(folder: Path, name: str, first: tuple[str, tuple[int, ...]] | None) -> np.ndarray:
    """One image as uint8 [C, H, W]. Converted by Pillow's own classing of its mode: grey
    ones (1, L, LA) to L, one channel; all with colour (RGB, RGBA, P, PA, CMYK, YCbCr...) to
    RGB, three. Alpha is dropped, not composited. 16-bit and float images are refused rather
    than clipped to 8 bits. Images over Pillow's decompression-bomb limit are refused."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(folder / name, formats=("PNG", "JPEG")) as image:
                mode = "L" if Image.getmodebase(image.mode) == "L" else "RGB"
                shape = (len(mode), image.height, image.width)
                _check_pixel_count(folder, name, shape)
                if first is not None and shape != first[1]:
                    raise DataError(f"{folder}: the image '{name}' is {_size(shape)}, but the first image, "
                                    f"'{first[0]}', is {_size(first[1])}; all images must be alike.")
                if image.mode in ("I", "F") or image.mode.startswith("I;"):
                    raise DataError(f"{folder}: the image '{name}' has {image.mode} pixels (16 or 32 bits); "
                                    f"dgmc reads 8-bit images.")
                pixels = np.asarray(image.convert(mode), dtype=np.uint8)
    except DataError:
        raise
    # Pillow's decoders report a corrupt or truncated file with whatever their parsing hit
    # (OSError, SyntaxError, ValueError, struct.error, EOFError, DecompressionBombError...).
    except Exception as error:
        raise DataError(f"{folder}: the image '{name}' cannot be decoded ({error}).") from None
    return pixels.reshape(shape[1], shape[2], shape[0]).transpose(2, 0, 1)


def _check_pixel_count(folder: Path, name: str, shape: tuple[int, ...]) -> None:
    """Refuse a header declaring more pixels than the file's bytes can encode. Pillow fills
    the rows missing from a PNG's data with zeros, so a corrupt 100-byte file could become
    hundreds of megabytes of pixels (below Pillow's own decompression-bomb limit)."""
    size = (folder / name).stat().st_size
    if shape[1] * shape[2] > _PIXELS_PER_BYTE * size:
        raise DataError(f"{folder}: the image '{name}' declares {_size(shape)}, more pixels than its {size} bytes "
                        f"can hold; it is corrupt.")


def _size(shape: tuple[int, ...]) -> str:
    channels, height, width = shape
    return f"{width}x{height} with {channels} channel{'s' if channels > 1 else ''}"
