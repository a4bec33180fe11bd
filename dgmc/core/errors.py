"""The one error type of dgmc, and its rendering in stanc3's form.

Every user mistake, syntactic or semantic, becomes a `Diagnostic` with a span; a stage
collects all of its diagnostics and raises one `DgmError` holding them, so the user sees
every mistake of a check at once. Rendering:

    Semantic error in 'vae.dgm', line 4, column 3 to 4:
       -------------------------------------------------
         3:    observed x : Bernoulli[64]
         4:    zz -> x
               ^^
       -------------------------------------------------

    Unknown node 'zz'. Did you mean 'z'?
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from .base import Frozen, Span

Severity = Literal["error", "warning"]
Phase = Literal["syntax", "semantic", "data"]

_RULE = "   " + "-" * 49
_CONTEXT_BEFORE = 2
_CONTEXT_AFTER = 1
_MAX_SPAN_LINES = 4


class Diagnostic(Frozen):
    """One located message: an error (the spec is rejected) or a warning."""

    severity: Severity
    phase: Phase
    span: Span
    message: str


class UserError(Exception):
    """A problem the user can fix that is not in the spec text (data, a checkpoint, a
    device, a missing program): the CLI prints its message, without a traceback, and
    exits 1. Each stage subclasses it (`DataError`, `CheckpointError`, `RenderError`)."""


Caller = Literal["command line", "python"]
_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("caller", default="python")

# What a message asks of the caller, in the command line's words and in the Python API's:
# one message serves both, naming the flag to one and the argument to the other.
_WORDS: dict[str, tuple[str, str]] = {
    "data": ("give the data file with --data PATH", "pass data=PATH (the data file) or a mapping node -> tensor"),
    "device": ("use --device {}", "pass device='{}'"),
    "spec": ("give its spec (--spec SPEC)", "pass its spec=PATH"),
    "plugin": ("--plugin {}", "dgmc.load_plugin('{}')"),
}


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Messages raised inside speak the command line's words (its flags); outside, they
    speak the Python API's (its arguments)."""
    token = _CALLER.set("command line")
    try:
        yield
    finally:
        _CALLER.reset(token)


def words(what: str, value: str = "") -> str:
    """`what` (a key of `_WORDS`, filled with `value`) as whoever called dgmc says it:
    `--data PATH` on the command line, `data=PATH` from Python."""
    cli, python = _WORDS[what]
    return (cli if _CALLER.get() == "command line" else python).format(value)


class DgmError(Exception):
    """A spec that dgmc cannot accept. Holds every error found (never only the first)
    and renders them, with the source, in stanc3's form."""

    def __init__(self, diagnostics: Sequence[Diagnostic], source: str, filename: str) -> None:
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: (d.span.start, d.span.end)))
        self.source = source
        self.filename = filename
        super().__init__(self.render())

    def render(self) -> str:
        return "\n\n".join(render(d, self.source, self.filename) for d in self.diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A hint for a misspelled name: " Did you mean 'z1'?", or "" when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def render(diagnostic: Diagnostic, source: str, filename: str) -> str:
    """Header, framed excerpt with line numbers and carets, then the message."""
    return "\n".join([
        f"{_title(diagnostic)} in '{filename}', {_where(diagnostic.span)}:",
        _excerpt(source, diagnostic.span),
        "",
        diagnostic.message,
    ])


def _title(diagnostic: Diagnostic) -> str:
    if diagnostic.severity == "warning":
        return "Warning"
    return {"syntax": "Syntax error", "semantic": "Semantic error", "data": "Data error"}[diagnostic.phase]


def _where(span: Span) -> str:
    last = max(span.end_column - 1, span.column)
    if span.end_line == span.line:
        return f"line {span.line}, column {span.column} to {last}"
    return f"line {span.line}, column {span.column} to line {span.end_line}, column {last}"


def _excerpt(source: str, span: Span) -> str:
    lines = source.splitlines() or [""]
    first = max(1, span.line - _CONTEXT_BEFORE)
    span_last = min(span.end_line, span.line + _MAX_SPAN_LINES - 1)
    last = min(len(lines), span_last + _CONTEXT_AFTER)
    width = len(str(last))
    out = [_RULE]
    for number in range(first, max(last, span.line) + 1):
        text = lines[number - 1] if number <= len(lines) else ""
        out.append(f"   {number:>{width}}:  {text}".rstrip())
        if number == span.line:
            end = span.end_column if span.end_line == span.line else len(text) + 1
            carets = "^" * max(1, end - span.column)
            # Keep the source's tabs under the text, so the carets line up wherever tabs stop.
            indent = "".join(c if c == "\t" else " " for c in text[:span.column - 1])
            out.append(" " * (3 + width + 3) + indent.ljust(span.column - 1) + carets)
    out.append(_RULE)
    return "\n".join(out)


class DataError(UserError):
    """A model whose data cannot be loaded for a reason the checker cannot see (no data
    statement, `classes` that leave too few rows, an IR built by hand that binds a column
    to a node it does not fit). The message names the node and the column."""


class DataFileError(DgmError, DataError):
    """Data that do not fit the spec, located at the binding that reads them: shown like
    a spec error (framed excerpt, caret), caught like any `DataError`."""


class RenderError(UserError):
    """A drawing that cannot be made (no `dot` binary, unknown output format): a user's
    setup problem, reported without a traceback by the CLI."""
