"""Hand-written PyTorch references for tests/test_lower.py: the VAE of specs/vae.dgm, the
Helmholtz machine of specs/hm.dgm and the VRNN of specs/vrnn.dgm, written out as plain
tensor arithmetic (affine maps, ReLU, the GRU equations, the reparametrizations), with no
use of dgmc.

Weights are taken from a compiled module by structure: each reference names the network
of the compiled module that each of its layers comes from (`nets["p_x"]` layer 0, ...) and
checks the layer's type and shape on the way, so that a wrong wiring fails loudly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MIN_SCALE = 1e-4
LOG_2PI = math.log(2 * math.pi)

Params = dict[str, Tensor]


# -- building blocks ----------------------------------------------------------------------

@dataclass
class Affine:
    """y = x W^T + b, with its own copy of the weights."""

    weight: Tensor
    bias: Tensor

    @classmethod
    def of(cls, layer: nn.Module, in_dim: int | None = None, out_dim: int | None = None) -> Affine:
        assert isinstance(layer, nn.Linear), f"expected a Linear layer, got {type(layer).__name__}"
        if in_dim is not None:
            assert layer.in_features == in_dim, (layer.in_features, in_dim)
        if out_dim is not None:
            assert layer.out_features == out_dim, (layer.out_features, out_dim)
        return cls(layer.weight.detach().clone(), layer.bias.detach().clone())

    def __call__(self, x: Tensor) -> Tensor:
        return x @ self.weight.T + self.bias


@dataclass
class ReluMLP:
    """Affine, then (ReLU, Affine) for every further layer."""

    layers: list[Affine]

    @classmethod
    def of(cls, net: nn.Module, in_dim: int, out_dim: int, depth: int) -> ReluMLP:
        """From an `nn.Sequential(Linear, ReLU, Linear, ..., Linear)` of `depth` hidden
        layers: the Linear layers sit at the even positions, ReLUs between them."""
        assert isinstance(net, nn.Sequential) and len(net) == 2 * depth + 1, net
        for i in range(depth):
            assert isinstance(net[2 * i + 1], nn.ReLU), net[2 * i + 1]
        layers = [Affine.of(net[2 * i]) for i in range(depth + 1)]
        assert layers[0].weight.shape[1] == in_dim and layers[-1].weight.shape[0] == out_dim
        for a, b in itertools.pairwise(layers):
            assert a.weight.shape[0] == b.weight.shape[1]
        return cls(layers)

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(layer.weight.shape[0] for layer in self.layers[:-1])

    def __call__(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


@dataclass
class GRU:
    """The GRU cell, written out (PyTorch's gate order in the stacked weights: r, z, n)."""

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Tensor
    b_hh: Tensor

    @classmethod
    def of(cls, cell: nn.Module, in_dim: int, hidden: int) -> GRU:
        assert isinstance(cell, nn.GRUCell), cell
        assert (cell.input_size, cell.hidden_size) == (in_dim, hidden)
        return cls(*(t.detach().clone() for t in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)))

    def __call__(self, x: Tensor, h: Tensor) -> Tensor:
        i_r, i_z, i_n = (x @ self.w_ih.T + self.b_ih).chunk(3, dim=-1)
        h_r, h_z, h_n = (h @ self.w_hh.T + self.b_hh).chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + r * h_n)
        return (1 - update) * candidate + update * h


def positive(raw: Tensor) -> Tensor:
    return F.softplus(raw) + MIN_SCALE


def normal_from_raw(raw: Tensor, size: int) -> Params:
    """loc first, then the raw scale, in the network's output."""
    assert raw.shape[-1] == 2 * size
    return {"loc": raw[..., :size], "scale": positive(raw[..., size:])}


def normal_sample(params: Params, eps: Tensor) -> Tensor:
    return params["loc"] + params["scale"] * eps


def bernoulli_sample(params: Params, u: Tensor) -> Tensor:
    return (u < torch.sigmoid(params["logits"])).to(u.dtype)


def normal_log_density(value: Tensor, params: Params) -> Tensor:
    """Summed over the last dimension."""
    loc, scale = params["loc"], params["scale"]
    return (-0.5 * ((value - loc) / scale) ** 2 - torch.log(scale) - 0.5 * LOG_2PI).sum(-1)


def bernoulli_log_mass(value: Tensor, params: Params) -> Tensor:
    """x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l), summed."""
    logits = params["logits"]
    return (value * logits - F.softplus(logits)).sum(-1)


@dataclass
class Result:
    values: dict[str, Tensor]
    params: dict[str, Params]


# -- specs/vae.dgm -------------------------------------------------------------------------

@dataclass
class VAE:
    """z ~ N(0, I) (16), x ~ Bernoulli(logits = dec(z)) (64); guide z ~ N(enc(x))."""

    dec: ReluMLP
    enc: ReluMLP
    z_size: int = 16
    x_size: int = 64

    @classmethod
    def of(cls, compiled: nn.Module) -> VAE:
        return cls(dec=ReluMLP.of(compiled.nets["p_x"], 16, 64, depth=2),
                   enc=ReluMLP.of(compiled.nets["q_z"], 64, 2 * 16, depth=2))

    def run(self, eps_z: Tensor, u_x: Tensor) -> Result:
        zeros = torch.zeros_like(eps_z)
        z_params = {"loc": zeros, "scale": zeros + 1.0}
        z = normal_sample(z_params, eps_z)
        x_params = {"logits": self.dec(z)}
        x = bernoulli_sample(x_params, u_x)
        return Result({"z": z, "x": x}, {"z": z_params, "x": x_params})

    def guide(self, x: Tensor, eps_z: Tensor) -> Result:
        z_params = normal_from_raw(self.enc(x), self.z_size)
        return Result({"x": x, "z": normal_sample(z_params, eps_z)}, {"z": z_params})


# -- specs/hm.dgm --------------------------------------------------------------------------

HM_ORDER = ("z4", "z3", "y2", "z2", "z1", "y1")
HM_PARENT = {"z3": "z4", "y2": "z3", "z2": "y2", "z1": "z2", "y1": "z1"}
HM_SIZE = {"z4": 2, "z3": 2, "y2": 1, "z2": 2, "z1": 2, "y1": 1}


@dataclass
class HelmholtzMachine:
    """z4 -> z3 -> y2 -> z2 -> z1 -> y1; z Bernoulli[2], y Normal[1] with scale 0.5;
    z4's logits a free parameter, every other conditional a Linear-ReLU-Linear."""

    z4_logits: Tensor
    nets: dict[str, ReluMLP]
    y_scale: float = 0.5

    @classmethod
    def of(cls, compiled: nn.Module) -> HelmholtzMachine:
        nets = {node: ReluMLP.of(compiled.nets[f"p_{node}"], HM_SIZE[parent], HM_SIZE[node], depth=1)
                for node, parent in HM_PARENT.items()}
        logits = compiled.free["p_z4"].detach().clone()
        assert logits.shape == (2,)
        return cls(logits, nets)

    def run(self, noise: dict[str, Tensor], given: dict[str, Tensor] | None = None) -> Result:
        given = given or {}
        batch = noise["z4"].shape[0]
        values: dict[str, Tensor] = {}
        params: dict[str, Params] = {}
        for node in HM_ORDER:
            raw = self.z4_logits.expand(batch, -1) if node == "z4" else self.nets[node](values[HM_PARENT[node]])
            if node.startswith("z"):
                params[node] = {"logits": raw}
                value = bernoulli_sample(params[node], noise[node])
            else:
                params[node] = {"loc": raw, "scale": torch.full_like(raw, self.y_scale)}
                value = normal_sample(params[node], noise[node])
            values[node] = given.get(node, value)
        return Result(values, params)


# -- specs/vrnn.dgm ------------------------------------------------------------------------

@dataclass
class VRNN:
    """Per step t (h[0] = 0): z[t] ~ N(prior(h[t-1])), x[t] ~ N(dec(h[t-1], z[t])) with a
    learned scale, h[t] = GRU(input = (x[t], z[t]), state = h[t-1])."""

    prior: ReluMLP
    dec: ReluMLP
    gru: GRU
    h_size: int
    z_size: int = 8
    x_size: int = 1

    @classmethod
    def of(cls, compiled: nn.Module, h_size: int) -> VRNN:
        z, x = 8, 1
        return cls(prior=ReluMLP.of(compiled.nets["p_z"], h_size, 2 * z, depth=1),
                   dec=ReluMLP.of(compiled.nets["p_x"], h_size + z, 2 * x, depth=1),
                   gru=GRU.of(compiled.nets["p_h"], x + z, h_size), h_size=h_size)

    def run(self, noise: dict[str, Tensor], x_given: Tensor | None = None) -> Result:
        """noise: z [B, T, 8] (N(0, 1)), x [B, T, 1] (N(0, 1)); x_given [B, T, 1] forces x."""
        eps_z, eps_x = noise["z"], noise["x"]
        batch, steps = eps_z.shape[:2]
        h = eps_z.new_zeros(batch, self.h_size)
        out: dict[str, list] = {k: [] for k in ("z", "x", "h", "pz", "px")}
        for t in range(steps):
            pz = normal_from_raw(self.prior(h), self.z_size)
            z = normal_sample(pz, eps_z[:, t])
            px = normal_from_raw(self.dec(torch.cat([h, z], dim=-1)), self.x_size)
            x = normal_sample(px, eps_x[:, t]) if x_given is None else x_given[:, t]
            h = self.gru(torch.cat([x, z], dim=-1), h)
            for key, value in (("z", z), ("x", x), ("h", h), ("pz", pz), ("px", px)):
                out[key].append(value)

        def stack(items: list[Tensor]) -> Tensor:
            return torch.stack(items, dim=1)

        return Result(
            values={k: stack(out[k]) for k in ("z", "x", "h")},
            params={"z": {p: stack([s[p] for s in out["pz"]]) for p in ("loc", "scale")},
                    "x": {p: stack([s[p] for s in out["px"]]) for p in ("loc", "scale")}},
        )
