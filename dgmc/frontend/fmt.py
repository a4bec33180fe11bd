"""Canonical formatting of `.dgm` files: the syntax IR printed back, comments kept.

The printer turns each statement into `Entry`s (one per output line) that remember the
source lines they came from; a second pass places every comment by those lines:
a comment after code stays at the end of that line, a comment on a line of its own goes
before the next entry. Single blank lines between statements are kept. Formatting is
idempotent and never changes the meaning: `parse(format_text(t))` equals `parse(t)` up
to spans.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from . import syntax as s
from .parse import comments, parse

INDENT = "  "


@dataclass
class Entry:
    """One output line and the source lines `first..last` it prints."""

    text: str
    depth: int
    first: int
    last: int
    opens: bool = False
    closes: bool = False
    leading: list[tuple[int, str]] = field(default_factory=list)
    trailing: list[str] = field(default_factory=list)


def format_text(text: str, filename: str = "<string>") -> str:
    """The canonical form of `text`; raises `DgmError` if it does not parse."""
    return format_spec(parse(text, filename), text)


def format_spec(spec: s.Spec, text: str) -> str:
    """The canonical form of `spec`, parsed from `text` and perhaps rewritten since (a
    statement replaced keeps its span): `text`'s comments and blank lines kept."""
    entries = list(_spec(spec))
    lines = text.splitlines()
    tail = _place_comments(entries, comments(text), lines)
    return _emit(entries, tail, lines)


# -- printing the syntax IR -------------------------------------------------------------

def _spec(spec: s.Spec) -> Iterator[Entry]:
    yield Entry(f"model {spec.name.text} {{", 0, spec.span.line, spec.span.line, opens=True)
    for stmt in spec.stmts:
        yield from _stmt(stmt, 1)
    yield Entry("}", 0, spec.span.end_line, spec.span.end_line, closes=True)


def _stmt(stmt: s.Stmt, depth: int) -> Iterator[Entry]:
    if isinstance(stmt, s.GuideBlock):
        yield from _block("guide", (_edge(e) if isinstance(e, s.EdgeStmt) else _line(e) for e in stmt.stmts),
                          stmt.stmts, stmt, depth)
    elif isinstance(stmt, s.DistillStmt):
        head = "distill" + _args(stmt.args)
        yield from _block(head, (_distill_item(i) for i in stmt.items), stmt.items, stmt, depth)
    else:
        yield Entry(_line(stmt), depth, stmt.span.line, stmt.span.end_line)


def _block(head: str, texts: Iterator[str], items: tuple, stmt: s.Stmt, depth: int) -> Iterator[Entry]:
    """`head { items }` over several lines; a block with no items prints as `head`
    (`guide {}` for an empty guide)."""
    if not items:
        yield Entry(head + (" {}" if head == "guide" else ""), depth, stmt.span.line, stmt.span.end_line)
        return
    first = items[0].span.line
    yield Entry(head + " {", depth, stmt.span.line, max(stmt.span.line, first - 1), opens=True)
    for text, item in zip(texts, items, strict=True):
        yield Entry(text, depth + 1, item.span.line, item.span.end_line)
    yield Entry("}", depth, stmt.span.end_line, stmt.span.end_line, closes=True)


def _line(stmt: s.Stmt) -> str:
    if isinstance(stmt, s.ConstStmt):
        return f"const {stmt.name.text} = {stmt.value.text}"
    if isinstance(stmt, s.TimeStmt):
        return f"time {stmt.var.text} in {_value(stmt.first)}..{_value(stmt.last)}"
    if isinstance(stmt, s.NodeDecl):
        index = f"[{stmt.time_var.text}]" if stmt.time_var else ""
        return (f"{stmt.kind} {stmt.name.text}{index} : {stmt.type.text}[{', '.join(_value(d) for d in stmt.shape)}]"
                f"{_args(stmt.args)}")
    if isinstance(stmt, s.EdgeStmt):
        return _edge(stmt)
    if isinstance(stmt, s.InitStmt):
        if stmt.family is not None:
            return f"init {stmt.name.text} ~ {stmt.family.text}{_args(stmt.args)}"
        return f"init {stmt.name.text} = {_value(stmt.value)}"
    if isinstance(stmt, s.DefaultStmt):
        return f"default via {_network(stmt.via)}"
    if isinstance(stmt, s.CondStmt):
        args = ", ".join(f"{a.key.text} = {_expr(a.value)}" for a in stmt.args)
        return f"{_ref(stmt.target)} ~ {stmt.family.text}({args})"
    if isinstance(stmt, s.NetworkStmt):
        return f"network {stmt.name.text} = {_network(stmt.net)}"
    if isinstance(stmt, s.DataStmt):
        bindings = ", ".join(f"{b.node.text} = {_bound(b.source)}" for b in stmt.bindings)
        return f"data {stmt.dataset.text}{_args(stmt.args)} {{{f' {bindings} ' if bindings else ''}}}"
    if isinstance(stmt, s.TrainStmt):
        return f"train {stmt.objective.text}{_args(stmt.args)}"
    raise TypeError(f"no printer for {type(stmt).__name__}")


def _edge(edge: s.EdgeStmt) -> str:
    chain = " -> ".join(", ".join(_ref(r) for r in group) for group in edge.chain)
    return chain + (f" via {_network(edge.via)}" if edge.via else "")


def _ref(ref: s.Ref) -> str:
    if ref.index is None:
        return ref.name.text
    if ref.index.var is None:
        return f"{ref.name.text}[{ref.index.offset}]"
    offset = f"{ref.index.offset:+d}" if ref.index.offset else ""
    return f"{ref.name.text}[{ref.index.var.text}{offset}]"


def _network(net: s.Network) -> str:
    return net.name.text + _args(net.args)


def _distill_item(item: s.DistillItem) -> str:
    text = item.node.text
    if item.divergence:
        text += f" : {item.divergence.text}"
    if item.via:
        text += f" via {_network(item.via)}"
    return text


def _bound(source: s.Name | s.Columns | s.Transform) -> str:
    """`pixels`, `[eruptions, waiting]`, `scale(pixels, max = 255)`."""
    if isinstance(source, s.Transform):
        args = "".join(", " + (f"{a.key.text} = " if a.key else "") + _value(a.value) for a in source.args)
        return f"{source.name.text}({_bound(source.source)}{args})"
    if isinstance(source, s.Columns):
        return "[" + ", ".join(n.text for n in source.names) + "]"
    return source.text


def _args(args: tuple[s.Arg, ...]) -> str:
    if not args:
        return ""
    return "(" + ", ".join((f"{a.key.text} = " if a.key else "") + _value(a.value) for a in args) + ")"


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _expr(expr: s.Expr) -> str:
    """An expression with the parentheses its tree needs and no others: an operand binds
    looser than its operator's (and a right operand of equal rank, the grammar being
    left-associative) is parenthesised, so printing and parsing give the same tree."""
    if isinstance(expr, s.BinOp):
        rank = _PRECEDENCE[expr.op]
        left, right = _expr(expr.left), _expr(expr.right)
        if _rank(expr.left) < rank:
            left = f"({left})"
        if _rank(expr.right) <= rank:
            right = f"({right})"
        return f"{left} {expr.op} {right}"
    if isinstance(expr, s.Neg):
        inner = _expr(expr.operand)
        plain = _rank(expr.operand) > 3 and not inner.startswith("-")
        return f"-{inner}" if plain else f"-({inner})"
    if isinstance(expr, s.Call):
        return f"{expr.func.text}({_expr(expr.arg)})"
    if isinstance(expr, s.Ref):
        return _ref(expr)
    return expr.text


def _rank(expr: s.Expr) -> int:
    """How tightly an expression binds: sums 1, products 2, negations 3, atoms 4."""
    if isinstance(expr, s.BinOp):
        return _PRECEDENCE[expr.op]
    return 3 if isinstance(expr, s.Neg) else 4


def _value(value: s.Value) -> str:
    if isinstance(value, s.ListValue):
        return "[" + ", ".join(_value(v) for v in value.items) + "]"
    return value.text


# -- comments and blank lines -----------------------------------------------------------

def _place_comments(entries: list[Entry], found: list[tuple[int, int, str]], lines: list[str]) -> list[str]:
    """Attach each comment to an entry; return those after the last entry."""
    tail: list[str] = []
    for line, column, text in found:
        own_line = not lines[line - 1][: column - 1].strip()
        inside = [e for e in entries if e.first <= line <= e.last and (not own_line or e.first < line)]
        if inside:
            inside[-1].trailing.append(text)
            continue
        following = next((e for e in entries if e.first > line), None)
        if following is None:
            tail.append(text)
        else:
            following.leading.append((line, text))
    return tail


def _emit(entries: list[Entry], tail: list[str], lines: list[str]) -> str:
    out: list[str] = []
    previous: Entry | None = None
    for entry in entries:
        depth = entry.depth + 1 if entry.closes else entry.depth
        for line, text in entry.leading:
            _blank_if_gap(out, previous, line, lines)
            out.append(INDENT * depth + text)
            previous = Entry("", 0, line, line)
        _blank_if_gap(out, previous, entry.first, lines, closing=entry.closes)
        trailing = ("  " + " ".join(entry.trailing)) if entry.trailing else ""
        out.append(INDENT * entry.depth + entry.text + trailing)
        previous = entry
    out.extend(tail)
    return "\n".join(out) + "\n"


def _blank_if_gap(out: list[str], previous: Entry | None, line: int, lines: list[str],
                  closing: bool = False) -> None:
    """One blank line where the source had at least one between two items, except
    right after an opening brace or right before a closing one."""
    if previous is None or previous.opens or closing:
        return
    if any(not lines[n - 1].strip() for n in range(previous.last + 1, line) if n <= len(lines)):
        out.append("")
