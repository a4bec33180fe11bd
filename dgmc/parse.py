"""Text -> syntax IR. The Lark grammar lives in `grammar/dgm.lark` at the top of the
repository (and inside the wheel as `dgmc/grammar/dgm.lark`); one Transformer builds the
syntax IR directly from the parse tree, keeping every element's span. Lark's exceptions
never escape: they become a located `DgmError`.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from . import syntax as s
from .base import Span
from .errors import DgmError, Diagnostic

GRAMMAR_NAME = "dgm.lark"
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FRIENDLY = {"NAME": "a name", "NUMBER": "a number", "INT": "an integer", "$END": "the end of the file"}


def grammar_path() -> Path:
    """Where the grammar is: inside the installed package, else in the source tree."""
    packaged = resources.files("dgmc").joinpath("grammar").joinpath(GRAMMAR_NAME)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "grammar" / GRAMMAR_NAME


@functools.cache
def parser() -> Lark:
    return Lark(grammar_path().read_text(), parser="lalr", propagate_positions=True)


def parse(text: str, filename: str = "<string>") -> s.Spec:
    """Parse `.dgm` text into the syntax IR, or raise `DgmError` with a syntax error."""
    try:
        tree = parser().parse(text)
    except UnexpectedInput as exc:
        raise DgmError([_syntax_diagnostic(exc, text)], text, filename) from None
    return ToSyntax().transform(tree)


def comments(text: str) -> list[tuple[int, int, str]]:
    """Every comment as (line, column, text). The language has no string literals, so a
    `#` always starts a comment."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        column = line.find("#")
        if column >= 0:
            found.append((number, column + 1, line[column:].rstrip()))
    return found


def _span(meta: Any) -> Span:
    return Span(
        line=meta.line, column=meta.column, end_line=meta.end_line,
        end_column=meta.end_column, start=meta.start_pos, end=meta.end_pos,
    )


def _name(token: Token) -> s.Name:
    return s.Name(text=str(token), span=_span(token))


@v_args(meta=True)
class ToSyntax(Transformer):
    """The one Transformer: parse tree -> `dgmc.syntax` models, spans from Lark's meta."""

    def start(self, meta, children):
        name, *stmts = children
        return s.Spec(name=_name(name), stmts=tuple(stmts), span=_span(meta))

    def kind(self, meta, children):
        return str(children[0])

    def const_stmt(self, meta, children):
        name, value = children
        return s.ConstStmt(name=_name(name), value=value, span=_span(meta))

    def time_stmt(self, meta, children):
        var, first, last = children
        return s.TimeStmt(var=_name(var), first=first, last=last, span=_span(meta))

    def time_dim(self, meta, children):
        return _name(children[0])

    def node_decl(self, meta, children):
        kind, name, *rest = children
        time_var = rest.pop(0) if isinstance(rest[0], s.Name) else None
        type_token, size, *args = rest
        return s.NodeDecl(
            kind=kind, name=_name(name), time_var=time_var, type=_name(type_token),
            size=size, args=args[0] if args else (), span=_span(meta),
        )

    def edge_stmt(self, meta, children):
        via = children.pop() if isinstance(children[-1], s.Network) else None
        return s.EdgeStmt(chain=tuple(children), via=via, span=_span(meta))

    def refs(self, meta, children):
        return tuple(children)

    def ref(self, meta, children):
        index = children[1] if len(children) > 1 else None
        return s.Ref(name=_name(children[0]), index=index, span=_span(meta))

    def index(self, meta, children):
        offset = 0
        if len(children) == 3:
            offset = int(children[2]) * (-1 if children[1] == "-" else 1)
        return s.Index(var=_name(children[0]), offset=offset, span=_span(meta))

    def via(self, meta, children):
        return children[0]

    def network(self, meta, children):
        args = children[1] if len(children) > 1 else ()
        return s.Network(name=_name(children[0]), args=args, span=_span(meta))

    def init_stmt(self, meta, children):
        return s.InitStmt(name=_name(children[0]), value=children[1], span=_span(meta))

    def default_stmt(self, meta, children):
        return s.DefaultStmt(via=children[0], span=_span(meta))

    def data_stmt(self, meta, children):
        dataset, *rest = children
        args = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        bindings = tuple(b for b in rest if b is not None)
        return s.DataStmt(dataset=_name(dataset), args=args, bindings=bindings, span=_span(meta))

    def binding(self, meta, children):
        return s.Binding(node=_name(children[0]), column=_name(children[1]), span=_span(meta))

    def guide_block(self, meta, children):
        return s.GuideBlock(edges=tuple(children), span=_span(meta))

    def train_stmt(self, meta, children):
        args = children[1] if len(children) > 1 else ()
        return s.TrainStmt(objective=_name(children[0]), args=args, span=_span(meta))

    def distill_stmt(self, meta, children):
        args = children.pop(0) if children and isinstance(children[0], tuple) else ()
        return s.DistillStmt(args=args, items=tuple(children), span=_span(meta))

    def distill_item(self, meta, children):
        node, *rest = children
        divergence = _name(rest.pop(0)) if rest and isinstance(rest[0], Token) else None
        via = rest[0] if rest else None
        return s.DistillItem(node=_name(node), divergence=divergence, via=via, span=_span(meta))

    def arglist(self, meta, children):
        return tuple(c for c in children if c is not None)

    def arg(self, meta, children):
        key = _name(children[0]) if len(children) == 2 else None
        return s.Arg(key=key, value=children[-1], span=_span(meta))

    def list(self, meta, children):
        return s.ListValue(items=tuple(c for c in children if c is not None), span=_span(meta))

    def symbol(self, meta, children):
        return _name(children[0])

    def number(self, meta, children):
        return s.Number(text=str(children[0]), span=_span(meta))


def _syntax_diagnostic(exc: UnexpectedInput, text: str) -> Diagnostic:
    span, message = _describe(exc, text)
    return Diagnostic(severity="error", phase="syntax", span=span, message=message)


def _describe(exc: UnexpectedInput, text: str) -> tuple[Span, str]:
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        return _point(text, exc.pos_in_stream), f"Unexpected character {char!r}."
    token = getattr(exc, "token", None)
    expected = _expected(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ())
    if isinstance(exc, UnexpectedEOF) or token is None or token.type == "$END":
        return _point(text, len(text)), f"The file ends too early: expected {expected}."
    assert isinstance(exc, UnexpectedToken)
    span = _span(token)
    if "NAME" in exc.expected and _NAME_RE.match(str(token)):
        return span, f"'{token}' is a reserved word and cannot be used as a name here."
    return span, f"Unexpected '{token}': expected {expected}."


def _expected(names: Any) -> str:
    shown = sorted({_terminal_text(name) for name in names})
    if not shown:
        return "something else"
    if len(shown) == 1:
        return shown[0]
    return "one of " + ", ".join(shown)


def _terminal_text(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        pattern = parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name.lower()


def _point(text: str, offset: int) -> Span:
    """A one-character span at `offset` (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(line=line, column=column, end_line=line, end_column=column + 1, start=offset, end=offset + 1)
