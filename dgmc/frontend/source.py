"""Spec files -> text: the first stage of the pipeline, before `parse`.

A spec is UTF-8, whatever the locale says; a UTF-8 byte-order mark at the start is
dropped (some editors write one). Bytes that are not UTF-8 are a located syntax error at
the first bad byte, shown in the usual framed excerpt, and a file that cannot be read at
all is a `UserError` that says why. `-` names standard input.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.base import Span
from ..core.errors import DgmError, Diagnostic, UserError

STDIN = "-"
BOM = b"\xef\xbb\xbf"

_WHY = {
    FileNotFoundError: "no such file",
    IsADirectoryError: "it is a directory, not a spec file",
    NotADirectoryError: "a part of the path is not a directory",
    PermissionError: "permission denied",
}


def read_spec(path: str | Path) -> tuple[str, str]:
    """The text of a spec file (or of standard input for `-`) and the name that error
    messages give it."""
    name = str(path)
    if name == STDIN:
        return decode(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"cannot read '{name}': {why(error)}.") from None
    return decode(data, name), name


def why(error: OSError) -> str:
    """What went wrong reading a file, in words."""
    for kind, text in _WHY.items():
        if isinstance(error, kind):
            return text
    return (error.strerror or type(error).__name__).lower()


def decode(data: bytes, filename: str) -> str:
    """UTF-8 bytes -> text without a leading byte-order mark; a `DgmError` located at
    the first byte that is not UTF-8."""
    data = data.removeprefix(BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(data, error, filename) from None


def _not_utf8(data: bytes, error: UnicodeDecodeError, filename: str) -> DgmError:
    before = data[:error.start].decode("utf-8")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    start = len(before)
    span = Span(line=line, column=column, end_line=line, end_column=column + 1, start=start, end=start + 1)
    bad = data[error.start]
    message = (f"The file is not UTF-8 text: byte 0x{bad:02X} cannot start or continue a character here. "
               "Save the spec as UTF-8.")
    shown = data.decode("utf-8", errors="replace")  # the excerpt shows the bad byte as U+FFFD
    return DgmError([Diagnostic(severity="error", phase="syntax", span=span, message=message)], shown, filename)
