"""The Python API: a spec (path or text) -> checked graph IR and its views, and the
whole path from it to a trained, distilled, sampled or exported model (docs/API.md).

    >>> import dgmc
    >>> model = dgmc.load("specs/hm.dgm")
    >>> teacher = dgmc.train(model, steps=300)                  # a torch.nn.Module
    >>> student = dgmc.distill(model, teacher, width=0.25)      # data-free, the unified loss
    >>> values = dgmc.sample(student, 16, seed=0)               # node -> tensor
    >>> dgmc.distributions(student, values)["y1"]               # torch.distributions, given the parents

Every function takes a checked model or a spec's path; torch is imported on first use.
Wherever a function takes `data`, it is a file's path (str or Path: the file of a
`data file` spec, what `--data` takes) or a mapping node -> tensor (the rows themselves).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .check.load import load
from .check.overrides import Overrides, apply
from .core.errors import UserError
from .ir import Model, order

if TYPE_CHECKING:
    import graphviz
    import torch

    from .core.registry import Registry
    from .datasets import Split
    from .lower import CompiledModel

    Data = str | Path | Mapping[str, torch.Tensor]


def topological_order(model: Model) -> tuple[str, ...]:
    return model.order


to_networkx = order.to_networkx


def to_digraph(model: Model, student: bool = False, guide: bool = False) -> graphviz.Digraph:
    """The model as a `graphviz.Digraph` (see `dgmc.report.render`); imported on use, so loading
    a spec never needs graphviz."""
    from .report.render import to_digraph

    return to_digraph(model, student, guide)


# -- from a spec to trained models ------------------------------------------------------

def _model(model: Model | str | Path) -> Model:
    return model if isinstance(model, Model) else load(model)


def _with_data(model: Model, data: Data | None) -> tuple[Model, Split | None]:
    """`data` as every function here takes it: a path binds the model to that file (as
    `--data` does, so a module made from it knows its data), its split read where
    needed; a mapping node -> tensor is the rows themselves, every part of the split."""
    from .datasets import Split, with_data

    if data is None:
        return model, None
    if isinstance(data, str | Path):
        return with_data(model, data), None
    if not isinstance(data, Mapping):
        raise UserError(f"data is a file's path (str or Path) or a mapping node -> tensor, not {type(data).__name__}.")
    rows = dict(data)
    return model, Split(rows, rows, None, None)


def _rows(model: Model, data: Data | None, part: str) -> dict[str, torch.Tensor]:
    """The rows of `part` ("train" or "test") of `data`: a file's split, or the mapping's
    rows; by default the model's own data's split."""
    from .datasets import load_split

    model, split = _with_data(model, data)
    return getattr(split or load_split(model), part)


def compile(model: Model | str | Path, width: float | None = None) -> CompiledModel:
    """The teacher (`width` None) or the student at `width`, an `nn.Module` with fresh
    weights (the generated code of each call is made on its first use)."""
    from .lower import compile_model

    return compile_model(_model(model), width)


def train(model: Model | str | Path, data: Data | None = None, steps: int | None = None, seed: int = 0,
          device: str = "cpu", progress: bool = False) -> CompiledModel:
    """The teacher trained by the spec's `train` recipe on the train split of its data
    (or of `data`; a mapping: all its rows), `steps` overriding the recipe's; in eval
    mode."""
    import torch

    from .datasets import load_split
    from .training.loop import device_of, fit

    model, split = _with_data(_model(model), data)
    torch.manual_seed(seed)
    teacher = compile(model).to(device_of(device))
    rows = (split or load_split(model)).train
    teacher.check_shapes(rows)
    fit(teacher, model.train, rows, model.train.steps if steps is None else steps, seed, progress)
    return teacher.eval()


def distill(model: Model | str | Path, teacher: CompiledModel | str | Path, width: float | None = None,
            method: str = "ours", seed: int = 0, steps: int | None = None, lam: float | None = None,
            progress: bool = False, data: Data | None = None) -> CompiledModel:
    """A student of `width` (default the spec's first) distilled from `teacher` (a
    module, or a checkpoint or run directory) by `method`; in eval mode. `data` feeds
    the input nodes of a conditional model and `scratch`'s training; a student made
    with a file knows it, so `evaluate(student)` reads its test split."""
    from .distillation.distill import distill as distill_student

    given = {"width": ("width", width), "lam": ("lambda", lam), "seed": ("seed", seed)}
    model = apply(_model(model), Overrides.from_call("dgmc.distill", given))  # refused as the spec's own would be
    model, split = _with_data(model, data)
    if not hasattr(teacher, "sample"):
        teacher = load_checkpoint(teacher)
    width = model.distill.widths[0] if width is None else width
    if split is not None:
        teacher.check_shapes(split.train)
    student, _ = distill_student(model, teacher.eval(), width, method, seed, steps, progress, lam, split)
    return student.eval()


def sample(module: CompiledModel, n: int, inputs: Mapping[str, torch.Tensor] | None = None,
           noise: Mapping[str, torch.Tensor] | None = None, seed: int | None = None) -> dict[str, torch.Tensor]:
    """`n` ancestral draws of every node, as node -> tensor [n, (steps,) size], detached.
    `inputs` for a conditional model; `noise`: the given noise of any random nodes (the
    others drawn fresh, from `seed` when given). Shapes are checked first."""
    import torch

    module.check_shapes({**(inputs or {}), **(noise or {})}, n)
    generator = None if seed is None else torch.Generator(module._anchor.device).manual_seed(seed)
    with torch.no_grad():
        if noise:
            values = module.run(dict(noise), dict(inputs or {}), generator=generator).values
        else:
            values = module.sample(n, dict(inputs or {}), generator).values
    return {node: value.detach() for node, value in values.items()}  # given inputs come back, without their grad


def distributions(module: CompiledModel, values: Mapping[str, torch.Tensor]
                  ) -> dict[str, torch.distributions.Distribution]:
    """Each random node's conditional distribution given its parents' values in
    `values` (a sample, or data holding every node); detached, like every result here
    (a free parameter would otherwise reach the distribution as it is)."""
    import torch

    module.check_shapes(values)
    with torch.no_grad():
        trace = module.run({}, given=dict(values))
    return {node: module.distribution(node, {k: v.detach() for k, v in params.items()})
            for node, params in trace.params.items()}


def evaluate(module: CompiledModel, data: Data | None = None, guide: CompiledModel | None = None,
             seed: int = 1234) -> float:
    """The reported objective per example on the test split of the module's data (or of
    `data`; a mapping: all its rows), on fixed noise: -ELBO with the latents from
    `guide`'s guide (default the model's own), NLL without latents."""
    import torch

    from .training.objectives import evaluate as objective

    rows = _rows(module.ir, data, "test")
    module.check_shapes(rows)
    device = module._anchor.device
    return objective(module, {k: v.to(device) for k, v in rows.items()}, torch.Generator(device).manual_seed(seed),
                     guide=guide)


def log_likelihood(module: CompiledModel, data: Data | None = None) -> torch.Tensor:
    """log p of each row of the test split of the module's data (or of `data`; a
    mapping: all its rows), exactly, for a model whose latents are all discrete with a
    small joint support (`dgmc.evaluation.likelihood`)."""
    from .evaluation.likelihood import exact_log_likelihood

    rows = _rows(module.ir, data, "test")
    module.check_shapes(rows)
    return exact_log_likelihood(module, rows)


def iwae_bound(module: CompiledModel, data: Data | None = None, k: int = 100, seed: int = 0,
               guide: CompiledModel | None = None) -> torch.Tensor:
    """IWAE_k of each row of the test split of the module's data (or of `data`): log of
    the mean of k importance weights p(x, z) / q(z | x), z from the module's guide (or
    `guide`'s), a lower bound on log p that tightens with k (`dgmc.training.iwae`)."""
    import torch

    from .training.iwae import iwae_applies
    from .training.iwae import iwae_bound as bound

    if not iwae_applies(module):
        raise UserError(f"'{module.ir.name}' has no importance-weighted bound: it needs latents, each drawn from a "
                        "guide (none summed out of the model).")
    rows = _rows(module.ir, data, "test")
    module.check_shapes(rows)
    device = module._anchor.device
    hidden = {k_: v.to(device) for k_, v in rows.items() if k_ not in module.ir.bound_latents()}
    with torch.no_grad():
        return bound(module, hidden, k, torch.Generator(device).manual_seed(seed), guide)


def average_effect(module: CompiledModel, treatment: str, outcome: str, data: Data | None = None,
                   seed: int = 0) -> float:
    """E[outcome | do(treatment = 1)] - E[outcome | do(treatment = 0)] on the test split of
    the module's data (or on `data`), the latents inferred by its guide from each row
    (`dgmc.evaluation.effects`: the causal effect VAE's estimate)."""
    from .evaluation.effects import average_effect as effect

    rows = _rows(module.ir, data, "test")
    module.check_shapes(rows)
    device = module._anchor.device
    return effect(module, {k: v.to(device) for k, v in rows.items()}, treatment, outcome, seed)


def load_plugin(name: str | Path) -> None:
    """What `--plugin` does: import the plugin module `name` (a dotted name), or run the
    plugin file at the path `name`, so that specs can name what it registers."""
    from .plugins import load_module

    load_module(name)


def load_checkpoint(path: str | Path, spec: str | Path | None = None, student: str | None = None) -> CompiledModel:
    """A trained model from its checkpoint (its spec found in the run directory above
    it, or given) or a run directory (its teacher, or the student `student`)."""
    from .run import load_trained

    return load_trained(path, spec, student)[0]


def save_checkpoint(module: CompiledModel, path: str | Path, meta: dict | None = None) -> Path:
    """The module's weights with its spec's hash (what `load_checkpoint` checks); beside a
    copy of the spec (or inside a run directory) it loads back by path alone."""
    from .training import checkpoint

    return checkpoint.save(Path(path), module, dict(meta or {}))


def export(module: CompiledModel, path: str | Path, format: str = "onnx", guide: bool = False) -> Path:
    """The sampler (or with `guide`, the guide) as ONNX or TorchScript at `path`."""
    from .exporter import export as export_file

    return export_file(module, format, Path(path), guide)


def registries() -> dict[str, Registry]:
    """Every registry, by concept, in the order `dgmc plugins` lists them. Here, at the top,
    because it names every stage's; `plugins` only loads what adds to them."""
    from .datasets import DATASETS  # every stage's: imported when asked, so `import dgmc` stays light
    from .datasets.readers import READERS
    from .distillation.continual import CONTINUAL_METHODS
    from .evaluation.metrics import METRICS
    from .families import FAMILIES
    from .losses.divergences import DIVERGENCES
    from .losses.methods import METHODS
    from .networks import NETWORKS
    from .training.objectives import OBJECTIVES

    return {"families": FAMILIES, "networks": NETWORKS, "datasets": DATASETS, "divergences": DIVERGENCES,
            "objectives": OBJECTIVES, "methods": METHODS, "metrics": METRICS,
            "readers": READERS, "continual methods": CONTINUAL_METHODS}


def listing() -> str:
    """What is registered and where each entry came from (`dgmc plugins`)."""
    lines = []
    for concept, registry in registries().items():
        lines.append(f"{concept}:")
        width = max(map(len, registry), default=0)
        lines += [f"  {name:<{width}}  {registry.origin_of(name)}" for name in registry]
    return "\n".join(lines) + "\n"
