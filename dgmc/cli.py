"""The `dgmc` command line. A user mistake prints a located error and exits 1; it never
shows a Python traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .api import check_text
from .errors import DgmError, render


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except DgmError as error:
        print(error.render(), file=sys.stderr)
        return 1
    except OSError as error:
        print(f"dgmc: error: {error.strerror or error}: '{error.filename}'", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgmc", description="A compiler for deep directed graphical models.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    check = command("check", _check, "Parse and check specs; print every error and warning.")
    check.add_argument("specs", nargs="+", type=Path, metavar="SPEC")

    fmt = command("fmt", _fmt, "Rewrite specs in canonical form (comments kept).")
    fmt.add_argument("specs", nargs="+", type=Path, metavar="SPEC")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not formatted")

    render_cmd = command("render", _render, "Draw the graph with graphviz (.svg, .png, .pdf or .dot source).")
    render_cmd.add_argument("spec", type=Path, metavar="SPEC")
    render_cmd.add_argument("-o", "--out", type=Path, required=True, metavar="OUT")
    render_cmd.add_argument("--student", action="store_true",
                            help="draw teacher and student side by side (student at the spec's first width)")

    compile_cmd = command("compile", _compile, "Show what the compiler makes of a spec.")
    compile_cmd.add_argument("spec", type=Path, metavar="SPEC")
    compile_cmd.add_argument("--emit", choices=["ir", "order"], default="ir")
    return parser


def _load(path: Path):
    """The checked model of a file, its warnings printed to stderr."""
    text = path.read_text()
    model, warnings = check_text(text, str(path))
    for warning in warnings:
        print(render(warning, text, str(path)) + "\n", file=sys.stderr)
    return model


def _check(args: argparse.Namespace) -> int:
    status = 0
    for path in args.specs:
        try:
            model = _load(path)
        except (DgmError, OSError) as error:
            print(error.render() if isinstance(error, DgmError) else f"dgmc: error: cannot read '{path}'",
                  file=sys.stderr)
            status = 1
            continue
        print(f"{path}: ok ({len(model.nodes)} nodes)")
    return status


def _fmt(args: argparse.Namespace) -> int:
    from .fmt import format_text

    status = 0
    for path in args.specs:
        text = path.read_text()
        formatted = format_text(text, str(path))
        if formatted == text:
            continue
        if args.check:
            print(f"{path}: not formatted (run `dgmc fmt {path}`)")
            status = 1
        else:
            path.write_text(formatted)
            print(f"{path}: formatted")
    return status


def _render(args: argparse.Namespace) -> int:
    from .render import RenderError, render_file

    model = _load(args.spec)
    try:
        written = render_file(model, args.out, student=args.student)
    except RenderError as error:
        print(f"dgmc: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


def _compile(args: argparse.Namespace) -> int:
    model = _load(args.spec)
    if args.emit == "ir":
        print(model.model_dump_json(indent=2))
    else:
        for position, name in enumerate(model.order, start=1):
            node = model.node(name)
            parents = ", ".join(p.name + ("[t-1]" if p.lag else "") for p in node.parents) or "-"
            print(f"{position:>3}. {name:<12} {node.kind:<13} {node.type}[{node.size}]  <- {parents}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
