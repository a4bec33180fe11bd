"""Performance of the compiled modules against hand-written PyTorch and Pyro.

    python bench/perf.py                     # every benchmark (several minutes)
    python bench/perf.py --quick             # a smoke version: few repetitions, small front end
    python bench/perf.py --teacher --vrnn    # a selection: --teacher --pyro --distill --vrnn --conv
                                             #   --front-end --rss --torch-compile

Every comparison runs its two implementations in ONE process, alternating them (the order
flips every repetition) after a warm-up, times each repetition of a few steps, and reports
both medians and their RATIO: with other work on the machine, absolute times drift, the
ratio of interleaved medians much less. One thread (`torch.set_num_threads(1)`), flushed
denormals (as `dgmc.training.loop.optimise` sets them). The hand-written modules use the same
layers (nn.Linear, nn.ReLU, nn.GRUCell) and the compiled module's initial weights, and each
is checked to give the same loss as dgmc on the same noise before it is timed.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import dgmc
from dgmc.datasets import load_split
from dgmc.distillation.distill import distillation_loss
from dgmc.losses import generate as generate_terms
from dgmc.lower import CompiledModel, compile_model
from dgmc.report.describe import shown
from dgmc.training.loop import _step as guarded_step
from dgmc.training.objectives import elbo

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
MIN_SCALE = 1e-4
LOG_2PI = math.log(2 * math.pi)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from front_end import generate as generate_spec  # noqa: E402

# -- timing -------------------------------------------------------------------------------

@dataclass
class Row:
    bench: str
    a: str
    b: str
    a_ms: float
    b_ms: float
    target: str = ""
    met: str = ""
    spread: tuple[float, float] | None = None
    """The quartiles of the per-repetition ratio A/B (A and B timed in the same repetition)."""

    @property
    def ratio(self) -> float:
        return self.a_ms / self.b_ms


ROWS: list[Row] = []
NOTES: list[str] = []


@dataclass
class Config:
    warmup: int
    reps: int
    inner: int


class Timings(dict):
    """Median ms per call by name; `per_rep` keeps every repetition's ms, from which a
    ratio's spread over the repetitions is read (`add`)."""

    def __init__(self, per_rep: dict[str, list[float]]) -> None:
        super().__init__({name: statistics.median(v) for name, v in per_rep.items()})
        self.per_rep = per_rep

    def combine(self, name: str, *parts: str) -> None:
        """A derived entry: the sum of `parts`, repetition by repetition."""
        self.per_rep[name] = [sum(ms) for ms in zip(*(self.per_rep[p] for p in parts), strict=True)]
        self[name] = statistics.median(self.per_rep[name])


def paired(fns: dict[str, Callable[[], object]], cfg: Config) -> Timings:
    """Median ms per call of each function, timed interleaved: each repetition runs every
    function `inner` times, in an order that rotates every repetition."""
    names = list(fns)
    for _ in range(cfg.warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(cfg.reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        if rep % 2:
            order.reverse()
        for name in order:
            start = time.perf_counter()
            for _ in range(cfg.inner):
                fns[name]()
            times[name].append((time.perf_counter() - start) / cfg.inner * 1e3)
    return Timings(times)


def add(bench: str, medians: dict[str, float], a: str, b: str, target: str = "",
        check: Callable[[float], bool] | None = None) -> None:
    row = Row(bench, a, b, medians[a], medians[b], target)
    per_rep = getattr(medians, "per_rep", {})
    if a in per_rep and b in per_rep:
        ratios = [x / y for x, y in zip(per_rep[a], per_rep[b], strict=True)]
        quartiles = statistics.quantiles(ratios, n=4)
        row.spread = (quartiles[0], quartiles[2])
    if check is not None:
        row.met = "met" if check(row.ratio) else "missed"
        if row.spread and check(row.spread[0]) != check(row.spread[1]):
            row.met += " (within the spread)"
    ROWS.append(row)


def same(a: float, b: float, what: str, tol: float = 1e-4) -> None:
    if not math.isclose(a, b, rel_tol=tol, abs_tol=tol):
        raise AssertionError(f"{what}: dgmc {a} != hand-written {b}")


# -- hand-written modules -----------------------------------------------------------------

def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def copied(net: nn.Module, source: nn.Module) -> nn.Module:
    net.load_state_dict(source.state_dict())  # strict: same layers, same shapes
    return net


def normal_params(raw: Tensor) -> tuple[Tensor, Tensor]:
    loc, scale = raw.chunk(2, dim=-1)
    return loc, F.softplus(scale) + MIN_SCALE


def kl_normal(q_loc: Tensor, q_scale: Tensor, p_loc: Tensor | float = 0.0, p_scale: Tensor | float = 1.0) -> Tensor:
    """Closed-form KL(N(q) || N(p)), summed over the last dimension."""
    if isinstance(p_scale, float):
        var_ratio = q_scale.pow(2) / p_scale ** 2
        log_p_scale = math.log(p_scale)
    else:
        var_ratio = (q_scale / p_scale).pow(2)
        log_p_scale = torch.log(p_scale)
    return (0.5 * (var_ratio + ((q_loc - p_loc) / p_scale).pow(2) - 1) - torch.log(q_scale) + log_p_scale).sum(-1)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def normal_nll(x: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    return (0.5 * ((x - loc) / scale).pow(2) + torch.log(scale) + 0.5 * LOG_2PI).sum(-1)


class HandVAE(nn.Module):
    """specs/vae.dgm: z ~ N(0, I_16), x ~ Bernoulli(dec(z)); q(z | x) = N(enc(x))."""

    def __init__(self, compiled: CompiledModel) -> None:
        super().__init__()
        self.enc = copied(mlp([64, 256, 256, 32]), compiled.nets["q_z"])
        self.dec = copied(mlp([16, 256, 256, 64]), compiled.nets["p_x"])

    def loss(self, x: Tensor, generator: torch.Generator) -> Tensor:
        loc, scale = normal_params(self.enc(x))
        z = loc + scale * torch.randn(loc.shape, generator=generator)
        return bernoulli_nll(self.dec(z), x).mean() + kl_normal(loc, scale).mean()


class HandHVAE(nn.Module):
    """specs/hvae.dgm: z3 (4) -> z2 (8) -> z1 (16) -> x (64); guide x -> z1 -> z2 -> z3;
    every network an MLP with two hidden layers of 384."""

    def __init__(self, compiled: CompiledModel) -> None:
        super().__init__()
        n = compiled.nets
        self.q_z1 = copied(mlp([64, 384, 384, 32]), n["q_z1"])
        self.q_z2 = copied(mlp([16, 384, 384, 16]), n["q_z2"])
        self.q_z3 = copied(mlp([8, 384, 384, 8]), n["q_z3"])
        self.p_z2 = copied(mlp([4, 384, 384, 16]), n["p_z2"])
        self.p_z1 = copied(mlp([8, 384, 384, 32]), n["p_z1"])
        self.p_x = copied(mlp([16, 384, 384, 64]), n["p_x"])

    def loss(self, x: Tensor, generator: torch.Generator) -> Tensor:
        def draw(raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            loc, scale = normal_params(raw)
            return loc, scale, loc + scale * torch.randn(loc.shape, generator=generator)

        l1, s1, z1 = draw(self.q_z1(x))
        l2, s2, z2 = draw(self.q_z2(z1))
        l3, s3, z3 = draw(self.q_z3(z2))
        pl2, ps2 = normal_params(self.p_z2(z3))
        pl1, ps1 = normal_params(self.p_z1(z2))
        nll = bernoulli_nll(self.p_x(z1), x).mean()
        return nll + kl_normal(l3, s3).mean() + kl_normal(l2, s2, pl2, ps2).mean() + kl_normal(l1, s1, pl1, ps1).mean()


class HandVRNN(nn.Module):
    """specs/vrnn.dgm (H = 64, Z = 8, 40 steps): prior(h), dec(h, z), GRU((x, z), h);
    guide q(z | x, h). h is computed once, in the guide's pass, and reused by the model."""

    def __init__(self, compiled: CompiledModel) -> None:
        super().__init__()
        n = compiled.nets
        self.prior = copied(mlp([64, 64, 16]), n["p_z"])
        self.dec = copied(mlp([72, 64, 2]), n["p_x"])
        self.gru = copied(nn.GRUCell(9, 64), n["p_h"])
        self.q = copied(mlp([65, 64, 16]), n["q_z"])

    def loss(self, x: Tensor, generator: torch.Generator) -> Tensor:
        h = x.new_zeros(x.shape[0], 64)
        total = x.new_zeros(x.shape[0])
        for t in range(x.shape[1]):
            x_t = x[:, t]
            q_loc, q_scale = normal_params(self.q(torch.cat([x_t, h], dim=-1)))
            z = q_loc + q_scale * torch.randn(q_loc.shape, generator=generator)
            p_loc, p_scale = normal_params(self.prior(h))
            x_loc, x_scale = normal_params(self.dec(torch.cat([h, z], dim=-1)))
            total = total + normal_nll(x_t, x_loc, x_scale) + kl_normal(q_loc, q_scale, p_loc, p_scale)
            h = self.gru(torch.cat([x_t, z], dim=-1), h)
        return total.mean()


def copy_layers(layers: list[nn.Module], source: nn.Module) -> None:
    """`source`'s affine and (transposed) convolution weights into `layers`, in order;
    the kinds and shapes must agree."""
    found = [m for m in source.modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d)]
    assert [type(m) for m in found] == [type(m) for m in layers], (found, layers)
    for mine, theirs in zip(layers, found, strict=True):
        mine.load_state_dict(theirs.state_dict())


class HandConvEncoder(nn.Module):
    """Stride-2 4x4 convolutions with ReLU from a [1, 32, 32] image, then one affine map."""

    def __init__(self, channels: tuple[int, ...], out: int, source: nn.Module) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, 2, 1) for a, b in itertools.pairwise(channels))
        side = 32 // 2 ** len(self.convs)
        self.out = nn.Linear(channels[-1] * side * side, out)
        copy_layers([*self.convs, self.out], source)

    def forward(self, x: Tensor) -> Tensor:
        h = x.reshape(len(x), 1, 32, 32)
        for conv in self.convs:
            h = F.relu(conv(h))
        return self.out(h.flatten(1))


class HandConvDecoder(nn.Module):
    """An affine map to channels[0] at 4x4, ReLU, then stride-2 4x4 transposed
    convolutions (ReLU between) up to [channels[-1], 32, 32]."""

    def __init__(self, z: int, channels: tuple[int, ...], source: nn.Module) -> None:
        super().__init__()
        self.first = channels[0]
        self.inp = nn.Linear(z, channels[0] * 16)
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in itertools.pairwise(channels))
        copy_layers([self.inp, *self.deconvs], source)

    def forward(self, z: Tensor) -> Tensor:
        h = F.relu(self.inp(z).reshape(len(z), self.first, 4, 4))
        for i, deconv in enumerate(self.deconvs):
            h = deconv(h)
            if i < len(self.deconvs) - 1:
                h = F.relu(h)
        return h.flatten(1)


class HandConvVAE(nn.Module):
    """specs/conv_vae.dgm: z ~ N(0, I_10), x ~ Bernoulli(deconv(384, 192, 96)(z)) on 1x32x32;
    q(z | x) = N(conv(64, 128, 256)(x))."""

    def __init__(self, compiled: CompiledModel) -> None:
        super().__init__()
        self.enc = HandConvEncoder((1, 64, 128, 256), 20, compiled.nets["q_z"])
        self.dec = HandConvDecoder(10, (384, 192, 96, 1), compiled.nets["p_x"])

    def loss(self, x: Tensor, generator: torch.Generator) -> Tensor:
        loc, scale = normal_params(self.enc(x))
        z = loc + scale * torch.randn(loc.shape, generator=generator)
        return bernoulli_nll(self.dec(z), x).mean() + kl_normal(loc, scale).mean()


# -- shared set-up ------------------------------------------------------------------------

def load(name: str) -> dgmc.ir.Model:
    return dgmc.load(SPECS / f"{name}.dgm")


def data_batch(model, batch: int) -> dict[str, Tensor]:
    train = load_split(model).train
    rows = torch.randperm(next(iter(train.values())).shape[0], generator=torch.Generator().manual_seed(0))[:batch]
    return {k: v[rows] for k, v in train.items()}


def dgmc_steps(compiled: CompiledModel, batch: dict[str, Tensor], seed: int = 1):
    """(guarded, unguarded) ELBO steps of the compiled module, each with its own Adam."""
    opt_g = torch.optim.Adam(compiled.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)

    def guarded() -> None:
        guarded_step(compiled, opt_g, lambda: elbo(compiled, batch, gen))

    twin = copy.deepcopy(compiled)
    opt_u = torch.optim.Adam(twin.parameters(), lr=1e-3)
    gen_u = torch.Generator().manual_seed(seed)

    def unguarded() -> None:
        loss, _ = elbo(twin, batch, gen_u)
        opt_u.zero_grad(set_to_none=True)
        loss.backward()
        opt_u.step()

    return guarded, unguarded


def hand_step(hand: nn.Module, x: Tensor, seed: int = 1) -> Callable[[], None]:
    opt = torch.optim.Adam(hand.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)

    def step() -> None:
        loss = hand.loss(x, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def check_elbo(compiled: CompiledModel, hand: nn.Module, batch: dict[str, Tensor], name: str) -> None:
    with torch.no_grad():
        ours = float(elbo(compiled, batch, torch.Generator().manual_seed(7))[0])
        theirs = float(hand.loss(batch["x"], torch.Generator().manual_seed(7)))
    same(ours, theirs, f"{name} ELBO")


# -- 1. teacher step ----------------------------------------------------------------------

def bench_teacher(cfg: Config) -> None:
    for name, cls in (("vae", HandVAE), ("hvae", HandHVAE)):
        torch.manual_seed(0)
        model = load(name)
        compiled = compile_model(model)
        batch = data_batch(model, 128)
        hand = cls(compiled)
        check_elbo(compiled, hand, batch, name)
        guarded, unguarded = dgmc_steps(compiled, batch)
        med = paired({"dgmc": unguarded, "dgmc+guard": guarded, "hand": hand_step(hand, batch["x"])}, cfg)
        bench = f"teacher step, {name}, batch 128"
        add(bench, med, "dgmc", "hand", "<= 1.00", lambda r: r <= 1.00)
        add(bench, med, "dgmc+guard", "hand", "<= 1.00", lambda r: r <= 1.00)
        add(bench, med, "dgmc+guard", "dgmc", "(guard cost)")
    vae_breakdown(cfg)


def vae_breakdown(cfg: Config) -> None:
    """Where the VAE's teacher step differs from the hand-written one, forward only: the
    passes (guide, reparametrization, decoder), and the whole -ELBO (the passes and the
    terms); the terms' share is the difference."""
    torch.manual_seed(0)
    model = load("vae")
    compiled = compile_model(model)
    batch = data_batch(model, 128)
    hand, x = HandVAE(compiled), batch["x"]
    gens = [torch.Generator().manual_seed(1) for _ in range(4)]

    def ours_passes() -> None:
        compiled.run({}, given=compiled.infer(batch, generator=gens[0]).values)

    def hand_passes() -> None:
        z_loc, z_scale = normal_params(hand.enc(x))
        hand.dec(z_loc + z_scale * torch.randn(z_loc.shape, generator=gens[1]))

    def ours_elbo() -> None:
        sum(v.mean() for v in compiled.elbo_parts(batch, gens[2]).values())

    with torch.no_grad():
        med = paired({"dgmc passes": ours_passes, "hand passes": hand_passes, "dgmc -ELBO": ours_elbo,
                      "hand -ELBO": lambda: hand.loss(x, gens[3])}, cfg)
    bench = "teacher step, vae, forward only: where the time goes"
    add(bench, med, "dgmc passes", "hand passes", "(guide, reparametrization, decoder)")
    add(bench, med, "dgmc -ELBO", "hand -ELBO", "(the passes and the terms)")


def bench_conv(cfg: Config) -> None:
    """The conv VAE: a teacher step, and a distillation step of the width-0.5 student,
    each against the hand-written module on the same weights (equal losses first)."""
    torch.manual_seed(0)
    model = load("conv_vae")
    compiled = compile_model(model)
    batch = data_batch(model, model.train.batch)
    hand = HandConvVAE(compiled)
    check_elbo(compiled, hand, batch, "conv_vae")
    guarded, unguarded = dgmc_steps(compiled, batch)
    med = paired({"dgmc": unguarded, "dgmc+guard": guarded, "hand": hand_step(hand, batch["x"])}, cfg)
    bench = f"teacher step, conv_vae, batch {model.train.batch}"
    add(bench, med, "dgmc", "hand", "<= 1.00", lambda r: r <= 1.00)
    add(bench, med, "dgmc+guard", "hand", "<= 1.00", lambda r: r <= 1.00)
    distill_pair(model, HandConvDistill, cfg, width=model.distill.widths[0])


# -- 4. VRNN ------------------------------------------------------------------------------

def bench_vrnn(cfg: Config) -> None:
    torch.manual_seed(0)
    model = load("vrnn")
    compiled = compile_model(model)
    batch = data_batch(model, 64)
    hand = HandVRNN(compiled)
    check_elbo(compiled, hand, batch, "vrnn")
    guarded, unguarded = dgmc_steps(compiled, batch)
    med = paired({"dgmc": unguarded, "dgmc+guard": guarded, "hand": hand_step(hand, batch["x"])}, cfg)
    bench = "teacher step, vrnn, batch 64 x 40 steps"
    add(bench, med, "dgmc", "hand", "<= 1.00", lambda r: r <= 1.00)
    add(bench, med, "dgmc+guard", "hand", "<= 1.00", lambda r: r <= 1.00)
    add(bench, med, "dgmc+guard", "dgmc", "(guard cost)")


# -- 2. Pyro ------------------------------------------------------------------------------

def pyro_vae(hand: HandVAE):
    import pyro
    import pyro.distributions as dist

    def model(x: Tensor) -> None:
        pyro.module("dec", hand.dec)
        with pyro.plate("batch", x.shape[0]):
            zeros = x.new_zeros(x.shape[0], 16)
            z = pyro.sample("z", dist.Normal(zeros, zeros + 1.0).to_event(1))
            pyro.sample("x", dist.Bernoulli(logits=hand.dec(z)).to_event(1), obs=x)

    def guide(x: Tensor) -> None:
        pyro.module("enc", hand.enc)
        with pyro.plate("batch", x.shape[0]):
            loc, scale = normal_params(hand.enc(x))
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    return model, guide


def pyro_vrnn(hand: HandVRNN):
    import pyro
    import pyro.distributions as dist

    def model(x: Tensor) -> None:
        pyro.module("vrnn", hand)
        h = x.new_zeros(x.shape[0], 64)
        with pyro.plate("batch", x.shape[0]):
            for t in pyro.markov(range(x.shape[1])):
                z = pyro.sample(f"z_{t}", dist.Normal(*normal_params(hand.prior(h))).to_event(1))
                pyro.sample(f"x_{t}", dist.Normal(*normal_params(hand.dec(torch.cat([h, z], -1)))).to_event(1),
                            obs=x[:, t])
                h = hand.gru(torch.cat([x[:, t], z], -1), h)

    def guide(x: Tensor) -> None:
        pyro.module("vrnn", hand)
        h = x.new_zeros(x.shape[0], 64)
        with pyro.plate("batch", x.shape[0]):
            for t in pyro.markov(range(x.shape[1])):
                q = normal_params(hand.q(torch.cat([x[:, t], h], -1)))
                z = pyro.sample(f"z_{t}", dist.Normal(*q).to_event(1))
                h = hand.gru(torch.cat([x[:, t], z], -1), h)

    return model, guide


HM_ORDER = ("z4", "z3", "y2", "z2", "z1", "y1")
HM_GUIDE = {"z3": ("y2",), "z4": ("z3",), "z1": ("y1", "y2"), "z2": ("y2", "z1")}


def pyro_hm(compiled: CompiledModel):
    """specs/hm.dgm for Pyro's ReweightedWakeSleep: one particle and insomnia 0 make it
    the classic wake-sleep that dgmc's `wake_sleep` objective computes."""
    import pyro
    import pyro.distributions as dist

    p_nets = nn.ModuleDict({n: copy.deepcopy(compiled.nets[f"p_{n}"]) for n in HM_PARENT})
    p_z4 = nn.Parameter(compiled.free["p_z4"].detach().clone())
    q_nets = nn.ModuleDict({n: copy.deepcopy(compiled.nets[f"q_{n}"]) for n in HM_GUIDE})

    def model(observations=None) -> None:
        pyro.module("hm_p", p_nets)
        logits = pyro.param("hm_z4", p_z4)
        rows = observations["y1"].shape[0]
        values: dict[str, Tensor] = {}
        with pyro.plate("data", rows):
            for node in HM_ORDER:
                raw = logits.expand(rows, -1) if node == "z4" else p_nets[node](values[HM_PARENT[node]])
                if node.startswith("z"):
                    values[node] = pyro.sample(node, dist.Bernoulli(logits=raw).to_event(1))
                else:
                    values[node] = pyro.sample(node, dist.Normal(raw, 0.5).to_event(1), obs=observations[node])

    def guide(observations=None) -> None:
        pyro.module("hm_q", q_nets)
        values = dict(observations)
        with pyro.plate("data", observations["y1"].shape[0]):
            for node in ("z3", "z4", "z1", "z2"):
                parts = [values[p] for p in HM_GUIDE[node]]  # particles lead: broadcast the data
                lead = torch.broadcast_shapes(*(part.shape[:-1] for part in parts))
                raw = q_nets[node](torch.cat([part.expand(*lead, part.shape[-1]) for part in parts], dim=-1))
                values[node] = pyro.sample(node, dist.Bernoulli(logits=raw).to_event(1))

    return model, guide


def bench_pyro_hm(cfg: Config) -> None:
    import pyro
    from pyro.infer import SVI, ReweightedWakeSleep

    from dgmc.training.objectives import wake_sleep

    torch.manual_seed(0)
    pyro.clear_param_store()
    model = load("hm")
    compiled = compile_model(model)
    batch = data_batch(model, model.train.batch)  # 272 >= 218 rows: the whole split, as dgmc trains
    opt = torch.optim.Adam(compiled.parameters(), lr=model.train.lr)
    gen = torch.Generator().manual_seed(1)

    def ours() -> None:
        guarded_step(compiled, opt, lambda: wake_sleep(compiled, batch, gen))

    doubled = {k: torch.cat([v, v]) for k, v in batch.items()}
    twin = copy.deepcopy(compiled)
    opt2 = torch.optim.Adam(twin.parameters(), lr=model.train.lr)

    def ours_doubled() -> None:
        guarded_step(twin, opt2, lambda: wake_sleep(twin, doubled, gen))

    p_model, p_guide = pyro_hm(compiled)
    # Pyro's RWS refuses one particle: two, vectorized, which is the work of dgmc on the
    # batch stacked twice (the "x2 rows" column).
    rws = ReweightedWakeSleep(num_particles=2, insomnia=0.0, vectorize_particles=True, max_plate_nesting=1)
    svi = SVI(p_model, p_guide, pyro.optim.Adam({"lr": model.train.lr}), rws)
    pyro_label = "pyro RWS, 2 particles, insomnia 0"
    med = paired({"dgmc+guard": ours, "dgmc+guard x2 rows": ours_doubled,
                  pyro_label: lambda: svi.step(observations=batch)}, cfg)
    rows = next(iter(batch.values())).shape[0]
    bench = f"wake-sleep step, hm, batch {rows}"
    add(bench, med, pyro_label, "dgmc+guard x2 rows", ">= 3 (pyro/dgmc)", lambda r: r >= 3.0)
    add(bench, med, pyro_label, "dgmc+guard", "(1 particle in dgmc)")


def bench_pyro(cfg: Config, vrnn: bool = True) -> None:
    import pyro
    from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO

    cases = [("vae", HandVAE, pyro_vae, 128)] + ([("vrnn", HandVRNN, pyro_vrnn, 64)] if vrnn else [])
    for name, cls, build, size in cases:
        torch.manual_seed(0)
        pyro.clear_param_store()
        model = load(name)
        compiled = compile_model(model)
        batch = data_batch(model, size)
        guarded, _ = dgmc_steps(compiled, batch)
        fns: dict[str, Callable[[], object]] = {"dgmc+guard": guarded}
        p_model, p_guide = build(cls(compiled))  # one set of nets: Pyro's param store is global
        for label, loss in (("pyro Trace_ELBO", Trace_ELBO()), ("pyro TraceMeanField_ELBO", TraceMeanField_ELBO())):
            svi = SVI(p_model, p_guide, pyro.optim.Adam({"lr": 1e-3}), loss)
            fns[label] = lambda svi=svi, x=batch["x"]: svi.step(x)
        bench = f"SVI step, {name}, batch {size}" + (" x 40 steps" if name == "vrnn" else "")
        med = paired(fns, cfg)
        target = ">= 3 (pyro/dgmc)" if name == "vrnn" else "(no target)"
        for label in fns:
            if label.startswith("pyro"):
                check = (lambda r: r >= 3.0) if name == "vrnn" else None
                add(bench, med, label, "dgmc+guard", target, check)


# -- 3. distillation ----------------------------------------------------------------------

class HandVAEDistill:
    """Teacher ancestral sample (no grad), student on the teacher's noise: w2 on z (both
    N(0, I), so 0), bce of the student's x logits against the teacher's probabilities."""

    def __init__(self, teacher: CompiledModel, student: CompiledModel, batch: int) -> None:
        self.t_dec = copied(mlp([16, 256, 256, 64]), teacher.nets["p_x"])
        self.s_dec = copied(mlp([16, 64, 64, 64]), student.nets["p_x"])
        self.batch, self.z_size, self.x_size, self.lam = batch, 16, 64, 0.1

    def parameters(self):
        return self.s_dec.parameters()

    def teacher(self, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            z = torch.randn(self.batch, self.z_size, generator=gen)
            logits = self.t_dec(z)
            torch.rand(self.batch, self.x_size, generator=gen)  # x's noise, as the teacher draws it
        return z, logits

    def student(self, z: Tensor, t_logits: Tensor) -> Tensor:
        bce = F.binary_cross_entropy_with_logits(self.s_dec(z), torch.sigmoid(t_logits), reduction="none")
        zero = torch.zeros((), dtype=z.dtype)  # the latent term between N(0, I) and N(0, I)
        return self.lam * zero + bce.sum(-1).mean()

    def loss(self, gen: torch.Generator) -> Tensor:
        return self.student(*self.teacher(gen))


class HandConvDistill(HandVAEDistill):
    """specs/conv_vae.dgm: the teacher's decoder on z ~ N(0, I), the student's on the same
    z; kl on z (both N(0, I): 0) and bce of the student's logits against the teacher's
    probabilities on all 1024 pixels."""

    def __init__(self, teacher: CompiledModel, student: CompiledModel, batch: int) -> None:
        scaled = tuple(layer.out_channels for layer in student.nets["p_x"].modules()
                       if isinstance(layer, nn.ConvTranspose2d))
        first = next(m for m in student.nets["p_x"].modules() if isinstance(m, nn.Linear)).out_features // 16
        self.t_dec = HandConvDecoder(10, (384, 192, 96, 1), teacher.nets["p_x"])
        self.s_dec = HandConvDecoder(10, (first, *scaled), student.nets["p_x"])
        self.batch, self.z_size, self.x_size, self.lam = batch, 10, 1024, 1.0


HM_PARENT = {"z3": "z4", "y2": "z3", "z2": "y2", "z1": "z2", "y1": "z1"}
HM_SIZE = {"z4": 2, "z3": 2, "y2": 1, "z2": 2, "z1": 2, "y1": 1}


class HandHMDistill:
    """specs/hm.dgm: teacher ancestral sample; student on the teacher's noise with y2
    teacher-forced; bce on every z, KL on every y (scale 0.5 both: a squared gap)."""

    def __init__(self, teacher: CompiledModel, student: CompiledModel, batch: int) -> None:
        def nets(model: CompiledModel, hidden: int) -> dict[str, nn.Module]:
            return {n: copied(mlp([HM_SIZE[p], hidden, HM_SIZE[n]]), model.nets[f"p_{n}"])
                    for n, p in HM_PARENT.items()}

        self.t_nets, self.s_nets = nets(teacher, 8), nets(student, 2)
        self.t_z4 = teacher.free["p_z4"].detach().clone()
        self.s_z4 = nn.Parameter(student.free["p_z4"].detach().clone())
        self.batch = batch

    def parameters(self):
        return [self.s_z4, *(p for net in self.s_nets.values() for p in net.parameters())]

    def teacher(self, gen: torch.Generator) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        with torch.no_grad():
            for node in ("z4", "z3", "y2", "z2", "z1", "y1"):
                raw = self.t_z4.expand(self.batch, -1) if node == "z4" else self.t_nets[node](out[HM_PARENT[node]])
                out[f"raw_{node}"] = raw
                if node.startswith("z"):
                    out[f"eps_{node}"] = torch.rand(self.batch, HM_SIZE[node], generator=gen)
                    out[node] = (out[f"eps_{node}"] < torch.sigmoid(raw)).float()
                else:
                    out[f"eps_{node}"] = torch.randn(self.batch, HM_SIZE[node], generator=gen)
                    out[node] = raw + 0.5 * out[f"eps_{node}"]
        return out

    def student(self, t: dict[str, Tensor]) -> Tensor:
        values: dict[str, Tensor] = {}
        loss = torch.zeros(())
        for node in ("z4", "z3", "y2", "z2", "z1", "y1"):
            raw = self.s_z4.expand(self.batch, -1) if node == "z4" else self.s_nets[node](values[HM_PARENT[node]])
            if node.startswith("z"):
                values[node] = (t[f"eps_{node}"] < torch.sigmoid(raw)).float()
                term = F.binary_cross_entropy_with_logits(raw, torch.sigmoid(t[f"raw_{node}"]), reduction="none")
            else:
                values[node] = t["y2"] if node == "y2" else raw + 0.5 * t[f"eps_{node}"]
                term = 0.5 * ((t[f"raw_{node}"] - raw) / 0.5).pow(2)
            loss = loss + term.sum(-1).mean()
        return loss

    def loss(self, gen: torch.Generator) -> Tensor:
        return self.student(self.teacher(gen))


def bench_distill(cfg: Config) -> None:
    for name, cls in (("vae", HandVAEDistill), ("hm", HandHMDistill)):
        model = load(name)
        distill_pair(model, cls, cfg, model.distill.widths[0])


def distill_pair(model: dgmc.ir.Model, cls: type, cfg: Config, width: float) -> None:
    """One distillation step of dgmc (with and without the guard) against the hand-written
    `cls` on the same weights and noise (equal losses checked first), and against the
    floor: the teacher's forward plus the student's forward and backward."""
    torch.manual_seed(0)
    name = model.name
    teacher = compile_model(model).eval()
    student = compile_model(model, width)
    batch = model.distill.batch
    terms = generate_terms(model, "ours")
    hand = cls(teacher, student, batch)
    with torch.no_grad():
        fixed_gen = torch.Generator().manual_seed(3)
        ours = float(distillation_loss(teacher, student, terms, "ours", batch, {}, fixed_gen)[0])
        theirs = float(hand.loss(torch.Generator().manual_seed(3)))
    same(ours, theirs, f"{name} distillation loss")

    opt = torch.optim.Adam(student.generative_parameters(), lr=model.distill.lr)
    gen = torch.Generator().manual_seed(1)

    def ours_step() -> None:
        loss, _ = distillation_loss(teacher, student, terms, "ours", batch, {}, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    twin = copy.deepcopy(student)
    opt_g = torch.optim.Adam(twin.generative_parameters(), lr=model.distill.lr)
    gen_g = torch.Generator().manual_seed(1)

    def ours_guarded() -> None:
        guarded_step(twin, opt_g, lambda: distillation_loss(teacher, twin, terms, "ours", batch, {}, gen_g))

    h_opt = torch.optim.Adam(hand.parameters(), lr=model.distill.lr)
    h_gen = torch.Generator().manual_seed(1)

    def hand_step_() -> None:
        loss = hand.loss(h_gen)
        h_opt.zero_grad(set_to_none=True)
        loss.backward()
        h_opt.step()

    fixed = hand.teacher(torch.Generator().manual_seed(5))
    t_gen = torch.Generator().manual_seed(2)

    def teacher_fwd() -> None:
        hand.teacher(t_gen)

    def student_fwd_bwd() -> None:
        hand.student(*fixed if isinstance(fixed, tuple) else (fixed,)).backward()

    med = paired({"dgmc": ours_step, "dgmc+guard": ours_guarded, "hand": hand_step_,
                  "teacher fwd": teacher_fwd, "student fwd/bwd": student_fwd_bwd}, cfg)
    med.combine("teacher fwd + student fwd/bwd", "teacher fwd", "student fwd/bwd")
    bench = f"distillation step, {name}, width {width:g}, batch {batch}"
    add(bench, med, "dgmc", "hand", "<= 1.05", lambda r: r <= 1.05)
    add(bench, med, "dgmc+guard", "hand", "<= 1.05", lambda r: r <= 1.05)
    add(bench, med, "dgmc", "teacher fwd + student fwd/bwd", "<= 1.2", lambda r: r <= 1.2)
    add(bench, med, "hand", "teacher fwd + student fwd/bwd", "(floor: Adam step, zero_grad)")
    add(bench, med, "dgmc+guard", "teacher fwd + student fwd/bwd", "<= 1.2", lambda r: r <= 1.2)
    distill_breakdown(name, width, teacher, student, terms, hand, batch, cfg)


def distill_breakdown(name: str, width: float, teacher: CompiledModel, student: CompiledModel, terms: tuple,
                      hand, batch: int, cfg: Config) -> None:
    """Where the distillation step differs from the hand-written one: the teacher's
    sample (no gradient), and the student's pass with the terms, forward and backward,
    each side on its own fixed teacher sample."""
    gens = [torch.Generator().manual_seed(2) for _ in range(2)]
    fed = teacher.fed("ours")
    with torch.no_grad():
        fixed_t = teacher.sample(batch, {}, torch.Generator().manual_seed(5), read=fed)
    fixed_hand = hand.teacher(torch.Generator().manual_seed(5))

    def ours_teacher() -> None:
        with torch.no_grad():
            teacher.sample(batch, {}, gens[0], read=fed)

    def ours_student() -> None:
        student.distill_loss(fixed_t, {}, terms, fed)[0].backward()

    med = paired({"dgmc teacher": ours_teacher, "hand teacher": lambda: hand.teacher(gens[1]),
                  "dgmc student": ours_student,
                  "hand student": lambda: hand.student(*fixed_hand if isinstance(fixed_hand, tuple)
                                                       else (fixed_hand,)).backward()}, cfg)
    bench = f"distillation step, {name}, width {width:g}: where the time goes"
    add(bench, med, "dgmc teacher", "hand teacher", "(the teacher's sample, no gradient)")
    add(bench, med, "dgmc student", "hand student", "(the student's pass and terms, forward and backward)")


# -- 5. front end -------------------------------------------------------------------------

FRONT: list[tuple[int, float, float, float, dict[str, float]]] = []
STAGES = ("parse, check, order", "lower", "generate")


def front_end(text: str, stages: dict[str, list[float]] | None = None):
    """Parse, check, order, lower, and generate and compile the code of the main calls;
    each stage's seconds appended to `stages`."""
    marks = [time.perf_counter()]
    model = dgmc.loads(text)
    marks.append(time.perf_counter())
    compiled = compile_model(model)
    marks.append(time.perf_counter())
    for signature in shown(compiled):
        compiled.function(signature)
    marks.append(time.perf_counter())
    for stage, (a, b) in zip(STAGES, itertools.pairwise(marks), strict=True):
        if stages is not None:
            stages.setdefault(stage, []).append(b - a)
    return compiled


def bench_front_end(sizes: list[int], repeat: int) -> None:
    dgmc.loads("model warm { observed x : Normal[1] }")
    for nodes in sizes:
        text = generate_spec(nodes)
        times, stages = [], {}
        for _ in range(repeat):
            start = time.perf_counter()
            front_end(text, stages)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        front_end(text)
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
        FRONT.append((nodes, statistics.median(times), min(times), peak,
                      {k: statistics.median(v) for k, v in stages.items()}))


def front_end_table() -> list[str]:
    lines = ["| nodes | median s | best s | " + " | ".join(f"{s} s" for s in STAGES)
             + " | peak MiB (tracemalloc) | time growth vs previous | memory growth |",
             "|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|---:|---:|"]
    previous = None
    for nodes, med, best, peak, stages in FRONT:
        growth = (f"x{med / previous[1]:.1f} for x{nodes / previous[0]:g} nodes", f"x{peak / previous[3]:.1f}") \
            if previous else ("", "")
        split = " | ".join(f"{stages[s]:.3f}" for s in STAGES)
        lines.append(f"| {nodes} | {med:.3f} | {best:.3f} | {split} | {peak:.1f} | {growth[0]} | {growth[1]} |")
        previous = (nodes, med, best, peak)
    for nodes, med, *_ in FRONT:
        if nodes == 1000:
            lines.append(f"\nTarget: 1000 nodes < 0.5 s: {'met' if med < 0.5 else 'missed'} ({med:.3f} s).")
    return lines


# -- 6. peak RSS of `dgmc run --quick` ------------------------------------------------------

RSS_WRAPPER = """
import os, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "w+b") as err:
    proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)
    err.seek(0)
    tail = err.read().decode()[-500:]
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, time.perf_counter() - start,
      usage.ru_utime + usage.ru_stime, repr(tail))
"""


def bench_rss() -> list[str]:
    """Max RSS of `dgmc run --quick`, from getrusage of the child (os.wait4). The child is
    started by a small wrapper process, not by this one: Linux counts the RSS a forked
    child inherits before its exec, so a child of this (large) process would report this
    process's size."""
    dgmc_exe = Path(sys.executable).with_name("dgmc")
    with tempfile.TemporaryDirectory() as out:
        command = [str(dgmc_exe), "run", str(SPECS / "vae.dgm"), "--quick", "--out", out, "--no-progress"]
        done = subprocess.run([sys.executable, "-c", RSS_WRAPPER, str(Path(out) / "stderr.txt"), *command],
                              capture_output=True, text=True)
    code, maxrss, seconds, cpu, tail = done.stdout.split(" ", 4)
    if int(code):
        return [f"`dgmc run specs/vae.dgm --quick` failed ({code}): {tail}"]
    return [f"`dgmc run specs/vae.dgm --quick --out TMP --no-progress`: max RSS {int(maxrss) / 1024:.0f} MiB "
            f"(getrusage of the child, os.wait4), wall {float(seconds):.1f} s, user+sys CPU {float(cpu):.1f} s."]


# -- torch.compile ------------------------------------------------------------------------

COMPILE_SCRIPT = """
import time, statistics, torch, sys
sys.path.insert(0, {bench!r})
import perf
torch.set_num_threads(1)
torch.set_flush_denormal(True)
torch.manual_seed(0)
model = perf.load("vae")
compiled = perf.compile_model(model)
batch = perf.data_batch(model, 128)
_, eager = perf.dgmc_steps(compiled, batch)
twin = perf.copy.deepcopy(compiled)
opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
gen = torch.Generator().manual_seed(1)
def loss_fn():
    return perf.elbo(twin, batch, gen)[0]
explained = torch._dynamo.explain(loss_fn)()
reasons = sorted({{str(r.reason).splitlines()[0][:80] for r in explained.break_reasons}})
print(f"torch._dynamo.explain of the ELBO: {{explained.graph_count}} graphs, {{explained.graph_break_count}} breaks "
      f"({{'; '.join(reasons)}})", flush=True)
torch._dynamo.reset()
fast = torch.compile(loss_fn)
def step():
    loss = fast()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
start = time.perf_counter()
step()
print(f"first compiled step (compilation) {{time.perf_counter() - start:.1f}} s", flush=True)
# the same with the guide's noise drawn before the compiled part: no random op inside it
sampled = [s for s in twin.inference.steps if s.role == "sample"]
def elbo_on(eps):
    return sum(v.mean() for v in twin.elbo_parts(batch, None, eps).values())
def draw():
    return {{s.node: s.family.noise((128, s.size), gen, "cpu") for s in sampled}}
elbo_on(draw())  # the code of these calls is generated on first use, outside what is traced
torch._dynamo.reset()
explained = torch._dynamo.explain(elbo_on)(draw())
print(f"torch._dynamo.explain of the ELBO on given noise: {{explained.graph_count}} graphs, "
      f"{{explained.graph_break_count}} breaks", flush=True)
torch._dynamo.reset()
fast_on = torch.compile(elbo_on)
def step_on():
    loss = fast_on(draw())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
step_on()
med = perf.paired({{"eager": eager, "compiled": step, "compiled, noise outside": step_on}},
                  perf.Config(5, {reps}, 5))
print(f"torch.compile of the ELBO (vae, batch 128): eager {{med['eager']:.2f}} ms, compiled "
      f"{{med['compiled']:.2f}} ms, compiled/eager {{med['compiled'] / med['eager']:.2f}}; noise drawn outside: "
      f"{{med['compiled, noise outside']:.2f}} ms, {{med['compiled, noise outside'] / med['eager']:.2f}} of eager")
"""


def bench_torch_compile(reps: int, timeout: int = 300) -> list[str]:
    script = COMPILE_SCRIPT.format(bench=str(Path(__file__).resolve().parent), reps=reps)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [f"torch.compile: gave up after {timeout} s (time box)."]
    took = time.perf_counter() - start
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-3:]
        return [f"torch.compile failed after {took:.0f} s: " + " / ".join(tail)]
    return [line for line in done.stdout.strip().splitlines()] + [f"(whole subprocess {took:.0f} s)"]


# -- report -------------------------------------------------------------------------------

def machine() -> list[str]:
    lines = [f"python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}"]
    try:
        import pyro
        lines[0] += f", pyro {pyro.__version__}"
    except ImportError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        lines += [line for line in lscpu if line.split(":")[0].strip() in
                  ("Architecture", "CPU(s)", "Model name", "Thread(s) per core", "Core(s) per socket")]
    except OSError:
        pass
    lines.append("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return lines


def ratio_table() -> list[str]:
    lines = ["| benchmark | A | B | A ms (median) | B ms (median) | A/B | A/B per repetition, quartiles | target | |",
             "|---|---|---|---:|---:|---:|---:|---|---|"]
    for r in ROWS:
        spread = f"{r.spread[0]:.3f} - {r.spread[1]:.3f}" if r.spread else ""
        lines.append(f"| {r.bench} | {r.a} | {r.b} | {r.a_ms:.3f} | {r.b_ms:.3f} | {r.ratio:.3f} | {spread} "
                     f"| {r.target} | {r.met} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, front end up to 1000 nodes")
    for flag in ("teacher", "pyro", "distill", "vrnn", "conv", "front-end", "rss", "torch-compile"):
        parser.add_argument(f"--{flag}", action="store_true", help=f"run the {flag} benchmark (default: all)")
    parser.add_argument("--no-pyro-vrnn", action="store_true", help="Pyro on the VAE only")
    parser.add_argument("--nodes", type=int, nargs="+", help="front-end sizes (default 100 1000 10000)")
    parser.add_argument("--write", type=Path, metavar="MD",
                        help="also write the report into MD, between <!-- begin perf --> and <!-- end perf -->")
    args = parser.parse_args()
    chosen = {f for f in ("teacher", "pyro", "distill", "vrnn", "conv", "front_end", "rss", "torch_compile")
              if getattr(args, f)}
    every = not chosen
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    cfg = Config(warmup=3, reps=7, inner=3) if args.quick else Config(warmup=10, reps=31, inner=5)
    slow = Config(warmup=1, reps=5, inner=1) if args.quick else Config(warmup=3, reps=15, inner=2)
    header = machine()
    extra: list[str] = []
    started = time.perf_counter()
    if every or "teacher" in chosen:
        bench_teacher(cfg)
    if every or "vrnn" in chosen:
        bench_vrnn(slow)
    if every or "distill" in chosen:
        bench_distill(cfg)
    if every or "conv" in chosen:
        bench_conv(slow)
    if every or "pyro" in chosen:
        try:
            bench_pyro(slow, vrnn=not args.no_pyro_vrnn)
            bench_pyro_hm(cfg)
        except ImportError:
            extra.append("Pyro is not installed (`pip install -e .[bench]`): Pyro comparisons skipped.")
    if every or "front_end" in chosen:
        sizes = args.nodes or ([100, 1000] if args.quick else [100, 1000, 10000])
        bench_front_end(sizes, repeat=3 if args.quick else 5)
    if every or "rss" in chosen:
        extra += bench_rss()
    if every or "torch_compile" in chosen:
        extra += bench_torch_compile(reps=5 if args.quick else 15)
    report = render(header, extra, time.perf_counter() - started, " ".join(sys.argv[1:]))
    print(report)
    if args.write:
        write_block(args.write, report)
        print(f"wrote {args.write}")


def render(header: list[str], extra: list[str], seconds: float, arguments: str) -> str:
    """The report as Markdown: machine, paired timings, front end, other measurements."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip() or "?"
    when = time.strftime("%d %b %Y, %H:%M UTC", time.gmtime())
    parts = [f"Run of {when}, commit {commit}: `python bench/perf.py {arguments}`, {seconds:.0f} s.", "",
             "### Machine", "", *(f"- {line}" for line in header)]
    if ROWS:
        parts += ["", "### Paired step timings (interleaved medians; A/B < 1 means A is faster)", "", *ratio_table()]
    if FRONT:
        parts += ["", "### Front end: parse, check, order, lower, generate (`front_end` in bench/perf.py)", "",
                  *front_end_table()]
    if extra or NOTES:
        parts += ["", "### Other", "", *(f"- {line}" for line in extra + NOTES)]
    return "\n".join(parts)


def write_block(path: Path, report: str, name: str = "perf") -> None:
    """Replace the generated block `name` of `path`; the prose around it stays."""
    import re

    text = path.read_text()
    pattern = re.compile(rf"(<!-- begin {name} -->\n).*?(<!-- end {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no <!-- begin {name} --> ... <!-- end {name} --> block")
    path.write_text(pattern.sub(lambda m: m.group(1) + report + "\n" + m.group(2), text))


if __name__ == "__main__":
    main()
