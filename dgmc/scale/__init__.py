"""Scale-out: the grid's jobs in worker processes (`jobs`), and training and distillation
on several processes or GPUs with torch.distributed (`ddp`). What is here reads only the
environment torchrun sets, so the command line can ask without importing torch."""

import os


def launched() -> bool:
    """Started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_label() -> str:
    """`rank R: ` in a process torchrun started (for messages), else nothing."""
    return f"rank {os.environ.get('RANK', '?')}: " if launched() else ""
