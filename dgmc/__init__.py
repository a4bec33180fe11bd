"""dgmc: a compiler for deep directed graphical models (DGMs).

Pipeline, one module (or package) per stage: `parse` (text -> syntax IR) -> `check`
(syntax IR -> graph IR, all errors collected) -> `order` (networkx view, topological
order, lint) -> `render` (graph IR -> graph description -> graphviz); `fmt` prints the
syntax IR back canonically.
"""

from .api import check_text, load, loads, to_digraph, to_networkx, topological_order
from .errors import DgmError, Diagnostic
from .ir import Model, Node
from .order import lint

__all__ = [
    "DgmError", "Diagnostic", "Model", "Node", "check_text", "lint", "load", "loads",
    "to_digraph", "to_networkx", "topological_order",
]
