"""The two things every IR element shares: immutability and a source span.

Both IR layers (`dgmc.frontend.syntax`, what the user wrote, and `dgmc.ir`, what it means) are
frozen pydantic models that forbid unknown fields, so a stage can never mutate what an
earlier stage produced and a typo in a field name fails loudly.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, model_serializer


class Frozen(BaseModel):
    """Base of every IR model: immutable, no extra fields. Printed, a model shows what it
    means, not where it came from: its source spans are left out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __repr_args__(self):
        return [(name, value) for name, value in super().__repr_args__() if name != "span"]


class Span(Frozen):
    """A region of the source: 1-based lines and columns, `end_column` exclusive;
    `start`/`end` are character offsets (end exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int

    @model_serializer
    def _compact(self) -> str:
        """IR dumps show spans as `line:col-line:col`, so golden files stay readable."""
        return f"{self.line}:{self.column}-{self.end_line}:{self.end_column}"

    def __str__(self) -> str:
        return self._compact()

    @staticmethod
    def cover(first: Span, last: Span) -> Span:
        """The span from the start of `first` to the end of `last`."""
        return Span(
            line=first.line, column=first.column, end_line=last.end_line,
            end_column=last.end_column, start=first.start, end=last.end,
        )


def without_spans(dump: Any) -> Any:
    """An IR dump (`model_dump(mode="json")`) with every span removed: what stays the
    same when a spec is only reformatted."""
    if isinstance(dump, dict):
        return {k: without_spans(v) for k, v in dump.items() if k != "span"}
    if isinstance(dump, list):
        return [without_spans(v) for v in dump]
    return dump


P = ParamSpec("P")
R = TypeVar("R")

NOWHERE = Span(line=1, column=1, end_line=1, end_column=1, start=0, end=0)
"""The span of things no text wrote (defaults filled in by the checker)."""


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` with the cyclic garbage collector paused. Building an IR allocates tens
    of thousands of small objects and no cycles; the collector's passes over them made a
    10,000-node spec take twice as long to parse (bench/front_end.py)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return wrapper


def lazy_import(name: str) -> types.ModuleType:
    """The module `name`, loaded on its first attribute access: what registers families
    and networks can name torch's functions while `dgmc check`, which only reads their
    metadata, never pays the seconds torch takes to import."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
