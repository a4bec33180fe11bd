"""dgmc: a compiler for deep directed graphical models (DGMs).

Pipeline, one module (or package) per stage: `source` (file -> text) -> `parse` (text ->
syntax IR) -> `check` (syntax IR -> graph IR, all errors collected) -> `order`
(networkx view, topological order, lint) -> `lower` (graph IR -> PyTorch modules) ->
`losses` (the generated distillation loss); `render` draws the graph, `fmt` prints the
syntax IR back canonically. What the language knows lives in registries (`registry`),
which users extend: `register_family`, `register_network`, `register_dataset`, or a
plugin (`plugins`).
"""

from .api import (
    compile,
    distill,
    distributions,
    evaluate,
    export,
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
from .datasets import Column, Dataset, register_dataset
from .errors import DgmError, Diagnostic, UserError
from .families import Family, register_family
from .frontend import check_text, load, loads
from .ir import Model, Node
from .networks import NetworkKind, Option, register_network
from .order import lint

__all__ = [
    "Column", "Dataset", "DgmError", "Diagnostic", "Family", "Model", "NetworkKind", "Node", "Option", "UserError",
    "check_text", "compile", "distill", "distributions", "evaluate", "export", "lint", "load", "load_checkpoint",
    "load_plugin", "loads", "log_likelihood", "register_dataset", "register_family", "register_network", "sample",
    "save_checkpoint", "to_digraph", "to_networkx", "topological_order", "train",
]
