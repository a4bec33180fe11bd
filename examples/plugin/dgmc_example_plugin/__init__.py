"""An example dgmc plugin: registers the network kind `resmlp` and the dataset `two_moons`.

    dgmc run moons.dgm --plugin dgmc_example_plugin     # from this folder, not installed
    pip install . && dgmc run moons.dgm                  # installed: found by its entry point
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import dgmc


class ResidualMLP(nn.Module):
    """in -> width, then `blocks` residual blocks x + W act(x), then act -> out."""

    def __init__(self, in_dim: int, width: int, out_dim: int, blocks: int, act: str) -> None:
        super().__init__()
        activation = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[act]
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(nn.Sequential(activation(), nn.Linear(width, width)) for _ in range(blocks))
        self.out = nn.Sequential(activation(), nn.Linear(width, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


def build_resmlp(net: dgmc.ir.Network, in_dim: int, out_dim: int) -> nn.Module:
    (width,) = net.hidden
    return ResidualMLP(in_dim, width, out_dim, int(net.options["blocks"]), str(net.options["act"]))


def two_moons() -> dict[str, np.ndarray]:
    """1,000 points of scikit-learn's two interleaving half circles, fixed seed."""
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=1000, noise=0.1, random_state=0)
    return {"point": points.astype(np.float64), "label": labels.astype(np.int64)}


dgmc.register_network(dgmc.NetworkKind(
    "resmlp", build_resmlp, widths=True, default_widths=(64,),
    options=(dgmc.Option("blocks", "int", 2, minimum=1, doc="residual blocks"),
             dgmc.Option("act", "name", "relu", choices=("relu", "tanh", "gelu"), doc="activation")),
    doc="residual MLP: one hidden width, `blocks` skip-connected layers",
))
dgmc.register_dataset(dgmc.Dataset(
    "two_moons", {"point": dgmc.Column(2, "real", doc="a point of the plane"),
                  "label": dgmc.Column(2, "onehot", doc="which moon")},
    flags=("standardize",), exclusive=(), rows=1000, doc="scikit-learn's make_moons, seed 0", load=two_moons,
))
