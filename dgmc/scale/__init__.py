"""Scale-out: training and distillation on several processes or GPUs with
torch.distributed (`ddp`; the grid's jobs in worker processes are
`dgmc.distillation.jobs`). What is here reads only the environment torchrun sets, so the
command line can ask without importing torch."""

import os
import subprocess
import sys


def launched() -> bool:
    """Started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_label() -> str:
    """`rank R: ` in a process torchrun started (for messages), else nothing."""
    return f"rank {os.environ.get('RANK', '?')}: " if launched() else ""


def relaunch(argv: list[str], processes: int) -> int:
    """`dgmc ARGV` again under torchrun on `processes` local processes, without its
    `--nproc` option; its exit status."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return subprocess.call([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc_per_node={processes}", "-m", "dgmc", *kept])
