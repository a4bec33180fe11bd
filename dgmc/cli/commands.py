"""What each `dgmc` command prints: its arguments mapped to one call (`dgmc.tasks`,
`dgmc.api`, or the module that owns what it shows), and the result printed.

The modules that train, distill or draw are imported inside the commands that use them:
`dgmc check` and `dgmc --help` never import torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..check.load import check_text
from ..check.overrides import Overrides
from ..core import errors
from ..core.errors import DgmError, UserError
from ..core.files import write_text
from ..frontend.source import STDIN, read_spec
from ..ir import Model
from ..ir.order import table
from ..scale import launched, rank_label, relaunch


def message(error: DgmError | UserError | OSError) -> str:
    """What the command line prints for a user's mistake: a located error as it renders,
    any other in one line naming the process (under torchrun)."""
    if isinstance(error, DgmError):
        return error.render()
    if isinstance(error, UserError):
        return f"dgmc: {rank_label()}error: {error}"
    return f"dgmc: {rank_label()}error: {error.strerror or error}: '{error.filename}'"


def check(args: argparse.Namespace) -> int:
    """Every spec checked (and its data, with --data); each error printed, and the others
    checked still."""
    status = 0
    for path in args.specs:
        try:
            model, text, name = _load(path)
            rows = _rows(_bound(model, args.data)) if args.data is not None else ""
        except (DgmError, UserError) as error:
            print(message(error), file=sys.stderr)
            status = 1
            continue
        print(f"{'<stdin>' if str(path) == STDIN else path}: ok ({len(model.nodes)} nodes{rows})")
        if args.pedantic:
            from ..check.pedantic import pedantic

            _warn(pedantic(model), text, name)
    return status


def fmt(args: argparse.Namespace) -> int:
    """Rewrite each file in place; `-` formats standard input to standard output."""
    from ..frontend.fmt import format_text

    status = 0
    for path in args.specs:
        text, name = read_spec(path)
        formatted = format_text(text, name)
        if name == "<stdin>" and not args.check:
            print(formatted, end="")
        elif formatted == text:
            continue
        elif args.check:
            print(f"{name}: not formatted (run `dgmc fmt {path}`)")
            status = 1
        else:
            write_text(path, formatted)
            print(f"{path}: formatted")
    return status


def render(args: argparse.Namespace) -> int:
    from ..core.errors import RenderError
    from ..report.heat import load_heat
    from ..report.render import render_file

    model = _load(args.spec)[0]
    if args.run_dir is None and (args.method or args.width is not None):
        raise RenderError("--method and --width choose the students of a run: give --run DIR too")
    heat = None if args.run_dir is None else load_heat(args.run_dir, model, args.method or "ours", args.width)
    print(f"wrote {render_file(model, args.out, student=args.student, guide=args.guide, heat=heat)}")
    return 0


def compile(args: argparse.Namespace) -> int:
    model = _load(args.spec)[0]
    if args.emit == "ir":
        print(model.model_dump_json(indent=2))
    elif args.emit == "summary":
        from ..report.describe import summary

        print(summary(model), end="")
    elif args.emit == "losses":
        from ..losses import describe

        print(describe(model, args.method), end="")
    elif args.emit == "code":
        from ..report.describe import code

        print(code(model, args.width), end="")
    else:
        print(table(model), end="")
    return 0


def train(args: argparse.Namespace) -> int:
    from ..tasks import train_spec

    if (status := _torchrun(args)) is not None:
        return status
    model = _load(args.spec)[0]
    result = train_spec(model, args.out, args.data, seed=args.seed, device=args.device, quick=args.quick,
                        progress=not args.no_progress, tensorboard=args.tensorboard)
    if not result.metrics:  # another rank than 0: rank 0 reports
        return 0
    m = result.metrics
    print(f"{model.name}: teacher trained for {m['steps']} steps in {m['seconds']:.1f} s; "
          f"{m['parameters']:,} parameters (+{m['guide_parameters']:,} guide)")
    name = "-ELBO" if model.of_kind("latent") else "NLL"
    print(f"  {name} per example: train {m['train_objective']:.3f}, test {m['test_objective']:.3f}")
    for path in result.files:
        print(f"  wrote {path}")
    return 0


def distill(args: argparse.Namespace) -> int:
    from ..tasks import distill_spec

    if (status := _torchrun(args)) is not None:
        return status
    model, job, result = distill_spec(_load(args.spec)[0], args.teacher, args.out, args.data, method=args.method,
                                      overrides=_overrides(args), quick=args.quick, device=args.device,
                                      progress=not args.no_progress, tensorboard=args.tensorboard)
    if not result.metrics:  # another rank than 0: rank 0 reports
        return 0
    m = result.metrics
    tested = f"test objective {m['test_objective']:.3f}" if m["test_objective"] is not None else "no test data"
    print(f"{model.name}: {job.method} student of width {job.width:g} ({m['parameters']:,} parameters), "
          f"{m['steps']} steps; {tested}; fidelity L {m['fidelity']:.4f}")
    for path in result.files:
        print(f"  wrote {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    """The whole job; `run` checks what it reads before it locks and writes the run directory."""
    from ..tasks import run_spec

    model, text, name = _load(args.spec)
    run_spec(model, text, name, args.out, args.data, _overrides(args), quick=args.quick, device=args.device,
             progress=not args.no_progress, force=args.force, teacher=args.teacher, jobs=args.jobs,
             threads=args.threads, plugins=tuple(args.plugin), tensorboard=args.tensorboard)
    return 0


def continual(args: argparse.Namespace) -> int:
    from ..tasks import continual_spec

    continual_spec(_load(args.spec)[0], args.out, args.data, args.new, args.seeds, quick=args.quick,
                   device=args.device, progress=not args.no_progress, tensorboard=args.tensorboard)
    return 0


def eval(args: argparse.Namespace) -> int:
    from ..tasks import eval_run

    eval_run(args.run_dir, args.data, args.device)
    return 0


def export(args: argparse.Namespace) -> int:
    from ..exporter import default_out, export, interface
    from ..run import load_trained

    compiled, ckpt = load_trained(args.path, args.spec, args.student)
    out = export(compiled, args.format, args.out or default_out(ckpt, args.format, args.guide), args.guide)
    io = interface(compiled, args.guide)
    print(f"wrote {out}: inputs {', '.join(io.input_names)}; outputs {', '.join(io.outputs)}")
    return 0


def plugins(args: argparse.Namespace) -> int:
    from ..api import listing

    print(listing(), end="")
    return 0


def datasets(args: argparse.Namespace) -> int:
    from ..datasets import listing

    print(listing(), end="")
    return 0


def _load(path: Path) -> tuple[Model, str, str]:
    """The checked model of a spec file (`-`: standard input), its text and name; its
    warnings printed to stderr."""
    text, name = read_spec(path)
    model, warnings = check_text(text, name)
    _warn(warnings, text, name)
    return model, text, name


def _warn(warnings, text: str, name: str) -> None:
    for warning in warnings:
        print(errors.render(warning, text, name) + "\n", file=sys.stderr)


def _bound(model: Model, data: Path) -> Model:
    from ..datasets import with_data

    return with_data(model, data)


def _rows(model: Model) -> str:
    """`; 'data.csv': 218 train and 54 test rows`, once every binding has read its
    columns from the model's data file, as training would (`load_split`)."""
    from ..datasets import load_split

    split = load_split(model)
    return f"; '{model.data.source}': {split.rows('train')} train and {split.rows('test')} test rows"


def _overrides(args: argparse.Namespace) -> Overrides:
    """The distillation settings given on the command line (`parser._recipe_options`),
    located in it."""
    dest = {"--lambda": "lam"}
    given = {option: (key, getattr(args, dest.get(option, option.removeprefix("--"))))
             for option, key in args.overrides.items()}
    return Overrides.from_argv(args.argv, given)


def _torchrun(args: argparse.Namespace) -> int | None:
    """With --nproc K > 1 outside torchrun: this command again under torchrun on K
    processes (its exit status); else None, and the command runs here, joining the
    process group when torchrun started it."""
    from ..scale import ddp

    if args.nproc > 1 and not launched():
        return relaunch(args.argv, args.nproc)
    args.device = ddp.start(args.device)
    return None
