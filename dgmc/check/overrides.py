"""Distillation settings given outside the spec: on the command line (`dgmc run
--stage 0.3`) or to a Python call (`dgmc.distill(model, teacher, width=0.5)`).

Each is read by the checker's own rule for the spec's setting
(`recipes.distill_settings`), so it is refused wherever the spec's would be, with an
error located in the text it was given in: the command line, framed like a spec with a
caret under the value. A model changed so prints back as a spec (`recorded`) that
re-parses to it: what a run directory keeps, so that everything it made loads back from
it alone.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import ir
from ..core.base import NOWHERE, Span
from ..core.errors import DgmError
from ..frontend import syntax as s
from ..frontend.fmt import format_spec
from ..frontend.parse import parse
from .context import Context
from .recipes import SETTINGS, distill_settings

COMMAND_LINE = "<command line>"
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")  # the grammar's NUMBER


@dataclass(frozen=True)
class Overrides:
    """Distillation settings in place of the spec's: `args` as the checker reads them,
    keyed as they were given (`--stage`, `lam`) and located in `source` (the command
    line, or the call); `keys`, each one's key in a spec (`stage`, `lambda`)."""

    args: tuple[s.Arg, ...] = ()
    keys: tuple[str, ...] = ()
    source: str = ""
    filename: str = COMMAND_LINE

    def __bool__(self) -> bool:
        return bool(self.args)

    @classmethod
    def from_argv(cls, argv: Sequence[str], given: Mapping[str, tuple[str, object]]) -> Overrides:
        """The options `given` (option -> (spec key, parsed value or list); None: not given)
        located on the command line `dgmc ARGV`, each value as it was typed."""
        tokens = ["dgmc", *argv]
        found = []
        for option, (key, parsed) in given.items():
            if parsed is None:
                continue
            values = list(parsed) if isinstance(parsed, list | tuple) else [parsed]
            where = _typed(tokens, option, values)
            if where is None:  # a default argparse filled in: shown as if typed at the end
                where = (len(tokens), [len(tokens) + 1 + i for i in range(len(values))], None)
                tokens += [option, *map(_text, values)]
            found.append((option, key, values, where))
        starts, text = [], ""
        for token in tokens:
            starts.append(len(text) + (1 if text else 0))
            text += (" " if text else "") + shlex.quote(token)
        args, keys = [], []
        for option, key, _, (flag, positions, inside) in found:
            def span(index: int, offset: int = 0, length: int | None = None) -> Span:
                start = starts[index] + offset
                return _span(start, start + (len(shlex.quote(tokens[index])) if length is None else length))

            if inside is not None:  # --stage=1.5: the value inside the option's token
                typed, spans = [tokens[flag][inside:]], [span(flag, inside, len(tokens[flag]) - inside)]
            else:
                typed, spans = [tokens[i] for i in positions], [span(i) for i in positions]
            items = tuple(_value(v, sp) for v, sp in zip(typed, spans, strict=True))
            value = items[0] if len(items) == 1 else s.ListValue(items=items, span=_cover(spans))
            name = s.Name(text=option, span=span(flag, 0, len(tokens[flag].split("=")[0])))
            args.append(s.Arg(key=name, value=value, span=_cover([name.span, *spans])))
            keys.append(key)
        return cls(tuple(args), tuple(keys), text, COMMAND_LINE)

    @classmethod
    def from_call(cls, call: str, given: Mapping[str, tuple[str, object]]) -> Overrides:
        """The keyword arguments `given` (name -> (spec key, value); None: not given) of the
        Python call `call`, located in `call(name=value, ...)`."""
        text, args, keys = call + "(", [], []
        for name, (key, value) in given.items():
            if value is None:
                continue
            text += ", " if args else ""
            start = len(text) + len(name) + 1
            shown = _text(value)
            text += f"{name}={shown}"
            item = _value(value, _span(start, start + len(shown)))
            args.append(s.Arg(key=s.Name(text=name, span=_span(start - len(name) - 1, start - 1)), value=item,
                              span=_span(start - len(name) - 1, start + len(shown))))
            keys.append(key)
        return cls(tuple(args), tuple(keys), text + ")", call)


NO_OVERRIDES = Overrides()
"""The spec's own settings."""


def apply(model: ir.Model, overrides: Overrides) -> ir.Model:
    """`model` with the settings of `overrides`, each checked by the rule of the spec's
    own setting; a `DgmError` located in the overrides' text names every refused one."""
    if not overrides:
        return model
    assert set(overrides.keys) <= set(SETTINGS), overrides.keys
    ctx = Context(consts=dict(model.consts))
    fields = distill_settings(ctx, {key: arg for key, arg in zip(overrides.keys, overrides.args, strict=True)})
    if ctx.failed:
        raise DgmError(ctx.diagnostics, overrides.source, overrides.filename)
    return model.model_copy(update={"distill": model.distill.model_copy(update=fields)})


def recorded(text: str, filename: str, overrides: Overrides) -> str:
    """The spec `text` with the settings of (checked) `overrides` written into its distill
    statement, in canonical form (comments kept): it re-parses to `apply(load(text),
    overrides)`. Without overrides, `text` as it is."""
    if not overrides:
        return text
    spec = parse(text, filename)
    given = {key: s.Arg(key=s.Name(text=key, span=NOWHERE), value=_respan(arg.value), span=NOWHERE)
             for key, arg in zip(overrides.keys, overrides.args, strict=True)}
    old = next((stmt for stmt in spec.stmts if isinstance(stmt, s.DistillStmt)), None)
    if old is None:
        end = spec.span.model_copy(update={"line": spec.span.end_line, "start": spec.span.end})
        stmts = (*spec.stmts, s.DistillStmt(args=tuple(given.values()), items=(), span=end))
    else:
        kept = tuple(given.pop(arg.key.text, arg) if arg.key is not None else arg for arg in old.args)
        new = old.model_copy(update={"args": kept + tuple(given.values())})
        stmts = tuple(new if stmt is old else stmt for stmt in spec.stmts)
    return format_spec(spec.model_copy(update={"stmts": stmts}), text)


def _typed(tokens: list[str], option: str, values: list) -> tuple[int, list[int], int | None] | None:
    """Where `option` and its values were typed among `tokens` (its last occurrence, as
    argparse reads it; an abbreviation too): the option's index, its values' indices,
    and for `--option=value` the value's offset inside the option's token."""
    for index in range(len(tokens) - 1, 0, -1):
        token = tokens[index]
        flag = token.split("=", 1)[0]
        if not (token.startswith("--") and len(flag) > 2 and option.startswith(flag)):
            continue
        if "=" in token:
            return (index, [], len(flag) + 1) if len(values) == 1 else None
        positions = list(range(index + 1, index + 1 + len(values)))
        if positions[-1] < len(tokens) and all(_same(tokens[i], v) for i, v in zip(positions, values, strict=True)):
            return index, positions, None
        return None
    return None


def _same(token: str, value: object) -> bool:
    try:
        return type(value)(token) == value
    except ValueError:
        return False


def _text(value: object) -> str:
    """A value as a spec writes it."""
    return repr(value) if isinstance(value, float) else str(value)


def _value(value: object, span: Span) -> s.Number | s.Name:
    """A given value as the syntax IR holds it: a number in the grammar's form, or a name."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return s.Name(text=str(value), span=span)
    if isinstance(value, str):
        if _NUMBER.fullmatch(value):
            return s.Number(text=value, span=span)
        try:
            number = float(value)
        except ValueError:
            return s.Name(text=value, span=span)
        return s.Number(text=_text(int(number) if number.is_integer() and "." not in value else number), span=span)
    shown = _text(value)
    return s.Number(text=shown if _NUMBER.fullmatch(shown) else repr(float(value)), span=span)


def _respan(value: s.Value) -> s.Value:
    """A value without the overrides' locations (they point into another text)."""
    if isinstance(value, s.ListValue):
        return s.ListValue(items=tuple(_respan(item) for item in value.items), span=NOWHERE)
    return value.model_copy(update={"span": NOWHERE})


def _span(start: int, end: int) -> Span:
    """A span on the one line of a command line or a call."""
    return Span(line=1, column=start + 1, end_line=1, end_column=end + 1, start=start, end=end)


def _cover(spans: list[Span]) -> Span:
    return Span.cover(spans[0], spans[-1])
