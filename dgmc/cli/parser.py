"""The `dgmc` command line's arguments: one subcommand each, with its options."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

from ..losses.methods import METHODS
from . import commands


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgmc", description="A compiler for deep directed graphical models.")
    subcommands = parser.add_subparsers(required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE (a dotted module name, or a Python file's path) first, which registers "
                             "families, networks or datasets (repeatable)")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(name, help=help, description=help, parents=[common])
        sub.set_defaults(run=run)
        return sub

    _front_end_commands(command)
    _model_commands(command)
    _finished_commands(command)
    command("plugins", commands.plugins, "List what is registered (families, networks, datasets, ...) and where from.")
    command("datasets", commands.datasets, "List the registered datasets and their columns.")
    return parser


Command = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


_SPEC_HELP = "a .dgm file (UTF-8), or - for standard input"


def _front_end_commands(command: Command) -> None:
    """Commands on the spec alone: check, fmt, render, compile."""
    check = command("check", commands.check, "Parse and check specs; print every error and warning.")
    check.add_argument("specs", nargs="+", type=Path, metavar="SPEC", help=_SPEC_HELP)
    check.add_argument("--pedantic", action="store_true", help="also warn about a distillation that is valid but "
                       "likely not meant: a student as large as its teacher, unused lambdas, a divergence that "
                       "passes no gradient, discrete latents under ours with lambda 0")
    _data_option(check, "also check every binding of a `data file` spec against this file, training nothing "
                 "(its columns, widths and every value against its node): ")

    fmt = command("fmt", commands.fmt, "Rewrite specs in canonical form (comments kept).")
    fmt.add_argument("specs", nargs="+", type=Path, metavar="SPEC",
                     help="spec files to rewrite in place; - formats standard input to standard output")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not formatted")

    render_cmd = command("render", commands.render, "Draw the graph with graphviz (.svg, .png, .pdf or .dot source).")
    render_cmd.add_argument("spec", type=Path, metavar="SPEC", help=_SPEC_HELP)
    render_cmd.add_argument("-o", "--out", type=Path, required=True, metavar="OUT")
    render_cmd.add_argument("--student", action="store_true",
                            help="draw teacher and student side by side (student at the spec's first width)")
    render_cmd.add_argument("--guide", action="store_true",
                            help="draw the guide too: its edges dotted, and the states only it computes")
    render_cmd.add_argument("--run", type=Path, metavar="DIR", dest="run_dir",  # `run` is the command's function
                            help="colour each node by its final distillation term in this `dgmc run` directory")
    render_cmd.add_argument("--method", help="with --run: the students' method (default ours)")
    render_cmd.add_argument("--width", type=float, metavar="W",
                            help="with --run: the students' width (default the smallest, the hardest student)")

    compile_cmd = command("compile", commands.compile, "Show what the compiler makes of a spec.")
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
    train = command("train", commands.train, "Train the teacher on the spec's data; write checkpoint, metrics, "
                    "pictures.")
    train.add_argument("spec", type=Path, metavar="SPEC")
    train.add_argument("--out", type=Path, required=True, metavar="DIR")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    _training_options(train, processes=True)

    distill = command("distill", commands.distill, "Distill one student from a trained teacher checkpoint.")
    distill.add_argument("spec", type=Path, metavar="SPEC")
    distill.add_argument("--teacher", type=Path, required=True, metavar="CKPT")
    distill.add_argument("--width", type=float, help="student width (default: the spec's first)")
    distill.add_argument("--method", choices=list(METHODS), default="ours")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--lambda", dest="lam", type=float, help="the weight of ours' latent terms "
                         "(default: the spec's first)")
    _recipe_options(distill, DISTILL_OVERRIDES)
    distill.add_argument("--out", type=Path, help="output directory (default: the teacher's)")
    distill.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    _training_options(distill, processes=True)

    run = command("run", commands.run, "Train the teacher, distill every method x width x seed, evaluate, report.")
    run.add_argument("spec", type=Path, metavar="SPEC")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<spec name>, runs/<spec name>-quick "
                     "with --quick)")
    run.add_argument("--widths", type=float, nargs="+", help="default: the spec's")
    run.add_argument("--methods", choices=list(METHODS), nargs="+", help="default: the spec's")
    run.add_argument("--seeds", type=int, nargs="+", help="default: the spec's")
    run.add_argument("--lambdas", type=float, nargs="+", help="ours' lambdas (default: the spec's)")
    _recipe_options(run, RUN_OVERRIDES)
    run.add_argument("--quick", action="store_true", help="a smoke run: few steps everywhere")
    run.add_argument("--force", action="store_true", help="replace a run directory made from another spec")
    run.add_argument("--teacher", type=Path, metavar="CKPT", help="distill this trained teacher instead of "
                     "training one; with no --data, a `data file` spec then runs data-free (ours, local)")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="distill the students in N worker processes (default 1; each with --threads threads)")
    _training_options(run)

    later = command("continual", commands.continual, "Continual learning: learn the remaining classes without the old "
                    "data; compare ours with fine-tuning and generative replay.")
    later.add_argument("spec", type=Path, metavar="SPEC")
    later.add_argument("--out", type=Path, help="output directory (default: runs/<spec name>_continual)")
    later.add_argument("--new", type=int, nargs="+", metavar="CLASS", help="the new classes (default: the rest)")
    later.add_argument("--seeds", type=int, nargs="+", help="default: the spec's distill seeds")
    later.add_argument("--quick", action="store_true", help="a smoke run: few steps everywhere")
    _training_options(later)



def _finished_commands(command: Command) -> None:
    """Commands on what training made: eval (a run directory), export (a checkpoint)."""
    exporter = command("export", commands.export, "Export a trained sampler (or its guide) as ONNX or TorchScript: "
                       "noise and inputs in, node values out.")
    exporter.add_argument("path", type=Path, metavar="CKPT_OR_RUN_DIR")
    exporter.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    exporter.add_argument("--out", type=Path, metavar="FILE", help="default: beside the checkpoint")
    exporter.add_argument("--guide", action="store_true", help="export the guide (data and noise in, latents out)")
    exporter.add_argument("--student", metavar="NAME", help="in a run directory: this student (a file stem under "
                          "students/, such as student_ours_w0.25_s0) rather than the teacher")
    exporter.add_argument("--spec", type=Path, metavar="SPEC", help="the spec of a checkpoint outside its run "
                          "directory")

    evaluate = command("eval", commands.eval, "Measure every model of a finished run on samples; rewrite its report.")
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    _data_option(evaluate)
    _device_option(evaluate)


def _training_options(command: argparse.ArgumentParser, processes: bool = False) -> None:
    """What every command that trains takes: the data file, the device, TensorBoard, and
    (`processes`) torchrun's process count."""
    _data_option(command)
    _device_option(command)
    _tensorboard_option(command)
    if processes:
        _nproc_option(command)


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


def _nproc_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--nproc", type=int, default=1, metavar="K",
                         help="train on K processes with torch.distributed (DDP, gloo on CPU, nccl on CUDA), started "
                              "by torchrun; the same as `torchrun --nproc_per_node K -m dgmc ...`")


def _recipe_options(command: argparse.ArgumentParser, options: Mapping[str, str]) -> None:
    """The distillation settings a command may give in place of the spec's: `options`,
    each named with its key in a spec, for `commands` to locate on the command line."""
    command.set_defaults(overrides=options)
    command.add_argument("--stage", type=float, metavar="F", help="with method staged: the share of the steps spent "
                        "on local before ours (default: the spec's `stage`, else 0.5)")
    command.add_argument("--revive", type=int, metavar="N", help="revive a student's dead ReLU units every N steps of "
                        "distillation, 0 never (default: the spec's `revive`)")


RUN_OVERRIDES = {"--widths": "width", "--lambdas": "lambda", "--methods": "method", "--seeds": "seed",
                 "--stage": "stage", "--revive": "revive"}
DISTILL_OVERRIDES = {"--width": "width", "--lambda": "lambda", "--seed": "seed", "--stage": "stage",
                     "--revive": "revive"}
"""The options that give a distillation setting in place of the spec's, and its key in a
spec: each is checked by the spec's own rule and located on the command line."""

