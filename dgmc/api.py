"""The Python API: a spec (path or text) -> checked graph IR, and its views.

    >>> import dgmc
    >>> model = dgmc.load("specs/hm.dgm")
    >>> model.order
    ('z4', 'z3', 'y2', 'z2', 'z1', 'y1')
    >>> dgmc.to_networkx(model)         # networkx.MultiDiGraph, edge key = lag
    >>> dgmc.to_digraph(model)          # graphviz.Digraph
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import order
from .check import check
from .errors import Diagnostic
from .ir import Model
from .parse import parse
from .plugins import load_entry_points
from .source import read_spec

if TYPE_CHECKING:
    import graphviz


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


def topological_order(model: Model) -> tuple[str, ...]:
    return model.order


to_networkx = order.to_networkx


def to_digraph(model: Model, student: bool = False, guide: bool = False) -> graphviz.Digraph:
    """The model as a `graphviz.Digraph` (see `dgmc.render`); imported on use, so loading
    a spec never needs graphviz."""
    from .render import to_digraph

    return to_digraph(model, student, guide)
