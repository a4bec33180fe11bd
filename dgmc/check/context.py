"""The checker's shared state: collected diagnostics and the resolution of values.

Every check function takes a `Context`, reports through `error`/`warn`, and carries on:
one mistake never stops the others from being found.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .. import ir
from ..core.base import Span
from ..core.errors import Diagnostic, did_you_mean
from ..frontend import syntax as s

LEARNED = "learned"
KEYWORDS = frozenset({
    "model", "const", "time", "in", "input", "latent", "observed", "deterministic",
    "via", "init", "default", "network", "data", "guide", "train", "distill",
})


@dataclass
class Context:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    consts: dict[str, int | float] = field(default_factory=dict)
    time_var: str = "t"
    """The model's time variable, for messages that suggest `x[t-1]`."""
    steps: tuple[int, int] | None = None
    """The model's first and last step, once the time statement checks."""
    shared: dict[str, ir.Network] = field(default_factory=dict)
    """The networks of `network NAME = ...` statements, by name, for `via NAME`."""

    def error(self, span: Span, message: str) -> None:
        self.diagnostics.append(Diagnostic(severity="error", phase="semantic", span=span, message=message))

    def warn(self, span: Span, message: str) -> None:
        self.diagnostics.append(Diagnostic(severity="warning", phase="semantic", span=span, message=message))

    def not_keyword(self, name: s.Name) -> None:
        if name.text in KEYWORDS:
            self.error(name.span, f"'{name.text}' is a reserved word and cannot be used as a name.")

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    def unknown(self, what: str, name: s.Name, known: Iterable[str], of: str | None = None,
                listed: bool = True) -> None:
        """`Unknown network 'mpl' (known: mlp, linear, gru, lstm). Did you mean 'mlp'?`,
        or with `of`: `digits has no column 'pixel' (known: ...). Did you mean 'pixels'?`
        What is registered is `listed`; the spec's own names (nodes, constants) are not."""
        known = list(known)
        where = f" (known: {', '.join(known) or 'none'})" if listed else ""
        head = f"{of} has no {what} '{name.text}'{where}." if of else f"Unknown {what} '{name.text}'{where}."
        self.error(name.span, head + did_you_mean(name.text, known))

    def number(self, value: s.Value, what: str) -> float | None:
        """A numeric value: a literal or a constant's name."""
        if isinstance(value, s.Number):
            number = value.value
        elif isinstance(value, s.Name) and value.text in self.consts:
            number = self.consts[value.text]
        elif isinstance(value, s.Name):
            self.unknown("constant", value, self.consts, listed=False)
            return None
        else:
            self.error(value.span, f"{what} must be a single number, not a list.")
            return None
        if not math.isfinite(number):
            self.error(value.span, f"{what} must be a finite number.")
            return None
        return number

    def integer(self, value: s.Value, what: str, minimum: int) -> int | None:
        number = self.number(value, what)
        if number is None:
            return None
        if not isinstance(number, int) or number < minimum:
            self.error(value.span, f"{what} must be an integer >= {minimum}, not {_show(number)}.")
            return None
        return number

    def positive(self, value: s.Value, what: str) -> float | None:
        number = self.number(value, what)
        if number is not None and number <= 0:
            self.error(value.span, f"{what} must be positive, not {_show(number)}.")
            return None
        return None if number is None else float(number)

    def number_or_learned(self, value: s.Value, what: str) -> float | str | None:
        if isinstance(value, s.Name) and value.text == LEARNED:
            return LEARNED
        number = self.number(value, what)
        return None if number is None else float(number)

    def keyword_args(self, args: Sequence[s.Arg], allowed: Sequence[str], where: str) -> dict[str, s.Arg]:
        """The `key = value` arguments of a call, by key; reports positional arguments,
        repeated keys and keys not in `allowed`."""
        found: dict[str, s.Arg] = {}
        for arg in args:
            if arg.key is None:
                self.error(arg.span, f"{where} takes only named arguments, such as {allowed[0]} = ..."
                           if allowed else f"{where} takes no arguments.")
            elif arg.key.text not in allowed:
                hint = did_you_mean(arg.key.text, allowed)
                known = ", ".join(allowed) if allowed else "none"
                self.error(arg.key.span, f"{where} has no argument '{arg.key.text}'.{hint} It takes: {known}.")
            elif arg.key.text in found:
                self.error(arg.key.span, f"Argument '{arg.key.text}' is given twice.")
            else:
                found[arg.key.text] = arg
        return found


def scalars(value: s.Value) -> tuple[s.Number | s.Name, ...]:
    """The items of a list, or the value itself as a one-item tuple."""
    return value.items if isinstance(value, s.ListValue) else (value,)


def _show(number: float) -> str:
    return repr(number)


def single(ctx: Context, spec: s.Spec, kind: type, what: str):
    """The one statement of a kind that a model may have (or None); every further one is
    an error: "The model has one `what` statement, already given on line N"."""
    stmts = stmts_of(spec, kind)
    for extra in stmts[1:]:
        ctx.error(extra.span, f"The model has one {what} statement, already given on line {stmts[0].span.line}.")
    return stmts[0] if stmts else None


def stmts_of(spec: s.Spec, kind: type) -> list:
    """The top-level statements of one kind, in file order."""
    return [stmt for stmt in spec.stmts if isinstance(stmt, kind)]
