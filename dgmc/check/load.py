"""Spec text or file -> checked model: the parse and check stages run together, with the
installed plugins loaded first so that a spec can name what they register. Everything
that reads a spec calls these; `dgmc.api` re-exports them.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import Diagnostic
from ..frontend.parse import parse
from ..frontend.source import read_spec
from ..ir import Model
from ..plugins import load_entry_points
from . import check


def loads(text: str, filename: str = "<string>") -> Model:
    """Parse and check spec text; raises `DgmError` with every error."""
    return check_text(text, filename)[0]


def load(path: str | Path) -> Model:
    """Parse and check a `.dgm` file (UTF-8; `-` is standard input); raises `DgmError`
    with every error, or `UserError` when the file cannot be read."""
    return loads(*read_spec(path))


def check_text(text: str, filename: str = "<string>") -> tuple[Model, list[Diagnostic]]:
    """The checked model and its warnings (for tools that show warnings). Installed
    plugins (`dgmc.plugins`) are loaded first, so a spec can name what they register."""
    load_entry_points()
    return check(parse(text, filename), text, filename)
