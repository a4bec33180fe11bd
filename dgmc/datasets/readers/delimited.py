"""CSV and TSV files with a header row: every cell a number, each row remembering the
line it starts on, so that a later error names the line a person opens."""

from __future__ import annotations

import csv
import math
from array import array
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ...core.errors import DataError
from .base import Table, _os_errors

_QUOTE_MAX = 40


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
        if not cell.strip():  # an empty cell is a missing value, which only some nodes accept (`split._column`)
            numbers.append(math.nan)
            continue
        try:
            numbers.append(float(cell))
        except ValueError:
            raise DataError(f"{path}, line {line}, column '{name}': {_quote(cell)} is not a number.") from None
    return numbers


def _quote(text: str) -> str:
    return repr(text if len(text) <= _QUOTE_MAX else text[:_QUOTE_MAX - 3] + "...")
