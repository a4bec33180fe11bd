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

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from ..core.base import Span, gc_paused
from ..core.errors import DgmError, Diagnostic, did_you_mean
from . import syntax as s

GRAMMAR_NAME = "dgm.lark"
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A node named by one of these cannot begin an edge statement: there the word is lexed
# as the keyword, and what follows the name (`->`, `,`, `[`) is a syntax error.
_STATEMENT_KEYWORDS = frozenset({
    "const", "time", "input", "latent", "observed", "deterministic", "init", "default", "data", "guide",
    "train", "distill",
})
_AFTER_NODE = frozenset({"->", ",", "["})
_FRIENDLY = {"NAME": "a name", "NUMBER": "a number", "INT": "an integer", "$END": "the end of the file"}


def grammar_path() -> Path:
    """Where the grammar is: inside the installed package, else in the source tree."""
    packaged = resources.files("dgmc").joinpath("grammar").joinpath(GRAMMAR_NAME)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "grammar" / GRAMMAR_NAME


@functools.cache
def parser() -> Lark:
    return Lark(grammar_path().read_text(), parser="lalr", propagate_positions=True)


@gc_paused
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


class ToSyntax:
    """The one Transformer: parse tree -> `dgmc.frontend.syntax` models, spans from Lark's meta.

    One method per grammar rule, called bottom-up with the rule's meta and its already
    transformed children. It walks the tree with a loop rather than recursion (no depth
    limit on nesting) and skips Lark's per-call wrappers, which cost more than the
    parse itself on large specs.
    """

    def transform(self, tree: Tree) -> s.Spec:
        done: dict[int, Any] = {}
        for sub in tree.iter_subtrees():  # children before parents
            children = [done.pop(id(c)) if isinstance(c, Tree) else c for c in sub.children]
            done[id(sub)] = getattr(self, sub.data)(sub.meta, children)
        return done[id(tree)]

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
        type_token, shape, *args = rest
        return s.NodeDecl(
            kind=kind, name=_name(name), time_var=time_var, type=_name(type_token),
            shape=shape, args=args[0] if args else (), span=_span(meta),
        )

    def shape(self, meta, children):
        return tuple(children)

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

    def step_index(self, meta, children):
        return s.Index(var=None, offset=int(children[0]), span=_span(meta))

    def via(self, meta, children):
        return children[0]

    def network(self, meta, children):
        args = children[1] if len(children) > 1 else ()
        return s.Network(name=_name(children[0]), args=args, span=_span(meta))

    def init_stmt(self, meta, children):
        return s.InitStmt(name=_name(children[0]), value=children[1], span=_span(meta))

    def init_dist(self, meta, children):
        args = children[2] if len(children) > 2 else ()
        return s.InitStmt(name=_name(children[0]), family=_name(children[1]), args=args, span=_span(meta))

    def default_stmt(self, meta, children):
        return s.DefaultStmt(via=children[0], span=_span(meta))

    def cond_stmt(self, meta, children):
        target, family, *args = children
        return s.CondStmt(target=target, family=_name(family), args=tuple(a for a in args if a is not None),
                          span=_span(meta))

    def cond_arg(self, meta, children):
        return s.CondArg(key=_name(children[0]), value=children[1], span=_span(meta))

    def _binary(op):  # one method per operator rule
        def build(self, meta, children):
            return s.BinOp(op=op, left=children[0], right=children[1], span=_span(meta))
        return build

    add, sub, mul, div = _binary("+"), _binary("-"), _binary("*"), _binary("/")

    def neg(self, meta, children):
        return s.Neg(operand=children[0], span=_span(meta))

    def call(self, meta, children):
        return s.Call(func=_name(children[0]), arg=children[1], span=_span(meta))

    def network_stmt(self, meta, children):
        name, net = children
        return s.NetworkStmt(name=_name(name), net=net, span=_span(meta))

    def data_stmt(self, meta, children):
        dataset, *rest = children
        args = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        bindings = tuple(b for b in rest if b is not None)
        return s.DataStmt(dataset=_name(dataset), args=args, bindings=bindings, span=_span(meta))

    def binding(self, meta, children):
        return s.Binding(node=_name(children[0]), source=children[1], span=_span(meta))

    def column(self, meta, children):
        return _name(children[0])

    def columns(self, meta, children):
        return s.Columns(names=tuple(_name(c) for c in children), span=_span(meta))

    def transformed(self, meta, children):
        name, source, *args = children
        return s.Transform(name=_name(name), source=source, args=tuple(args), span=_span(meta))

    def guide_block(self, meta, children):
        return s.GuideBlock(stmts=tuple(children), span=_span(meta))

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
        digits = re.match(r"\.[0-9]+", text[exc.pos_in_stream:])
        if digits:
            number = digits.group()
            return _point(text, exc.pos_in_stream), (
                f"A number needs a digit before its point: write 0{number}, not {number}.")
        return _point(text, exc.pos_in_stream), f"Unexpected character {char!r}."
    token = getattr(exc, "token", None)
    names = getattr(exc, "expected", None) or getattr(exc, "accepts", None) or ()
    expected = _expected(names)
    if isinstance(exc, UnexpectedEOF) or token is None or token.type == "$END":
        unclosed = _unclosed_brace(text)
        if unclosed is not None and "'}'" in {_terminal_text(name) for name in names}:
            line = text.count("\n", 0, unclosed) + 1
            return _point(text, len(text)), f"The file ends too early: the '{{' on line {line} is never closed."
        return _point(text, len(text)), f"The file ends too early: expected {expected}."
    assert isinstance(exc, UnexpectedToken)
    span = _span(token)
    unclosed = _unclosed_block(text, token, names)
    if unclosed is not None:
        return span, unclosed
    misspelled = _not_a_statement(text, exc)
    if misspelled is not None:
        return misspelled
    keyword = _previous_word(text, token.start_pos)
    if keyword is not None and str(token) in _AFTER_NODE and text[keyword[0]:keyword[1]] in _STATEMENT_KEYWORDS:
        word = text[keyword[0]:keyword[1]]
        return _range(text, *keyword), f"'{word}' is a reserved word and cannot be used as a node name."
    if "NAME" in exc.expected and _NAME_RE.match(str(token)):
        return span, f"'{token}' is a reserved word and cannot be used as a name here."
    return span, f"Unexpected '{token}': expected {expected}."


def _unclosed_block(text: str, token: Token, expected: Any) -> str | None:
    """A statement keyword where a block could still close: the block's `}` is missing
    (not the keyword misused as a name)."""
    if str(token) not in _STATEMENT_KEYWORDS or "RBRACE" not in expected:
        return None
    brace = _unclosed_brace(text[:token.start_pos])
    if brace is None:
        return None
    line = text.count("\n", 0, brace) + 1
    opener = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", text.splitlines()[line - 1])
    owner = opener.group(1) if opener else ""
    block = f"the `{owner}` block" if owner in _STATEMENT_KEYWORDS else "the block"
    return (f"'{token}' begins a new statement, but {block} opened on line {line} is not closed: "
            f"add its '}}' before this line.")


def _not_a_statement(text: str, exc: UnexpectedToken) -> tuple[Span, str] | None:
    """A word that begins a statement but is no keyword, followed by something that does
    not continue an edge: a misspelled statement keyword (`laten z : ...`), or an edge
    without its arrow (`a b -> c`)."""
    first = _statement_start(exc)
    if first is None or str(exc.token) in _AFTER_NODE:
        return None
    hint = did_you_mean(str(first), sorted(_STATEMENT_KEYWORDS))
    if hint:
        return _span(first), f"'{first}' does not begin a statement.{hint}"
    if exc.token.type != "NAME":
        return None
    return _span(exc.token), (f"Unexpected '{exc.token}' after '{first}': a statement begins with a keyword "
                              f"({', '.join(sorted(_STATEMENT_KEYWORDS))}) or is an edge such as `{first} -> ...`.")


def _statement_start(exc: UnexpectedToken) -> Token | None:
    """The word just read, when it is the whole of what the current statement has read so
    far (what the parser holds before it is a whole statement or a block's `{`)."""
    interactive = getattr(exc, "interactive_parser", None)
    stack = interactive.parser_state.value_stack if interactive is not None else []
    if len(stack) < 2:
        return None
    word, before = _lone_word(stack[-1]), stack[-2]
    if word is None or not (isinstance(before, Tree) or (isinstance(before, Token) and before.type == "LBRACE")):
        return None
    return word


def _lone_word(item: Any) -> Token | None:
    """A NAME token, alone or already reduced to `refs` -> `ref` -> NAME."""
    while isinstance(item, Tree) and item.data in ("refs", "ref") and len(item.children) == 1:
        item = item.children[0]
    return item if isinstance(item, Token) and item.type == "NAME" else None


def _unclosed_brace(text: str) -> int | None:
    """The offset of the innermost `{` that is still open at the end of `text`."""
    stack: list[int] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        code = line.split("#", 1)[0]
        for i, char in enumerate(code):
            if char == "{":
                stack.append(offset + i)
            elif char == "}" and stack:
                stack.pop()
        offset += len(line)
    return stack[-1] if stack else None


def _previous_word(text: str, offset: int) -> tuple[int, int] | None:
    """The (start, end) offsets of the word just before `offset`, skipping blanks and
    comments; None if the previous token is not a word."""
    lines = text[:offset].split("\n")
    while lines:
        code = lines[-1].split("#", 1)[0].rstrip()
        if code:
            match = re.search(r"[A-Za-z_][A-Za-z0-9_]*\Z", code)
            if match is None:
                return None
            start = len("\n".join(lines[:-1])) + (1 if len(lines) > 1 else 0) + match.start()
            return start, start + len(match.group())
        lines.pop()
    return None


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


def _range(text: str, start: int, end: int) -> Span:
    """The span of text[start:end], on one line."""
    point = _point(text, start)
    return point.model_copy(update={"end_column": point.column + end - start, "end": end})


def _point(text: str, offset: int) -> Span:
    """A one-character span at `offset` (clamped to the text)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(line=line, column=column, end_line=line, end_column=column + 1, start=offset, end=offset + 1)
