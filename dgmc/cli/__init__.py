"""The `dgmc` command line: `parser` reads the arguments, `commands` maps them to one
call of the API (`dgmc.api`, `dgmc.run`) and prints. A user mistake prints a located
error and exits 1; it never shows a Python traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..core.errors import DgmError, UserError, command_line
from ..plugins import load_entry_points, load_module
from ..scale import launched, rank_label
from .commands import message
from .parser import parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv
    if getattr(args, "threads", None):
        import torch  # here, not above: `dgmc check` and `dgmc --help` never import torch

        torch.set_num_threads(args.threads)
    try:
        with command_line():
            load_entry_points()
            for module in args.plugin:
                load_module(module)
            return args.run(args)
    except (DgmError, UserError, OSError) as error:
        print(message(error), file=sys.stderr)
        return 1
    except Exception:
        if launched():  # torchrun stops the other ranks; say which one failed
            print(f"dgmc: {rank_label()}failed:", file=sys.stderr)
        raise
    finally:
        if launched():
            from ..scale import ddp

            ddp.stop()


__all__ = ["main", "message"]
