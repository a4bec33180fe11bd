"""Distilling a student from a teacher: `dgmc distill SPEC --teacher CKPT`.

For `ours` and `local` the student sees no data but the inputs: each step draws the
teacher's noise eps (and inputs x from the training split, for conditional models), runs
the teacher without gradient, runs the student on the same eps (`ours`: observed nodes
with children teacher-forced; `local`: every random node's value taken from the teacher,
so each conditional is fed the teacher's parents), and minimises the generated terms
(`dgmc.losses`) over the student's generative networks. `scratch` trains the student on
the data with the teacher's objective instead. Every method gets the same steps, batch,
learning rate and seeds (the spec's `distill`).

A model with a guide has its student's guide distilled in the same steps
(`guide_distillation_loss`): on the teacher's sampled observed values, the teacher's guide
and the student's run on shared guide noise, with the same per-node terms on the
inference graph, so that every distilled student is a complete model with its own ELBO.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from .. import ir
from ..core.errors import words
from ..core.files import student_name, write_text
from ..datasets import DataError, Split, has_data, load_split
from ..evaluation.likelihood import exact_metrics
from ..losses import DIVERGENCES, Term, divergence, generate, reduce
from ..losses.methods import METHODS, needs_data
from ..lower import CompiledModel, Trace, compile_model
from ..scale import ddp
from ..training import checkpoint
from ..training.iwae import iwae_metrics
from ..training.loop import EVAL_SEED, Trained, TrainingError, batches, device_of, fit, optimise, stopped
from ..training.objectives import evaluate, inputs_of
from .revive import Dead, dead_units, revive

EVAL_SAMPLES = 1024
DISTILLER = 2
"""How students are made, recorded with each: a run reuses only students of this one (2:
the guide distilled too, the ELBO's discrete KL in the family's closed form)."""
PROBE_ROWS = 1024
PROBE_STREAM = 2 << 32
"""The probe batch of `Revival` has a stream of its own, as the guide's noise has."""
GUIDE_STREAM = 1 << 32
"""Added to the seed for the generator of the guide's noise: a stream of its own, so that
distilling the guide leaves the generative student's draws, and weights, as they were."""


def term_values(student: CompiledModel, teacher_trace: Trace, student_trace: Trace,
                terms: tuple[Term, ...]) -> dict[str, Tensor]:
    """Each term's value (unweighted, reduced), keyed by node: closed forms on the two
    traces' parameters, estimates on the teacher's noise."""
    values = {}
    for term in terms:
        t = {k: v.detach() for k, v in teacher_trace.params[term.node].items()}
        s = student_trace.params[term.node]
        family = student.families[term.node]
        per = divergence(family, term.divergence, t, s, teacher_trace.noise.get(term.node))
        event = per.shape != next(iter(s.values())).shape
        values[term.node] = reduce(per, term.reduction, event)
    return values


def distillation_loss(teacher: CompiledModel, student: CompiledModel, terms: tuple[Term, ...], method: str,
                      batch: int, inputs: dict[str, Tensor], generator: torch.Generator | None,
                      rows: slice | None = None, guide: torch.Generator | None = None
                      ) -> tuple[Tensor, dict[str, Tensor]]:
    """One Monte Carlo estimate of the method's loss and its terms (left on the device):
    the teacher's sample (of the values the student is fed), then the student's generated
    `distill_loss`, or the reference `term_values` when it interprets. With `rows`, the
    loss of those rows of the global batch: the noise is drawn for all `batch` rows (the
    stream `sample` draws) and the teacher run on their share (one rank of several).
    With `guide` (a generator), the guide's terms are added (`guide_distillation_loss`)."""
    fed = teacher.fed(method)
    # what the guides read of the teacher's sample: the observed nodes, and the latents summed out of the
    # model, which no guide infers (inference takes them as given; the checker lets no guide read them)
    observed = (*(n.name for n in teacher.ir.of_kind("observed")), *teacher.ir.summed_out()) if guide else ()
    read = None if student.interpret else (*fed, *observed)
    with torch.no_grad():
        if rows is None:
            t = teacher.sample(batch, inputs, generator, read=read)
        else:
            inputs = {k: v[rows] for k, v in inputs.items()}
            t = teacher.run({k: v[rows] for k, v in teacher.draw(batch, generator).items()}, inputs, read=read)
    if not student.interpret:
        loss, logged = student.distill_loss(t, inputs, terms, fed)
    else:
        loss, logged = _reference(student, t, student.run(t.noise, inputs, {name: t.values[name] for name in fed}),
                                  terms)
    if guide is None:
        return loss, logged
    data = {**inputs, **{name: t.values[name] for name in observed}}
    guide_loss, guide_logged = guide_distillation_loss(teacher, student, method, data, batch, guide, rows)
    return loss + guide_loss, {**logged, **guide_logged}


def guide_distillation_loss(teacher: CompiledModel, student: CompiledModel, method: str, data: dict[str, Tensor],
                            batch: int, generator: torch.Generator, rows: slice | None = None
                            ) -> tuple[Tensor, dict[str, Tensor]]:
    """The guide's terms (`losses.guide_terms`) on the teacher's sampled `data`: the
    teacher's guide on noise drawn for the whole global batch (its `rows` kept), the
    student's guide on the same noise, fed what `method` feeds (`losses.guide_fed`).
    The student's generative parameters are held fixed here: networks both passes share
    (a deterministic state) learn from the generative terms alone."""
    terms, fed = student.guide_terms(method)
    with torch.no_grad():
        noise = teacher.draw(batch, generator, guide=True)
        tq = teacher.infer(data, {k: v[rows] for k, v in noise.items()} if rows is not None else noise)
    with _held(student.generative_parameters()):
        if not student.interpret:
            loss, logged = student.guide_distill_loss(tq, data, terms, fed)
        else:
            sq = student.infer({**data, **{name: tq.values[name] for name in fed}}, tq.noise)
            loss, logged = _reference(student, tq, sq, terms)
    return loss, {f"guide[{key.split('[', 1)[1]}": value for key, value in logged.items()}


def _reference(student: CompiledModel, t: Trace, s: Trace, terms: tuple[Term, ...]
               ) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss and its logged terms by the reference `term_values` (the interpreter's)."""
    values = term_values(student, t, s, terms)
    loss = sum((term.weight * values[term.node] for term in terms), student._anchor.new_zeros(()))
    return loss, {f"{term.kind}[{term.node}]": values[term.node].detach() for term in terms}


@contextlib.contextmanager
def _held(parameters: list[torch.nn.Parameter]) -> Iterator[None]:
    """No gradient reaches `parameters` from what is computed inside."""
    was = [p.requires_grad for p in parameters]
    for p in parameters:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(parameters, was, strict=True):
            p.requires_grad_(flag)


def distill(model: ir.Model, teacher: CompiledModel, width: float, method: str, seed: int,
            steps: int | None = None, progress: bool = True, lam: float | None = None, split: Split | None = None
            ) -> tuple[CompiledModel, dict[str, list[float]]]:
    """Train a student of `width` by `method` (`ours` weighing its latent terms by `lam`,
    default the spec's first lambda) on `split` (rows given to the API; default the
    model's own data, where the method needs any); return it and every logged term per
    step."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    how = METHODS[method]
    torch.manual_seed(seed)
    recipe = model.distill
    steps = recipe.steps if steps is None else steps
    split = split_for(model, method) if split is None else split
    student = compile_model(model, width).to(teacher._anchor.device)
    if not how.distills:
        train = model.train.model_copy(update={k: getattr(recipe, k) for k in ("steps", "batch", "lr", "weight_decay")})
        return student, fit(student, train, split.train, steps, seed, progress,
                            label=progress_label(method, width, lam, seed))
    phases = how.phases or (method,)
    terms = {phase: generate(model, phase, lam) for phase in phases}
    switch = round(recipe.stage * steps) if how.phases else steps  # the step the second phase starts at
    device = student._anchor.device
    generator = torch.Generator(device).manual_seed(seed)
    guide = torch.Generator(device).manual_seed(seed + GUIDE_STREAM) if model.fully_guided() else None
    train_inputs = {k: v.to(device) for k, v in inputs_of(model, split.train).items()} if split is not None else {}
    where = ddp.world()
    # every rank draws the whole global batch (its inputs' rows, its noise) and keeps its share
    draws = batches(train_inputs, recipe.batch, steps, generator, shard=False) if train_inputs \
        else itertools.repeat({}, steps)

    done = itertools.count()
    revival = Revival(teacher, student, train_inputs, seed) if recipe.revive else None
    none_revived = student._anchor.new_zeros(())  # logged on the steps without a revival, made once

    def step_fn() -> tuple[Tensor, dict[str, Tensor]]:
        inputs = next(draws)
        size = next(iter(inputs.values())).shape[0] if inputs else recipe.batch
        rows = ddp.rows(size, where) if where.size > 1 else None
        step = next(done)
        phase = phases[0] if step < switch else phases[-1]
        revived = revival(phase) if revival is not None and step and not step % recipe.revive else 0
        loss, logged = distillation_loss(teacher, student, terms[phase], phase, size, inputs, generator, rows, guide)
        count = student._anchor.new_tensor(revived) if revived else none_revived
        return loss, logged if revival is None else {**logged, "revived": count}

    trained = student.generative_parameters() + (student.guide_parameters() if guide is not None else [])
    history = optimise(student, trained, recipe.lr, recipe.weight_decay, steps, step_fn,
                       progress_label(method, width, lam, seed), progress)
    return student, history


class Revival:
    """Finds a student's dead units on a probe batch and revives them (`dgmc.distillation.revive`).
    The probe is the teacher's sample of `PROBE_ROWS` rows, drawn once from a stream of
    its own (the seed plus `PROBE_STREAM`, the same on every rank), inputs drawn from
    the training split's; the student runs on it as the method feeds it, and its guide
    on the sample's observed values."""

    def __init__(self, teacher: CompiledModel, student: CompiledModel, inputs: dict[str, Tensor], seed: int) -> None:
        self.teacher, self.student = teacher, student
        self.generator = torch.Generator(student._anchor.device).manual_seed(seed + PROBE_STREAM)
        if inputs:
            rows = torch.randint(next(iter(inputs.values())).shape[0], (PROBE_ROWS,), generator=self.generator,
                                 device=student._anchor.device)
            inputs = {k: v[rows] for k, v in inputs.items()}
        self.inputs = inputs
        with torch.no_grad():
            self.probe = teacher.sample(PROBE_ROWS, inputs, self.generator)

    def __call__(self, method: str) -> float:
        """Revive the units dead on the probe under `method`'s feeding; how many."""
        return float(revive(self.dead(method), self.generator))

    def dead(self, method: str) -> list[Dead]:
        """The units dead on the probe, the student fed as `method` feeds it."""
        t, student = self.probe, self.student

        def run() -> None:
            student.run(t.noise, self.inputs, {name: t.values[name] for name in self.teacher.fed(method)})
            if student.ir.fully_guided():
                student.infer({**self.inputs, **{n.name: t.values[n.name] for n in student.ir.of_kind("observed")}})

        return dead_units(student.nets, run)


def progress_label(method: str, width: float, lam: float | None, seed: int) -> str:
    """How a student's training is labelled while it runs: method, width, lambda (in an
    ablation) and seed."""
    return f"{method} x{width:g}" + ("" if lam is None else f" lambda {lam:g}") + f" seed {seed}"


def split_for(model: ir.Model, method: str) -> Split | None:
    """The data, where the method needs any (`methods.needs_data`); `ours` and `local` on
    a model without inputs are data-free: the teacher's checkpoint is all they need."""
    why = needs_data(method, model)
    if why and not has_data(model):
        raise DataError(f"{method} on '{model.name}' {why}: {words('data')}.")
    return load_split(model) if why or has_data(model) else None


def fidelity(model: ir.Model, teacher: CompiledModel, student: CompiledModel, split: Split | None
             ) -> dict[str, float]:
    """How closely the student imitates the teacher, on fresh noise with a fixed seed:
    each generated term (method ours) and their unweighted sum L, the same measure
    whatever lambda the student was trained with. A term whose divergence is measured as
    another (`DivergenceKind.measured_as`: bce as KL, bce minus the teacher's entropy,
    the same minimiser) is measured so, so that 0 means perfect imitation for every node."""
    terms = tuple(_measured(term) for term in generate(model, "ours", 1.0))
    generator = torch.Generator().manual_seed(EVAL_SEED)
    inputs = inputs_of(model, split.test) if split is not None else {}
    batch = EVAL_SAMPLES
    if inputs:
        rows = torch.randint(next(iter(inputs.values())).shape[0], (batch,), generator=generator)
        inputs = {k: v[rows].to(teacher._anchor.device) for k, v in inputs.items()}
    with torch.no_grad():
        loss, values = distillation_loss(teacher, student, terms, "ours", batch, inputs, generator)
    return {**{f"fidelity[{k.split('[', 1)[1][:-1]}]": float(v) for k, v in values.items()}, "fidelity": float(loss)}


def _measured(term: Term) -> Term:
    """`term` with the divergence fidelity measures in its place, where it has one."""
    instead = DIVERGENCES[term.divergence].measured_as
    return replace(term, divergence=instead) if instead else term


def held_out_objectives(teacher: CompiledModel, student: CompiledModel, split: Split, quick: bool = False
                        ) -> dict[str, float]:
    """-ELBO (NLL without latents) of the test split under the student through its own
    guide (`test_objective`; a distilled student's guide is distilled too), and, for a
    model with a guide, through the teacher's (`test_objective_teacher_guide`: still a
    lower bound on the student's log-likelihood, with the teacher's guide as proposal); the
    test IWAE estimate through its own guide (`test_iwae`) where it has one."""
    data = {k: v.to(student._anchor.device) for k, v in split.test.items()}
    own = {"test_objective": evaluate(student, data, torch.Generator().manual_seed(EVAL_SEED)),
           **iwae_metrics(student, data, EVAL_SEED, quick=quick)}
    if not student.ir.fully_guided():
        return own
    return {**own, "test_objective_teacher_guide": evaluate(student, data, torch.Generator().manual_seed(EVAL_SEED),
                                                             guide=teacher)}


def collapse(model: ir.Model, teacher: CompiledModel, student: CompiledModel, split: Split | None
             ) -> dict[str, int]:
    """The student's dead ReLU units on a probe batch of the teacher's samples (run as
    ours runs it), and its dead layers: those whose every unit is dead, which cut a node
    off from its parents (a collapsed student)."""
    dead = Revival(teacher, student, _device_inputs(model, split, teacher), EVAL_SEED).dead("ours")
    return {"dead_units": sum(len(d.units) for d in dead),
            "dead_layers": sum(d.whole for d in dead)}


def _device_inputs(model: ir.Model, split: Split | None, teacher: CompiledModel) -> dict[str, Tensor]:
    """The test split's input nodes on the teacher's device (none without data)."""
    inputs = inputs_of(model, split.test) if split is not None else {}
    return {k: v.to(teacher._anchor.device) for k, v in inputs.items()}


def _exact(student: CompiledModel, split: Split | None) -> dict[str, float | str]:
    """`test_exact_nll`, where the test split is known and the model's latents can be
    summed out exactly (`dgmc.evaluation.likelihood`): a measure no guide blurs."""
    return exact_metrics(student, split.test) if split is not None else {}


def lambdas_of(model: ir.Model, method: str) -> tuple[float | None, ...]:
    """The lambdas a method is run with: each of the spec's for `ours` when it lists
    several (an ablation), else one run at the default (None)."""
    return model.distill.lambdas if METHODS[method].weighs_latents and len(model.distill.lambdas) > 1 else (None,)


@dataclass(frozen=True)
class StudentJob:
    """One student to distill: its method, width and seed, `ours`' lambda (None: the
    spec's first), the steps (None: the spec's), the device, and whether a progress bar
    shows."""

    method: str
    width: float
    seed: int
    lam: float | None = None
    steps: int | None = None
    device: str = "cpu"
    progress: bool = True
    quick: bool = False
    """A smoke run: its estimates cheap (`training.iwae.QUICK`)."""

    @property
    def name(self) -> str:
        """The stem of its files (`student_name`)."""
        return student_name(self.method, self.width, self.seed, self.lam)

    @property
    def label(self) -> str:
        """Its training's label (`progress_label`)."""
        return progress_label(self.method, self.width, self.lam, self.seed)


def run_distill(model: ir.Model, teacher_path: Path, out: Path, job: StudentJob) -> Trained:
    """Load the teacher, distill the student of `job`, evaluate it, and write its
    checkpoint, metrics and pictures under `out`."""
    from ..evaluation.pictures import write_pictures  # matplotlib, loaded only when a student is written

    model = checkpoint.with_recorded_data(teacher_path, model)
    teacher = compile_model(model).to(device_of(job.device))
    checkpoint.load(teacher_path, teacher, map_location=teacher._anchor.device)
    teacher.eval()
    name, method, width, seed, lam = job.name, job.method, job.width, job.seed, job.lam
    try:
        student, history = distill(model, teacher, width=width, method=method, seed=seed, steps=job.steps,
                                   progress=job.progress, lam=lam)
    except TrainingError as error:
        raise stopped(error, error.module, out / f"{name}.last_good.pt", {"seed": seed}) from None
    if not ddp.world().main:  # rank 0 evaluates and writes
        return Trained(student, {}, history, [])
    split = load_split(model) if has_data(model) else None  # data-free: no held-out objective
    used = (model.distill.lambdas[0] if lam is None else lam) if METHODS[method].weighs_latents else None
    metrics = {"method": method, "width": width, "seed": seed, "lambda": used, "steps": len(history.get("loss", [])),
               "parameters": sum(p.numel() for p in student.generative_parameters()),
               **(held_out_objectives(teacher, student, split, job.quick) if split else {"test_objective": None}),
               **_exact(student, split),
               **collapse(model, teacher, student, split),
               **({"revived": int(sum(history["revived"]))} if "revived" in history else {}),
               **fidelity(model, teacher, student, split)}
    meta = {"metrics": metrics, "seed": seed, "distiller": DISTILLER}
    files = [checkpoint.save(out / f"{name}.pt", student, meta),
             write_text(out / f"{name}.json", json.dumps(meta, indent=2) + "\n")]
    if split is not None:
        files += write_pictures(student, split, out, name, torch.Generator().manual_seed(seed), history=history)
    return Trained(student, metrics, history, files)
