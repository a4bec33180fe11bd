"""Continual learning with a conditional VAE (`dgmc continual SPEC`): the model learns the
spec's `classes`, then the remaining classes of the dataset arrive and the old classes'
data are gone. How well is the old knowledge kept while the new is learnt?

Every method starts from the old model's weights and gets the same steps, batch,
learning rate and seeds (the spec's `distill` recipe):
- finetune: the ELBO on the new classes' data only (forgetting is expected);
- replay: generative replay, the ELBO on batches mixing new data with samples of the old
  model (its classes drawn uniformly), by the new classes' share of all classes;
- ours: the ELBO on the new data plus the unified distillation loss from the frozen old
  model (data-free: the old classes enter only as input labels), mixed by the same
  share, as the authors' continual VAE does (METHOD.md); the loss includes the guide's
  terms (`distillation.guide_distillation_loss`), so the old classes keep their ELBO,
  not only their samples;
- joint: the ELBO on all classes' data: an upper reference that breaks the rule (the
  old data are not supposed to be there), not a competitor.
The methods are the registry `CONTINUAL_METHODS` (not `losses.METHODS`, the distillation
methods): each entry says what `learn` does with it and how the report treats it, so a
plugin adds a method by registering a `ContinualMethod`.
Metrics (`dgmc.evaluation`) are measured separately on the old and the new classes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import ir
from ..core.errors import UserError, did_you_mean
from ..core.files import write_text
from ..core.registry import Registry
from ..datasets import Split, load_split
from ..evaluation.evaluate import measure, setting
from ..losses import generate
from ..lower import CompiledModel, compile_model
from ..report.document import write_reports
from ..report.report import continual_report
from ..training import checkpoint
from ..training.loop import batches, device_of, fit, optimise, quick_steps
from ..training.objectives import Batch, elbo, evaluate
from .distill import DISTILLER, GUIDE_STREAM, distillation_loss

Loss = tuple[Tensor, dict[str, Tensor]]


@dataclass(frozen=True)
class Mixing:
    """What a step that mixes the old model in needs, made once per learner."""

    learner: CompiledModel
    old_model: CompiledModel
    terms: tuple
    """The distillation terms of method `ours` (`losses.generate`)."""
    share: float
    """The new classes' share of all classes: their rows' share of each batch."""
    old_count: int
    """How many of each batch's rows stand for the old classes."""
    generator: torch.Generator
    guide: torch.Generator | None


@dataclass(frozen=True)
class ContinualMethod:
    """A way to learn the new classes from the old model: exactly one of `fits` (a plain
    ELBO fit) and `step` (a loss per step that mixes the old model in), and how the
    checkpoints and the report treat it."""

    doc: str
    fits: Callable[[Split, Batch], Batch] | None = None
    """(the common split, the new classes' training rows) -> the rows a plain ELBO fit learns."""
    step: Callable[[Mixing, Batch, Batch], Loss] | None = None
    """(mixing, fresh new-class rows, label inputs of the old classes' draws) -> the
    step's loss and its logged terms."""
    distilled: bool = False
    """Learns through the distillation loss: its checkpoints carry `DISTILLER`, so a
    change of that loss retrains them rather than reusing them."""
    contender: bool = False
    """The report asks whether it beats each rival."""
    reference: bool = False
    """Breaks the rule (keeps the old data): a reference for the report, never a rival."""

    def __post_init__(self) -> None:
        if (self.fits is None) == (self.step is None):
            raise ValueError("a continual method gives exactly one of `fits` and `step`")


def _new_rows(split: Split, new_data: Batch) -> Batch:
    return new_data


def _every_row(split: Split, new_data: Batch) -> Batch:
    return split.train


def _replay_step(mixing: Mixing, fresh: Batch, inputs: Batch) -> Loss:
    """The ELBO on the new rows and as many dreams of the old model as stand for the old classes."""
    with torch.no_grad():
        dream = mixing.old_model.sample(mixing.old_count, inputs, mixing.generator).values
    return elbo(mixing.learner, {k: torch.cat([v, dream[k]]) for k, v in fresh.items()}, mixing.generator)


def _distilled_step(mixing: Mixing, fresh: Batch, inputs: Batch) -> Loss:
    """The ELBO on the new rows mixed, by the new classes' share, with the distillation
    loss from the frozen old model on its label inputs."""
    loss, logged = elbo(mixing.learner, fresh, mixing.generator)
    kept, kept_terms = distillation_loss(mixing.old_model, mixing.learner, mixing.terms, "ours", mixing.old_count,
                                         inputs, mixing.generator, guide=mixing.guide)
    return mixing.share * loss + (1 - mixing.share) * kept, {**logged, **kept_terms}


CONTINUAL_METHODS: Registry[ContinualMethod] = Registry("continual method")
for _name, _method in (
    ("finetune", ContinualMethod("the ELBO on the new classes' data only", fits=_new_rows)),
    ("replay", ContinualMethod("generative replay: new data mixed with the old model's samples", step=_replay_step)),
    ("ours", ContinualMethod("the ELBO on the new data plus the distillation loss from the old model",
                             step=_distilled_step, distilled=True, contender=True)),
    ("joint", ContinualMethod("the ELBO on every class's data (keeps the old data: a reference)", fits=_every_row,
                              reference=True)),
):
    CONTINUAL_METHODS.register(_name, _method, origin="dgmc")


def classes_of(model: ir.Model, new: tuple[int, ...] | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(old, new) classes: the spec's, and `new` or else every other class of the data."""
    if model.data is None or model.data.classes is None or not model.of_kind("input"):
        raise UserError(f"'{model.name}' is not a class-conditional model with `classes = [...]` in its data "
                        "statement: continual learning needs the classes it learns first.")
    old = tuple(model.data.classes)
    labels = load_split(_with_classes(model, None)).train_labels
    known = sorted(set(labels.tolist())) if labels is not None else []
    new = tuple(new) if new else tuple(c for c in known if c not in old)
    if not new or set(new) & set(old) or not set(new) <= set(known):
        raise UserError(f"The new classes {list(new)} must be classes of the data ({known}) that '{model.name}' "
                        f"has not learnt ({list(old)}).")
    return old, new


def check_inputs(model: ir.Model, new: tuple[int, ...] | None, device: str = "cpu") -> None:
    """What `continual` reads, checked before its directory is touched, so that a refused
    command creates nothing: the device, the classes, every value of the data."""
    device_of(device)
    old, new = classes_of(model, new)
    load_split(_with_classes(model, tuple(sorted(old + new))))


def _with_classes(model: ir.Model, classes: tuple[int, ...] | None) -> ir.Model:
    return model.model_copy(update={"data": model.data.model_copy(update={"classes": classes})})


def _rows(part: Batch, labels: Tensor, classes: tuple[int, ...]) -> Batch:
    keep = torch.from_numpy(np.isin(labels.numpy(), classes))
    return {k: v[keep] for k, v in part.items()}


def _label_inputs(model: ir.Model, classes: tuple[int, ...], count: int, generator: torch.Generator) -> Batch:
    """Inputs for `count` draws of the old model: the label input one-hot, classes uniform."""
    (node,) = model.of_kind("input")
    where = generator.device
    picks = torch.tensor(classes, device=where)[torch.randint(len(classes), (count,), generator=generator,
                                                              device=where)]
    return {node.name: torch.nn.functional.one_hot(picks, node.size).float()}


def learn(model: ir.Model, old_model: CompiledModel, split: Split, old: tuple[int, ...], new: tuple[int, ...],
          method: str, seed: int, steps: int, progress: bool = True) -> CompiledModel:
    """The model after learning the `new` classes by `method`, from the old model."""
    torch.manual_seed(seed)
    recipe = model.distill
    device = old_model._anchor.device
    learner = compile_model(model).to(device)
    learner.load_state_dict(old_model.state_dict())
    new_data = {k: v.to(device) for k, v in _rows(split.train, split.train_labels, new).items()}
    train = model.train.model_copy(update={"steps": steps, "batch": recipe.batch, "lr": recipe.lr, "warmup": 0})
    how = CONTINUAL_METHODS[method]
    if how.fits is not None:
        fit(learner, train, how.fits(split, new_data), steps, seed, progress, label=f"{method} s{seed}")
        return learner
    share = len(new) / (len(old) + len(new))
    generator = torch.Generator(device).manual_seed(seed)
    draws = batches(new_data, max(1, round(recipe.batch * share)), steps, generator)
    old_count = recipe.batch - max(1, round(recipe.batch * share))
    guide = torch.Generator(device).manual_seed(seed + GUIDE_STREAM) if model.fully_guided() else None
    mixing = Mixing(learner, old_model, generate(model, "ours"), share, old_count, generator, guide)

    def step_fn() -> Loss:
        inputs = _label_inputs(model, old, old_count, generator)
        return how.step(mixing, next(draws), inputs)

    optimise(learner, list(learner.parameters()), recipe.lr, recipe.weight_decay, steps, step_fn,
             f"{method} s{seed}", progress)
    return learner


def continual(model: ir.Model, out: Path, new: tuple[int, ...] | None = None, seeds: tuple[int, ...] | None = None,
              methods: tuple[str, ...] | None = None, quick: bool = False, progress: bool = True, log=print,
              device: str = "cpu") -> dict:
    """The whole experiment: the old model, each method x seed (default: every registered
    method), the metrics on old and new classes; writes checkpoints, continual.json and
    report.md under `out`."""
    methods = _known(methods)
    old, new = classes_of(model, new)
    everything = _with_classes(model, tuple(sorted(old + new)))
    split = load_split(everything)
    seeds = tuple(seeds if seeds is not None else model.distill.seeds)
    steps = quick_steps(model.distill.steps, quick)
    device_ = device_of(device)
    old_model = _trained(model, out / "old.pt", device_, log, lambda: _old(model, split, old, quick, progress, device_))
    learners = {}
    for method in methods:
        for seed in seeds:
            name = f"{method}_s{seed}"
            learners[name] = _trained(model, out / f"{name}.pt", device_, log,
                                      lambda m=method, s=seed: learn(model, old_model, split, old, new, m, s, steps,
                                                                     progress),
                                      DISTILLER if CONTINUAL_METHODS[method].distilled else None)
    results = {"old classes": list(old), "new classes": list(new), "steps": steps, "seeds": list(seeds),
               "methods": list(methods), "models": {}}
    for group, classes in (("old", old), ("new", new)):
        where = setting(everything, split, classes)
        results["features"] = where.featurizer.description if where.featurizer else None
        measured = measure(where, old_model, learners)
        test = {k: v.to(device_) for k, v in _rows(split.test, split.test_labels, classes).items()}
        for name, compiled in {"old model": old_model, **learners}.items():
            row = measured["teacher" if name == "old model" else name]
            row["-ELBO"] = evaluate(compiled, test, torch.Generator().manual_seed(0))
            results["models"].setdefault(name, {})[group] = row
    write_text(out / "continual.json", json.dumps(results, indent=2) + "\n")
    for path in write_reports(continual_report(model, results, quick, roles(results["methods"])), out):
        log(f"wrote {path}")
    return results


def roles(methods: list[str]) -> tuple[list[str], list[str], str]:
    """The run's contenders and rivals, and the note on the references (every registered
    one, named whether or not the run has it), from the entries of `CONTINUAL_METHODS`;
    a method no longer registered is a rival."""
    def role(method: str, which: str) -> bool:
        entry = CONTINUAL_METHODS.get(method)
        return entry is not None and getattr(entry, which)

    contenders = [m for m in methods if role(m, "contender")]
    rivals = [m for m in methods if not role(m, "contender") and not role(m, "reference")]
    named = [m for m in CONTINUAL_METHODS if role(m, "reference")]
    note = (f"; {' and '.join(named)}, which {'keeps' if len(named) == 1 else 'keep'} the old data, "
            f"{'is a reference, not a rival' if len(named) == 1 else 'are references, not rivals'}" if named else "")
    return contenders, rivals, note


def _known(methods: tuple[str, ...] | None) -> tuple[str, ...]:
    """The methods to run, each a registered one (none given: every one)."""
    if methods is None:
        return tuple(CONTINUAL_METHODS)
    for method in methods:
        if method not in CONTINUAL_METHODS:
            raise UserError(f"Unknown continual method '{method}' (known: {', '.join(CONTINUAL_METHODS)})."
                            f"{did_you_mean(method, CONTINUAL_METHODS)}")
    return tuple(methods)


def _old(model: ir.Model, split: Split, old: tuple[int, ...], quick: bool, progress: bool,
         device: torch.device) -> CompiledModel:
    """The model of the old classes, trained by the spec's recipe on their rows of the
    common split (so that no test row of any class was ever trained on)."""
    torch.manual_seed(0)
    compiled = compile_model(model).to(device)
    steps = quick_steps(model.train.steps, quick)
    fit(compiled, model.train, _rows(split.train, split.train_labels, old), steps, 0, progress, label="old classes")
    return compiled


def _trained(model: ir.Model, path: Path, device: torch.device, log, train, distiller: int | None = None
             ) -> CompiledModel:
    """The checkpoint at `path` when a finished one is there (for a distilled learner, one
    made by this `distillation.DISTILLER`), else `train()` saved there."""
    if checkpoint.matches(path, model):
        compiled = compile_model(model).to(device)
        if checkpoint.load(path, compiled, map_location=device).get("distiller") == distiller:
            log(f"{path.stem}: reusing {path}")
            return compiled.eval()
    started = time.perf_counter()
    compiled = train()
    made = {"seconds": round(time.perf_counter() - started, 2), **({"distiller": distiller} if distiller else {})}
    checkpoint.save(path, compiled, made)
    log(f"{path.stem}: trained in {time.perf_counter() - started:.1f} s")
    return compiled.eval()

