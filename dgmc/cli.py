"""The `dgmc` command line. A user mistake prints a located error and exits 1; it never
shows a Python traceback."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .check.load import check_text
from .core.errors import DgmError, UserError, command_line, render
from .core.files import locked, write_text
from .frontend.source import STDIN, read_spec
from .losses.methods import METHODS
from .plugins import load_entry_points, load_module
from .scale import launched, rank_label, relaunch


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        with command_line():
            load_entry_points()
            for module in args.plugin:
                load_module(module)
            return args.run(args)
    except DgmError as error:
        print(error.render(), file=sys.stderr)
        return 1
    except UserError as error:
        print(f"dgmc: {rank_label()}error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"dgmc: {rank_label()}error: {error.strerror or error}: '{error.filename}'", file=sys.stderr)
        return 1
    except Exception:
        if launched():  # torchrun stops the other ranks; say which one failed
            print(f"dgmc: {rank_label()}failed:", file=sys.stderr)
        raise
    finally:
        if launched():
            from .scale import ddp

            ddp.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgmc", description="A compiler for deep directed graphical models.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE (a dotted module name, or a Python file's path) first, which registers "
                             "families, networks or datasets (repeatable)")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run)
        return sub

    _front_end_commands(command)
    _model_commands(command)
    _finished_commands(command)
    command("plugins", _plugins, "List what is registered (families, networks, datasets, ...) and where from.")
    command("datasets", _datasets, "List the registered datasets and their columns.")
    return parser


Command = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


_SPEC_HELP = "a .dgm file (UTF-8), or - for standard input"


def _front_end_commands(command: Command) -> None:
    """Commands on the spec alone: check, fmt, render, compile."""
    check = command("check", _check, "Parse and check specs; print every error and warning.")
    check.add_argument("specs", nargs="+", type=Path, metavar="SPEC", help=_SPEC_HELP)
    check.add_argument("--pedantic", action="store_true", help="also warn about a distillation that is valid but "
                       "likely not meant: a student as large as its teacher, unused lambdas, a divergence that "
                       "passes no gradient, discrete latents under ours with lambda 0")
    _data_option(check, "also check every binding of a `data file` spec against this file, training nothing "
                 "(its columns, widths and every value against its node): ")

    fmt = command("fmt", _fmt, "Rewrite specs in canonical form (comments kept).")
    fmt.add_argument("specs", nargs="+", type=Path, metavar="SPEC",
                     help="spec files to rewrite in place; - formats standard input to standard output")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not formatted")

    render_cmd = command("render", _render, "Draw the graph with graphviz (.svg, .png, .pdf or .dot source).")
    render_cmd.add_argument("spec", type=Path, metavar="SPEC", help=_SPEC_HELP)
    render_cmd.add_argument("-o", "--out", type=Path, required=True, metavar="OUT")
    render_cmd.add_argument("--student", action="store_true",
                            help="draw teacher and student side by side (student at the spec's first width)")
    render_cmd.add_argument("--run", type=Path, metavar="DIR", dest="run_dir",  # `run` is the command's function
                            help="colour each node by its final distillation term in this `dgmc run` directory")
    render_cmd.add_argument("--method", help="with --run: the students' method (default ours)")
    render_cmd.add_argument("--width", type=float, metavar="W",
                            help="with --run: the students' width (default the smallest, the hardest student)")

    compile_cmd = command("compile", _compile, "Show what the compiler makes of a spec.")
    compile_cmd.add_argument("spec", type=Path, metavar="SPEC", help=_SPEC_HELP)
    compile_cmd.add_argument("--emit", choices=["summary", "code", "losses", "ir", "order"], default="summary",
                             help="summary: nodes with parameter counts of teacher and students; code: the Python "
                                  "source the compiled module runs; losses: the generated distillation loss, term "
                                  "by term; ir: the graph IR as JSON; order: the topological order")
    compile_cmd.add_argument("--method", choices=list(METHODS), default="ours",
                             help="with --emit losses: the method whose loss to show")
    compile_cmd.add_argument("--width", type=float, help="with --emit code: show the student of this width")


def _model_commands(command: Command) -> None:
    """Commands that train and distill: train, distill, run, continual."""
    train = command("train", _train, "Train the teacher on the spec's data; write checkpoint, metrics, pictures.")
    train.add_argument("spec", type=Path, metavar="SPEC")
    train.add_argument("--out", type=Path, required=True, metavar="DIR")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    _data_option(train)
    _device_option(train)
    _tensorboard_option(train)
    _nproc_option(train)

    distill = command("distill", _distill, "Distill one student from a trained teacher checkpoint.")
    distill.add_argument("spec", type=Path, metavar="SPEC")
    distill.add_argument("--teacher", type=Path, required=True, metavar="CKPT")
    distill.add_argument("--width", type=float, help="student width (default: the spec's first)")
    distill.add_argument("--method", choices=list(METHODS), default="ours")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--lambda", dest="lam", type=float, help="the weight of ours' latent terms "
                         "(default: the spec's first)")
    _recipe_options(distill)
    distill.add_argument("--out", type=Path, help="output directory (default: the teacher's)")
    distill.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    _data_option(distill)
    _device_option(distill)
    _tensorboard_option(distill)
    _nproc_option(distill)

    run = command("run", _run, "Train the teacher, distill every method x width x seed, evaluate, report.")
    run.add_argument("spec", type=Path, metavar="SPEC")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<spec name>, runs/<spec name>-quick "
                     "with --quick)")
    run.add_argument("--widths", type=float, nargs="+", help="default: the spec's")
    run.add_argument("--methods", choices=list(METHODS), nargs="+", help="default: the spec's")
    run.add_argument("--seeds", type=int, nargs="+", help="default: the spec's")
    run.add_argument("--lambdas", type=float, nargs="+", help="ours' lambdas (default: the spec's)")
    _recipe_options(run)
    run.add_argument("--quick", action="store_true", help="a smoke run: few steps everywhere")
    run.add_argument("--force", action="store_true", help="replace a run directory made from another spec")
    run.add_argument("--teacher", type=Path, metavar="CKPT", help="distill this trained teacher instead of "
                     "training one; with no --data, a `data file` spec then runs data-free (ours, local)")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="distill the students in N worker processes (default 1; each with --threads threads)")
    _data_option(run)
    _device_option(run)
    _tensorboard_option(run)

    later = command("continual", _continual, "Continual learning: learn the remaining classes without the old "
                    "data; compare ours with fine-tuning and generative replay.")
    later.add_argument("spec", type=Path, metavar="SPEC")
    later.add_argument("--out", type=Path, help="output directory (default: runs/<spec name>_continual)")
    later.add_argument("--new", type=int, nargs="+", metavar="CLASS", help="the new classes (default: the rest)")
    later.add_argument("--seeds", type=int, nargs="+", help="default: the spec's distill seeds")
    later.add_argument("--quick", action="store_true", help="a smoke run: few steps everywhere")
    _data_option(later)
    _device_option(later)
    _tensorboard_option(later)



def _finished_commands(command: Command) -> None:
    """Commands on what training made: eval (a run directory), export (a checkpoint)."""
    exporter = command("export", _export, "Export a trained sampler (or its guide) as ONNX or TorchScript: "
                       "noise and inputs in, node values out.")
    exporter.add_argument("path", type=Path, metavar="CKPT_OR_RUN_DIR")
    exporter.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    exporter.add_argument("--out", type=Path, metavar="FILE", help="default: beside the checkpoint")
    exporter.add_argument("--guide", action="store_true", help="export the guide (data and noise in, latents out)")
    exporter.add_argument("--student", metavar="NAME", help="in a run directory: this student (a file stem under "
                          "students/, such as student_ours_w0.25_s0) rather than the teacher")
    exporter.add_argument("--spec", type=Path, metavar="SPEC", help="the spec of a checkpoint outside its run "
                          "directory")

    evaluate = command("eval", _eval, "Measure every model of a finished run on samples; rewrite its report.")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    _data_option(evaluate)
    _device_option(evaluate)


def _data_option(command: argparse.ArgumentParser, use: str = "the data of a `data file` spec: ") -> None:
    command.add_argument("--data", type=Path, metavar="PATH",
                         help=use + "CSV/TSV with a header, .npy/.npz, or a folder of images with one subfolder "
                              "per class")


def _device_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")
    command.add_argument("--threads", type=int, default=1,
                         help="CPU threads per operation (default 1: the networks of typical specs are small, and a "
                              "second thread slowed training up to 10x on a 2-core machine with other work running)")


def _tensorboard_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--tensorboard", action="store_true",
                         help="also write every logged term of every step as TensorBoard scalars under "
                              "OUT/tensorboard, one run per model (pip install 'dgmc[tensorboard]')")


def _scalars(args: argparse.Namespace, out: Path) -> Path | None:
    """With --tensorboard, where the training loops write their scalars (set for them)."""
    from .training import loop

    directory = out / "tensorboard" if args.tensorboard else None
    loop.scalars_to(directory)
    return directory


def _nproc_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--nproc", type=int, default=1, metavar="K",
                         help="train on K processes with torch.distributed (DDP, gloo on CPU, nccl on CUDA), started "
                              "by torchrun; the same as `torchrun --nproc_per_node K -m dgmc ...`")


def _torchrun(args: argparse.Namespace) -> int | None:
    """With --nproc K > 1 outside torchrun: this command again under torchrun on K
    processes (its exit status); else None, and the command runs here, joining the
    process group when torchrun started it."""
    from .scale import ddp

    if args.nproc > 1 and not launched():
        return relaunch(args.argv, args.nproc)
    args.device = ddp.start(args.device)
    return None


def _load(path: Path, data: Path | None = None):
    """The checked model of a spec file (`-`: standard input), its warnings printed to
    stderr, reading its rows from `data` (`--data`) when given."""
    return _load_with_source(path, data)[0]


def _load_with_source(path: Path, data: Path | None = None):
    text, name = read_spec(path)
    model, warnings = check_text(text, name)
    for warning in warnings:
        print(render(warning, text, name) + "\n", file=sys.stderr)
    if data is not None:
        from .datasets import with_data

        model = with_data(model, data)
    return model, text


def _check(args: argparse.Namespace) -> int:
    status = 0
    for path in args.specs:
        try:
            model = _load(path, args.data)
            rows = _checked_rows(model) if args.data is not None else ""
        except DgmError as error:
            print(error.render(), file=sys.stderr)
            status = 1
            continue
        except UserError as error:
            print(f"dgmc: error: {error}", file=sys.stderr)
            status = 1
            continue
        print(f"{'<stdin>' if str(path) == STDIN else path}: ok ({len(model.nodes)} nodes{rows})")
        if args.pedantic:
            from .check.pedantic import pedantic

            text, name = read_spec(path)
            for warning in pedantic(model):
                print(render(warning, text, name) + "\n", file=sys.stderr)
    return status


def _checked_rows(model) -> str:
    """`; 'data.csv': 218 train and 54 test rows`, once every binding has read its
    columns from the model's data file, as training would (`load_split`)."""
    from .datasets import load_split

    split = load_split(model)
    return f"; '{model.data.source}': {split.rows('train')} train and {split.rows('test')} test rows"


def _fmt(args: argparse.Namespace) -> int:
    """Rewrite each file in place; `-` formats standard input to standard output."""
    from .frontend.fmt import format_text

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


def _render(args: argparse.Namespace) -> int:
    from .core.errors import RenderError
    from .report.heat import load_heat
    from .report.render import render_file

    model = _load(args.spec)
    try:
        if args.run_dir is None and (args.method or args.width is not None):
            raise RenderError("--method and --width choose the students of a run: give --run DIR too")
        heat = None if args.run_dir is None else load_heat(args.run_dir, model, args.method or "ours", args.width)
        written = render_file(model, args.out, student=args.student, heat=heat)
    except RenderError as error:
        print(f"dgmc: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


def _compile(args: argparse.Namespace) -> int:
    model = _load(args.spec)
    if args.emit == "ir":
        print(model.model_dump_json(indent=2))
    elif args.emit == "summary":
        from .lower.describe import summary

        print(summary(model), end="")
    elif args.emit == "losses":
        from .losses import describe

        print(describe(model, args.method), end="")
    elif args.emit == "code":
        from .lower.describe import code

        print(code(model, args.width), end="")
    else:
        for position, name in enumerate(model.order, start=1):
            node = model.node(name)
            parents = ", ".join(p.name + ("[t-1]" if p.lag else "") for p in node.parents) or "-"
            print(f"{position:>3}. {name:<12} {node.kind:<13} {node.type}[{node.size}]  <- {parents}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .run import check_inputs
    from .training.loop import check_trainable, train_teacher

    if (status := _torchrun(args)) is not None:
        return status
    model = _load(args.spec, args.data)
    check_trainable(model)  # a refused command creates nothing
    check_inputs(model, args.device)
    _scalars(args, args.out)
    with _writing(args.out):
        result = train_teacher(model, args.out, seed=args.seed, device=args.device, quick=args.quick,
                               progress=not args.no_progress)
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


def _distill(args: argparse.Namespace) -> int:
    from .distillation.distill import run_distill
    from .run import check_inputs
    from .training.loop import quick_steps

    if (status := _torchrun(args)) is not None:
        return status
    model = _recipe(_load(args.spec, args.data), widths=None if args.width is None else [args.width],
                    seeds=[args.seed], lambdas=None if args.lam is None else [args.lam], stage=args.stage,
                    revive=args.revive)
    width = model.distill.widths[0]
    check_inputs(model, args.device, args.teacher, args.method)  # a refused command creates nothing
    out = args.out or args.teacher.parent
    _scalars(args, out)
    with _writing(out):
        result = run_distill(model, args.teacher, out, width, args.method, args.seed, args.device,
                             quick_steps(model.distill.steps, args.quick), not args.no_progress, args.lam)
    if not result.metrics:  # another rank than 0: rank 0 reports
        return 0
    m = result.metrics
    tested = f"test objective {m['test_objective']:.3f}" if m["test_objective"] is not None else "no test data"
    print(f"{model.name}: {args.method} student of width {width:g} ({m['parameters']:,} parameters), "
          f"{m['steps']} steps; {tested}; fidelity L {m['fidelity']:.4f}")
    for path in result.files:
        print(f"  wrote {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """The whole job; `run` checks what it reads before it locks and writes the run directory."""
    from .run import DATA_RECORD, bind_recorded, run

    model, source = _load_with_source(args.spec, args.data)
    out = args.out or Path("runs") / (model.name + ("-quick" if args.quick else ""))  # smoke tests kept apart
    if args.data is None and (out / DATA_RECORD).is_file():  # resuming: the data file the run recorded
        model = bind_recorded(model, out)
    model = _recipe(model, widths=args.widths, methods=args.methods, seeds=args.seeds, lambdas=args.lambdas,
                    stage=args.stage, revive=args.revive)
    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {args.jobs}.")
    from functools import partial

    from .distillation.jobs import Workers
    from .training.loop import report_to

    workers = Workers(args.jobs, args.threads, tuple(args.plugin), partial(report_to, _scalars(args, out)))
    run(model, source, out, args.quick, args.device, not args.no_progress, force=args.force, teacher=args.teacher,
        workers=workers)
    return 0


def _recipe_options(parser: argparse.ArgumentParser) -> None:
    """The distillation settings a command may override (`_recipe`)."""
    parser.add_argument("--stage", type=float, metavar="F", help="with method staged: the share of the steps spent "
                        "on local before ours (default: the spec's `stage`, else 0.5)")
    parser.add_argument("--revive", type=int, metavar="N", help="revive a student's dead ReLU units every N steps of "
                        "distillation, 0 never (default: the spec's `revive`)")


def _recipe(model, **changes):
    """The model with the distillation settings given on the command line (None: the
    spec's; a list: a tuple), each refused where the spec's own would be, before
    anything is written: a width not above 0, a negative lambda or seed, a stage outside
    (0, 1), a negative revive."""
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items() if v is not None}
    if any(width <= 0 for width in changes.get("widths", ())):
        raise UserError(f"A student's width is a share of the teacher's, so positive, not "
                        f"{min(changes['widths']):g}.")
    if any(lam < 0 for lam in changes.get("lambdas", ())):
        raise UserError(f"lambda weighs the latent terms and must be >= 0, not {min(changes['lambdas']):g}.")
    if any(seed < 0 for seed in changes.get("seeds", ())):
        raise UserError(f"A seed must be an integer >= 0, not {min(changes['seeds'])}.")
    if "stage" in changes and not 0 < changes["stage"] < 1:
        raise UserError(f"--stage is the share of the steps spent on local before ours, between 0 and 1 "
                        f"(exclusive), not {changes['stage']:g}.")
    if changes.get("revive", 0) < 0:
        raise UserError(f"--revive is a number of steps (0: never), not {changes['revive']}.")
    return model.model_copy(update={"distill": model.distill.model_copy(update=changes)}) if changes else model


def _writing(out: Path):
    """The run directory's lock, held by rank 0 alone (the one process that writes)."""
    from .scale import ddp

    return locked(out) if ddp.world().main else contextlib.nullcontext()


def _continual(args: argparse.Namespace) -> int:
    from .distillation.continual import check_inputs, continual

    model = _load(args.spec, args.data)
    out = args.out or Path("runs") / f"{model.name}_continual"
    check_inputs(model, args.new, args.device)  # a refused command creates nothing
    _scalars(args, out)
    with locked(out):
        continual(model, out, args.new, args.seeds, quick=args.quick, progress=not args.no_progress,
                  device=args.device)
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from .run import evaluate_run, load_run_model

    spec, metrics = args.run_dir / "spec.dgm", args.run_dir / "metrics.json"
    if not spec.is_file():
        raise UserError(f"'{args.run_dir}' is not a run directory: it has no spec.dgm "
                        "(make one with `dgmc run SPEC --out DIR`).")
    with locked(args.run_dir):  # before looking for metrics.json: a run still writing them is named as such
        if not metrics.is_file():
            raise UserError(f"'{args.run_dir}' is not a finished run: it has no metrics.json (finish it with "
                            "`dgmc run SPEC --out DIR`).")
        model = load_run_model(args.run_dir, args.data)
        evaluate_run(args.run_dir, model, json.loads(metrics.read_text()), args.device)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .exporter import default_out, export, interface
    from .run import load_trained

    compiled, ckpt = load_trained(args.path, args.spec, args.student)
    out = export(compiled, args.format, args.out or default_out(ckpt, args.format, args.guide), args.guide)
    io = interface(compiled, args.guide)
    print(f"wrote {out}: inputs {', '.join(io.input_names)}; outputs {', '.join(io.outputs)}")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from .plugins import listing

    print(listing(), end="")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from .datasets import DATASETS

    for name, dataset in DATASETS.items():
        print(f"{name}: {dataset.rows:,} rows; {dataset.doc} ({DATASETS.origin_of(name)})")
        options = ", ".join(dataset.flags) or "none"
        print(f"  options: {options}")
        for column_name, column in dataset.columns.items():
            shape = f"{column.size} per sequence" if column.sequence else str(column.size)
            shape = f"[{', '.join(map(str, column.shape))}]" if column.shape else shape
            print(f"  {column_name:<12} {column.domain:<8} {shape:<16} {column.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
