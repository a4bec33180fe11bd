"""Training and distillation on several processes: torch.distributed's DDP, launched by
torchrun (`torchrun --nproc_per_node K -m dgmc train|distill ...`, or `--nproc K`).

Each rank takes an equal, contiguous share of every global batch (`rows`): the teacher's
minibatch rows, and in distillation the rows of the teacher's sample, whose noise every
rank draws for the whole global batch from the same seeded generator (`CompiledModel.
draw`), so a row's noise depends on the seed and its global index only. DDP averages the
gradients, each rank's loss being the mean over its rows: the step is the one-process
step on the same global batch, up to the order of float sums. gloo on CPU, nccl on CUDA
(each rank on the GPU of its local rank). Only rank 0 writes anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch import distributed as dist

from ..core.errors import UserError
from . import launched


@dataclass(frozen=True)
class World:
    """This process's place among the ranks (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes the run directory and prints."""
        return self.rank == 0


def world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def start(device: str) -> str:
    """Join the process group torchrun set up, if it did; the device this rank uses
    (`cuda` becomes the GPU of the local rank)."""
    if not launched() or dist.is_initialized():
        return _ranked(device)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    return _ranked(device)


def _ranked(device: str) -> str:
    return f"cuda:{world().local_rank}" if device == "cuda" and world().size > 1 else device


def stop() -> None:
    """Leave the process group (at the end of a command torchrun started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rows(batch: int, where: World) -> slice:
    """This rank's share of a global batch of `batch` rows."""
    if batch % where.size:
        raise UserError(f"The batch ({batch}) must split evenly over {where.size} processes: choose a batch that "
                        f"is a multiple of {where.size}.")
    share = batch // where.size
    return slice(where.rank * share, (where.rank + 1) * share)


class _Loss(nn.Module):
    """DDP synchronises the gradients of what its module's forward computed: this
    module's forward is one step's loss, its parameters those being trained."""

    def __init__(self, parameters: list[nn.Parameter], loss: Callable[[], tuple[Tensor, dict[str, Tensor]]]) -> None:
        super().__init__()
        self.trained = nn.ParameterList(parameters)
        self.loss = loss

    def forward(self) -> tuple[Tensor, dict[str, Tensor]]:
        return self.loss()


def synchronised(parameters: list[nn.Parameter], step: Callable[[], tuple[Tensor, dict[str, Tensor]]]
                 ) -> Callable[[], tuple[Tensor, dict[str, Tensor]]]:
    """`step` whose backward averages the gradients over the ranks (DDP). A parameter a
    step leaves unused (a node's network the loss does not reach) is allowed."""
    device = parameters[0].device if parameters else None
    wrapped = nn.parallel.DistributedDataParallel(
        _Loss(parameters, step), device_ids=[device] if device is not None and device.type == "cuda" else None,
        find_unused_parameters=True)
    return wrapped


def averaged(values: Tensor) -> Tensor:
    """The mean over the ranks (logged terms, read every few steps)."""
    if world().size == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world().size
