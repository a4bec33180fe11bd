"""dgmc: a compiler for deep directed graphical models (DGMs).

The folders read as the pipeline, each stage an IR in and an IR out: `frontend` (file ->
text -> syntax IR, and back) -> `check` (syntax IR -> graph IR, all errors collected) ->
`ir` (the graph IR; `ir.order`: topological order, lint) -> `lower` (graph IR ->
generated PyTorch modules) -> `training` (the teacher) -> `distillation` (the students,
with the loss `losses` generates) -> `evaluation` -> `report`. What the language knows
lives in registries, one per concept, which users extend (`register_family`,
`register_network`, `register_dataset`, `register_objective`, or a plugin). The entry points
stand at the top:
`api`, `cli`, `run`, `exporter`, `plugins`. docs/ARCHITECTURE.md has the map.
"""

from .api import (
    average_effect,
    compile,
    distill,
    distributions,
    evaluate,
    export,
    iwae_bound,
    load_checkpoint,
    load_plugin,
    log_likelihood,
    sample,
    save_checkpoint,
    to_digraph,
    to_networkx,
    topological_order,
    train,
)
from .check.load import check_text, load, loads
from .core.errors import DgmError, Diagnostic, UserError
from .datasets import Column, Dataset, register_dataset
from .families import Family, register_family
from .ir import Model, Node
from .ir.order import lint
from .networks import NetworkKind, Option, register_network
from .training.objectives import Objective, register_objective

__all__ = [
    "Column", "Dataset", "DgmError", "Diagnostic", "Family", "Model", "NetworkKind", "Node", "Objective", "Option",
    "UserError",
    "average_effect", "check_text", "compile", "distill", "distributions", "evaluate", "export", "iwae_bound",
    "lint", "load", "load_checkpoint", "load_plugin", "loads", "log_likelihood", "register_dataset",
    "register_family", "register_network", "register_objective", "sample",
    "save_checkpoint", "to_digraph", "to_networkx", "topological_order", "train",
]
