"""Sample-based evaluation of teachers and students (`dgmc eval RUN`, the last part of
`dgmc run`): the paper's metrics (`dgmc.evaluation.metrics`: FD, EMD, MMD, 1NN) between a model's
samples and a reference set, in two spaces:

- `features`: the penultimate layer of a small classifier trained on the same data
  (`dgmc.evaluation.features`), standing in for Inception, which cannot be had offline;
- `raw`: the sampled values themselves, flattened (the only space for unlabelled data
  such as Old Faithful's 2-d points).

Two references: the test split (`FD`, ...) and the teacher's own samples (`FD-T`, ...:
how faithfully a student imitates its teacher). A teacher's "-T" value compares two
independent draws of the teacher: a noisy floor, which a student reaches or passes only
by chance. Every model is sampled with the same seed, never the seed of the teacher's
reference draw, so a student run on the teacher's noise is not paired with it sample by
sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .. import ir
from ..datasets import Split
from ..lower import CompiledModel
from .features import Featurizer, featurizer
from .metrics import METRICS, compare, subsample

SAMPLES = 1024
REFERENCE_SEED, SAMPLE_SEED = 101, 202
"""The teacher's reference draw and every model's evaluated draw use different noise."""
ACTIVE = 0.01
"""A latent dimension is active when Var_x E_q[z | x] exceeds this (Burda et al., 2016)."""


@dataclass(frozen=True)
class Setting:
    """What every model of a run is measured against, built once per run (and per class
    group, for continual learning): the reference sets and their inputs."""

    model: ir.Model
    nodes: tuple[str, ...]
    data: np.ndarray | None
    """None in a data-free run: only the comparisons with the teacher's samples remain."""
    data_inputs: dict[str, Tensor]
    teacher_inputs: dict[str, Tensor]
    featurizer: Featurizer | None

    def spaces(self) -> dict[str, object]:
        raw = {"raw": lambda values: values}
        return raw if self.featurizer is None else {"features": self.featurizer, **raw}


def observed_nodes(model: ir.Model) -> tuple[str, ...]:
    """The observed nodes bound to data: what a model's samples are compared on."""
    columns = model.data.columns if model.data else {}
    return tuple(n.name for n in model.of_kind("observed") if n.name in columns)


def setting(model: ir.Model, split: Split | None, classes: tuple[int, ...] | None = None) -> Setting:
    """The reference sets: up to `SAMPLES` test rows (only `classes`' rows when given), and
    the inputs of the teacher's draws, test rows drawn with replacement. Without data
    (`split` None, a model without inputs) the teacher's samples are the only reference."""
    if split is None:
        return Setting(model=model, nodes=observed_nodes(model), data=None, data_inputs={}, teacher_inputs={},
                       featurizer=None)
    rows = np.arange(split.rows("test"))
    if classes is not None:
        if split.test_labels is None:
            raise ValueError(f"'{model.name}' has no labels to choose classes by")
        rows = rows[np.isin(split.test_labels.numpy(), classes)]
    rows = subsample(rows[:, None], SAMPLES, seed=0)[:, 0]
    nodes = observed_nodes(model)
    inputs = [n.name for n in model.of_kind("input")]
    data = flatten({n: split.test[n][rows] for n in nodes}, nodes)
    picks = torch.from_numpy(np.random.default_rng(1).choice(rows, SAMPLES))
    columns = model.data.columns if model.data else {}
    featured = [n for n in nodes if columns.get(n) != "label"]
    return Setting(
        model=model, nodes=nodes, data=data,
        data_inputs={n: split.test[n][rows] for n in inputs},
        teacher_inputs={n: split.test[n][picks] for n in inputs},
        featurizer=featurizer(model, split, featured[0]) if len(nodes) == 1 and featured else None,
    )


def flatten(values: Mapping[str, Tensor], nodes: tuple[str, ...]) -> np.ndarray:
    """One row per example: each node's values flattened, the nodes side by side."""
    return np.concatenate([values[n].reshape(len(values[n]), -1).double().cpu().numpy() for n in nodes], axis=1)


def draw(compiled: CompiledModel, inputs: dict[str, Tensor], nodes: tuple[str, ...], seed: int,
         count: int = SAMPLES) -> np.ndarray:
    """Ancestral samples of the data nodes (`count` of them, or one per input row)."""
    device = compiled._anchor.device
    batch = len(next(iter(inputs.values()))) if inputs else count
    with torch.no_grad():
        trace = compiled.sample(batch, {k: v.to(device) for k, v in inputs.items()},
                                torch.Generator().manual_seed(seed))
    return flatten(trace.values, nodes)


def measure(setting: Setting, teacher: CompiledModel, models: Mapping[str, CompiledModel]
            ) -> dict[str, dict[str, float]]:
    """Every metric of every model (the teacher under "teacher"), in every space, against
    the data and against the teacher's reference draw: keys `space:metric` and
    `space:metric-T`."""
    reference = draw(teacher, setting.teacher_inputs, setting.nodes, REFERENCE_SEED)
    results = {}
    for name, compiled in {"teacher": teacher, **models}.items():
        if setting.data is not None:
            on_data = draw(compiled, setting.data_inputs, setting.nodes, SAMPLE_SEED, len(setting.data))
        on_teacher = draw(compiled, setting.teacher_inputs, setting.nodes, SAMPLE_SEED)
        row = {}
        for space, transform in setting.spaces().items():
            if setting.data is not None:
                for metric, value in compare(transform(on_data), transform(setting.data)).items():
                    row[f"{space}:{metric}"] = value
            for metric, value in compare(transform(on_teacher), transform(reference)).items():
                row[f"{space}:{metric}-T"] = value
        results[name] = row
    return results


def columns(setting: Setting) -> list[str]:
    """The keys `measure` writes, in table order."""
    return [f"{space}:{metric}{suffix}" for space in setting.spaces() for suffix in ("", "-T") for metric in METRICS]


def active_units(compiled: CompiledModel, split: Split, guide: CompiledModel | None = None
                 ) -> dict[str, tuple[int, int] | None]:
    """Per static latent node with a guide: (active dimensions, dimensions) under
    `guide`'s inference (default the model's own) on the test split. A layer with no
    active unit has collapsed: its posterior ignores the data. None for a node whose
    family has no mean (`Family.mean`): its active units are not defined, and the report
    says so. A latent summed out of the model has no posterior to measure."""
    guide = guide or compiled
    if guide.inference is None:
        return {}
    data = {k: v.to(compiled._anchor.device) for k, v in split.test.items()}
    with torch.no_grad():
        q = guide.infer(data, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    out: dict[str, tuple[int, int] | None] = {}
    for node in compiled.ir.of_kind("latent"):
        if node.timed or node.name in compiled.ir.summed_out():
            continue
        mean = guide.families[node.name].mean(q.params[node.name])
        if mean is None:
            out[node.name] = None
            continue
        variance = mean.reshape(len(mean), -1).double().var(0)
        out[node.name] = (int((variance > ACTIVE).sum()), int(variance.numel()))
    return out
