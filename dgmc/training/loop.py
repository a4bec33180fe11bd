"""Training a teacher: `dgmc train SPEC --out DIR`.

One loop for every objective: Adam with the spec's learning rate and weight decay,
minibatches drawn without replacement by a seeded generator (the whole train split when
the batch is at least that large), KL warm-up for `elbo`, a progress bar with the running
loss, every logged term kept for loss curves, then the final train and test objective,
an atomic checkpoint, metrics JSON and pictures.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from .. import ir
from ..core.errors import UserError, words
from ..core.files import write_text
from ..datasets import Split, load_split
from ..evaluation.likelihood import exact_metrics
from ..lower import CompiledModel, compile_model
from ..scale import ddp
from . import checkpoint
from .iwae import iwae_metrics
from .objectives import OBJECTIVES, Batch, evaluate

QUICK_STEPS = 100


def quick_steps(steps: int, quick: bool) -> int:
    """The steps a recipe of `steps` runs: with `--quick` (a smoke run) at most
    `QUICK_STEPS`, never more than the recipe's own, for teachers and students alike."""
    return min(steps, QUICK_STEPS) if quick else steps
"""Steps of a `--quick` smoke run."""
EVAL_SEED = 1234
"""The fixed noise seed of every reported objective, so numbers are comparable."""
NOISE_STRIDE = 1_000_003
"""Rank r of a distributed teacher draws its objective's noise from seed + r * this."""


@dataclass
class Trained:
    """A trained model (a teacher, or a distilled student), its metrics, every logged
    term per step, and the files written for it."""

    model: CompiledModel
    metrics: dict[str, float]
    history: dict[str, list[float]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def device_of(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:1`...; a clear error where the device does not exist."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"Unknown device '{name}': use cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"Device '{name}' was asked for, but this machine has no CUDA GPU: {words('device', 'cpu')}.")
    return device


def batches(split_part: Batch, batch: int, steps: int, generator: torch.Generator, shard: bool = True):
    """`steps` minibatches of `batch` rows, each drawn without replacement (on the
    generator's device). Under torch.distributed every rank draws the same global batch
    and, with `shard`, keeps its own share of its rows (`ddp.rows`)."""
    rows = next(iter(split_part.values())).shape[0]
    where = ddp.world() if shard else ddp.World()
    for _ in range(steps):
        if batch >= rows:
            chosen = split_part
        else:
            index = torch.randperm(rows, generator=generator, device=generator.device)[:batch]
            chosen = {k: v[index] for k, v in split_part.items()}
        if where.size > 1:
            share = ddp.rows(min(batch, rows), where)
            chosen = {k: v[share] for k, v in chosen.items()}
        yield chosen


_progress: Callable[[str, int, int], None] | None = None
_scalars: Path | None = None


def scalars_to(directory: Path | None) -> None:
    """Write every logged term of every step as TensorBoard scalars under `directory`,
    one run per training loop (named by its label); None: none written."""
    global _scalars
    _scalars = directory


def progress_to(sink: Callable[[str, int, int], None] | None) -> None:
    """Send every loop's progress to `sink(label, steps done, steps)` rather than drawing
    a bar (a worker of `dgmc run --jobs` reports to the parent's one display)."""
    global _progress
    _progress = sink


def report_to(scalars: Path | None, progress: Callable[[str, int, int], None]) -> None:
    """A worker's loops (`distillation.jobs.Workers.report`): progress to `progress`, the
    TensorBoard scalars under `scalars`."""
    progress_to(progress)
    scalars_to(scalars)


class TrainingError(UserError):
    """Training produced a non-finite loss or gradient. Names the term (and node) where
    it first appeared; `module` holds the weights of the last check before the bad step
    (`good_step` steps applied)."""

    def __init__(self, message: str, step: int, module: CompiledModel | None = None, good_step: int = 0) -> None:
        super().__init__(message)
        self.step = step
        self.module = module
        self.good_step = good_step
        """The steps applied to the module's weights: those of the last check before `step`."""


StepFn = Callable[[], tuple[Tensor, dict[str, Tensor]]]
"""One step's loss and its named terms, all on the device (detached terms, not floats:
reading a value from the device waits for it)."""

Logged = tuple[tuple[str, ...], tuple[str, ...], Tensor]
"""One step as the guard and the log read it: the names of the loss and terms, the
parameters that have gradients, and one vector on the device (the loss, the terms, one
sum per gradient)."""

CHECK_EVERY = 25
"""Steps between reads from the device: the logged terms and the finiteness guard are
read once per this many steps, so the hot path does no host sync in between."""


def optimise(module: CompiledModel, parameters: list[nn.Parameter], lr: float, weight_decay: float,
             steps: int, step_fn: StepFn, label: str, progress: bool = True) -> dict[str, list[float]]:
    """The one optimisation loop (teachers, students, every method): Adam on
    `parameters`, `step_fn()` giving the loss and its named terms. Every `CHECK_EVERY`
    steps the loss, terms and gradient sums of the steps since are read at once; at the
    first non-finite one a `TrainingError` names the step and the term (or the node whose
    gradient), and the module is put back to its weights at the last check, all of
    whose steps were finite."""
    optimiser = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if ddp.world().size > 1:  # the gradients averaged over the ranks
        step_fn = ddp.synchronised(parameters, step_fn)
    history: dict[str, list[float]] = {}
    good, good_step = _weights(module), 0
    pending: list[Logged] = []
    bar = tqdm(total=steps, desc=label, disable=not progress or _progress is not None or not ddp.world().main,
               leave=False, dynamic_ncols=True)
    scalars = _writer(label)
    with _flushed_denormals(), bar, scalars or contextlib.nullcontext():
        for step in range(steps):
            pending.append(_step(module, optimiser, step_fn))
            if (step + 1) % CHECK_EVERY and step + 1 < steps:
                continue
            first = step + 1 - len(pending)
            for offset, (terms, grads) in enumerate(_read(pending)):
                if not all(map(math.isfinite, (*terms.values(), *grads.values()))):
                    module.load_state_dict(good)
                    raise _diagnosis(first + offset, terms, grads, module, good_step)
                for key, value in terms.items():
                    history.setdefault(key, []).append(value)
                    if scalars is not None:
                        scalars.add_scalar(key, value, first + offset + 1)
            bar.set_postfix(loss=f"{statistics.fmean(history['loss'][-len(pending):]):.4g}", refresh=False)
            bar.update(len(pending))
            if _progress is not None:
                _progress(label, step + 1, steps)
            pending.clear()
            if step + 1 < steps:  # a later check may need to come back here
                good, good_step = _weights(module), step + 1
    return history


def _writer(label: str):
    """The TensorBoard writer of one loop (`scalars_to`), or None."""
    if _scalars is None or not ddp.world().main:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package: pip install 'dgmc[tensorboard]'.") from None
    return SummaryWriter(str(_scalars / label.replace(" ", "_")))


def _read(pending: list[Logged]) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Per step since the last check, its loss and terms and its gradient sums by
    parameter, as floats: one read from the device for them all."""
    values = ddp.averaged(torch.cat([v for *_, v in pending])).tolist()
    rows, at = [], 0
    for terms, grads, vector in pending:
        row = values[at: at + len(vector)]
        rows.append((dict(zip(terms, row, strict=False)), dict(zip(grads, row[len(terms):], strict=True))))
        at += len(vector)
    return rows


def _weights(module: CompiledModel) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@contextmanager
def _flushed_denormals() -> Iterator[None]:
    """Denormal floats (dead units' Adam state) slowed CPU training ~3x. Flushing them is
    process-wide processor state, so it is switched back off (the default) afterwards."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _step(module: CompiledModel, optimiser: torch.optim.Optimizer, step_fn: StepFn) -> Logged:
    """One update; what the guard and the log read of it stays on the device."""
    loss, terms = step_fn()
    optimiser.zero_grad(set_to_none=True)
    if loss.requires_grad:
        loss.backward()
    grads = [(name, p.grad) for name, p in module.named_parameters() if p.grad is not None]
    values = torch.stack([loss.detach(), *(t.detach() for t in terms.values()), *(g.sum() for _, g in grads)])
    optimiser.step()
    return ("loss", *terms), tuple(name for name, _ in grads), values


def _diagnosis(step: int, terms: dict[str, float], grads: dict[str, float], module: CompiledModel,
               good_step: int) -> TrainingError:
    """The error for a non-finite loss (naming the first non-finite term) or gradient
    (naming the first parameter, hence node, whose gradient is not finite)."""
    if not math.isfinite(terms["loss"]):
        bad = next((k for k, v in terms.items() if k != "loss" and not math.isfinite(v)), "the total")
        message = f"step {step + 1}: the loss became {terms['loss']}; first in term {bad}."
    else:
        name = next(k for k, v in grads.items() if not math.isfinite(v))
        node, role = module.owners[name]
        message = (f"step {step + 1}: a gradient became non-finite, first in the {role} of node '{node}' ({name}); "
                   "the loss terms were " + ", ".join(f"{k} = {v:.4g}" for k, v in terms.items() if k != "loss")
                   + ".")
    return TrainingError(message, step, module, good_step)


def stopped(error: TrainingError, module: CompiledModel, path: Path, meta: dict) -> TrainingError:
    """Save the last good weights (the module's: those of the last check before the bad
    step) next to the checkpoint, which stays untouched; the error to raise says where
    they are."""
    checkpoint.save(path, module, {**meta, "failed_at_step": error.step + 1, "weights_after_step": error.good_step})
    return TrainingError(f"{error} Training stopped; the last good weights (after step {error.good_step}) are in "
                         f"'{path}' (an earlier checkpoint, if any, is untouched).", error.step, module,
                         error.good_step)


def fit(compiled: CompiledModel, recipe: ir.Train, data: Batch, steps: int, seed: int,
        progress: bool = True, label: str = "teacher") -> dict[str, list[float]]:
    """Minimise the recipe's objective; return every logged term per step."""
    device = compiled._anchor.device
    generator = torch.Generator(device).manual_seed(seed)
    objective = OBJECTIVES[recipe.objective].run
    if recipe.free_bits:
        objective = partial(objective, free_bits=recipe.free_bits)
    draws = enumerate(batches({k: v.to(device) for k, v in data.items()}, recipe.batch, steps, generator))
    noise = generator
    if ddp.world().size > 1:  # the same rows drawn everywhere, each rank's own noise for its share
        noise = torch.Generator(device).manual_seed(seed + NOISE_STRIDE * ddp.world().rank)

    def step_fn() -> tuple[Tensor, dict[str, Tensor]]:
        step, batch = next(draws)
        beta = recipe.beta * (min(1.0, (step + 1) / recipe.warmup) if recipe.warmup else 1.0)
        return objective(compiled, batch, noise, beta)

    return optimise(compiled, list(compiled.parameters()), recipe.lr, recipe.weight_decay, steps, step_fn,
                    label, progress)


def report(compiled: CompiledModel, split: Split, quick: bool = False) -> dict[str, float]:
    """The reported objective on the train and test splits, and the test IWAE estimate
    where the model has one (`iwae.iwae_metrics`), on fixed noise."""
    device = compiled._anchor.device
    metrics = {}
    for part in ("train", "test"):
        data = {k: v.to(device) for k, v in getattr(split, part).items()}
        metrics[f"{part}_objective"] = evaluate(compiled, data, torch.Generator().manual_seed(EVAL_SEED))
    return {**metrics, **iwae_metrics(compiled, data, EVAL_SEED, quick=quick)}


def check_trainable(model: ir.Model) -> None:
    """Refuse a model without a recipe and data to train a teacher by (`train_teacher`
    would), before anything is written."""
    if model.train is None or model.data is None:
        raise UserError(f"'{model.name}' has no `train` and `data` statements: nothing to train on.")


def train_teacher(model: ir.Model, out: Path, seed: int = 0, device: str = "cpu", quick: bool = False,
                  progress: bool = True) -> Trained:
    check_trainable(model)
    torch.manual_seed(seed)
    split = load_split(model)
    compiled = compile_model(model).to(device_of(device))
    steps = quick_steps(model.train.steps, quick)
    started = time.perf_counter()
    try:
        history = fit(compiled, model.train, split.train, steps, seed, progress)
    except TrainingError as error:
        raise stopped(error, compiled, out / "teacher.last_good.pt", {"seed": seed}) from None
    if not ddp.world().main:  # rank 0 reports and writes
        return Trained(compiled, {}, history, [])
    metrics = {"steps": steps, "seconds": round(time.perf_counter() - started, 2), **report(compiled, split, quick)}
    metrics.update(exact_metrics(compiled, split.test))
    metrics.update((f"train_missing[{name}]", round(float(torch.isnan(values).flatten(1).any(1).float().mean()), 4))
                   for name, values in split.train.items() if torch.isnan(values).any())  # the rows that lack it
    metrics["parameters"] = sum(p.numel() for p in compiled.generative_parameters())
    metrics["guide_parameters"] = sum(p.numel() for p in compiled.guide_parameters())
    out.mkdir(parents=True, exist_ok=True)
    meta = {"seed": seed, "steps": steps, "quick": quick, "metrics": metrics}
    files = [checkpoint.save(out / "teacher.pt", compiled, meta),
             write_text(out / "teacher.json", json.dumps(meta, indent=2) + "\n")]
    files += _pictures(compiled, split, out, history, seed)
    return Trained(compiled, metrics, history, files)


def _pictures(compiled: CompiledModel, split: Split, out: Path, history: dict[str, list[float]],
              seed: int) -> list[Path]:
    from ..evaluation.pictures import write_pictures  # matplotlib, loaded only when a teacher is written

    return write_pictures(compiled, split, out, "teacher", torch.Generator().manual_seed(seed), history=history)

