"""The lowering (dgmc.lower) against hand-written PyTorch, in the spirit of micrograd's
tests: the compiled modules of specs/vae.dgm, hm.dgm and vrnn.dgm are compared node by
node with the references of tests/references.py on the same weights and the same noise;
each family's reparametrization is checked in distribution against its own
torch.distributions sampler (and shown to reject a wrong parameter); gradients pass
through the continuous latents and not through the discrete ones; a run on the noise of a
sample reproduces it exactly; parameters are shared over time steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import references as ref
import torch
import torch.nn.functional as F
from torch import Tensor

import dgmc
from dgmc.ir import Model
from dgmc.losses.methods import random_nodes
from dgmc.lower import CompiledModel, compile_model

SPEC_DIR = Path(__file__).resolve().parent.parent / "specs"
SPECS = sorted(p.stem for p in SPEC_DIR.glob("*.dgm"))
ATOL = 1e-6
DTYPE = torch.float64
"""The reference comparisons run in double precision: the Bernoulli thresholds
1[u < sigmoid(logits)] then never flip on a rounding difference between the two sides."""


def load(name: str) -> Model:
    return dgmc.load(SPEC_DIR / f"{name}.dgm")


def compiled(name: str, width: float | None = None, seed: int = 0) -> CompiledModel:
    torch.manual_seed(seed)
    return compile_model(load(name), width).to(DTYPE)


def close(actual: Tensor, expected: Tensor, what: str) -> None:
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0, msg=lambda m: f"{what}: {m}")


def same_trace(trace, result: ref.Result, nodes: tuple[str, ...]) -> None:
    """EVERY node's value, and every sampled node's parameters, equal the reference's."""
    assert set(trace.values) == set(nodes)
    assert set(trace.params) == set(result.params)
    for node in nodes:
        close(trace.values[node], result.values[node], f"value of {node}")
    for node, params in result.params.items():
        assert set(trace.params[node]) == set(params), node
        for name, value in params.items():
            close(trace.params[node][name], value, f"{name} of {node}")


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- 1. reference equality -----------------------------------------------------------------

@pytest.mark.parametrize(("width", "hidden"), [(None, (256, 256)), (0.25, (64, 64))])
def test_vae_run_matches_reference(width: float | None, hidden: tuple[int, ...]) -> None:
    model = compiled("vae", width)
    vae = ref.VAE.of(model)
    assert vae.dec.hidden == vae.enc.hidden == hidden
    g = generator(1)
    noise = {"z": torch.randn(32, 16, generator=g, dtype=DTYPE), "x": torch.rand(32, 64, generator=g, dtype=DTYPE)}
    trace = model.run(noise)
    expected = vae.run(noise["z"], noise["x"])
    same_trace(trace, expected, ("z", "x"))
    assert 0 < expected.values["x"].mean() < 1  # both outcomes occur: the comparison sees both
    for node in ("z", "x"):
        assert torch.equal(trace.noise[node], noise[node])


@pytest.mark.parametrize("width", [None, 0.25])
def test_vae_guide_and_log_likelihood_match_reference(width: float | None) -> None:
    model = compiled("vae", width)
    vae = ref.VAE.of(model)
    g = generator(2)
    x = torch.bernoulli(torch.full((32, 64), 0.4, dtype=DTYPE), generator=g)
    eps = torch.randn(32, 16, generator=g, dtype=DTYPE)
    post = model.infer({"x": x}, noise={"z": eps})
    expected = vae.guide(x, eps)
    same_trace(post, expected, ("x", "z"))
    assert set(post.noise) == {"z"}

    # The ELBO's terms: log p(x | z), log p(z), log q(z | x), on the guide's z.
    z = post.values["z"]
    gen = model.run({}, given={"z": z, "x": x})
    prior = {"loc": torch.zeros_like(z), "scale": torch.ones_like(z)}
    logits = vae.dec(z)
    close(gen.params["x"]["logits"], logits, "decoder logits on the guide's z")
    for actual, by_hand, by_torch in (
        (model.log_prob("x", gen), ref.bernoulli_log_mass(x, {"logits": logits}),
         torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)),
        (model.log_prob("z", gen), ref.normal_log_density(z, prior),
         torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)),
        (model.log_prob("z", post), ref.normal_log_density(z, expected.params["z"]),
         torch.distributions.Normal(expected.params["z"]["loc"], expected.params["z"]["scale"]).log_prob(z).sum(-1)),
    ):
        assert actual.shape == (32,)
        close(actual, by_hand, "log-likelihood by hand")
        close(actual, by_torch, "log-likelihood by torch.distributions")
    # log_prob of another value than the trace's own
    other = 1 - x
    close(model.log_prob("x", gen, other), ref.bernoulli_log_mass(other, {"logits": logits}), "log p(1 - x | z)")


def hm_noise(batch: int, seed: int) -> dict[str, Tensor]:
    g = generator(seed)
    return {node: (torch.rand if node.startswith("z") else torch.randn)(batch, ref.HM_SIZE[node], generator=g,
                                                                         dtype=DTYPE)
            for node in ref.HM_ORDER}


@pytest.mark.parametrize(("width", "hidden"), [(None, (8,)), (0.25, (2,))])
def test_hm_run_matches_reference(width: float | None, hidden: tuple[int, ...]) -> None:
    model = compiled("hm", width)
    with torch.no_grad():  # a non-zero root, so that z4 is not a fair coin by construction
        model.free["p_z4"].copy_(torch.tensor([1.5, -0.7]))
    hm = ref.HelmholtzMachine.of(model)
    assert all(net.hidden == hidden for net in hm.nets.values())
    noise = hm_noise(256, 3)
    same_trace(model.run(noise), hm.run(noise), ref.HM_ORDER)

    # Teacher forcing of the semi node y2: z2 onwards read the given value.
    assert model.semi == ("y2",)
    y2 = torch.randn(256, 1, generator=generator(4), dtype=DTYPE) * 3
    forced = model.run(noise, given={"y2": y2})
    expected = hm.run(noise, given={"y2": y2})
    same_trace(forced, expected, ref.HM_ORDER)
    assert torch.equal(forced.values["y2"], y2)
    assert not torch.allclose(forced.params["z2"]["logits"], hm.run(noise).params["z2"]["logits"])


@pytest.mark.parametrize(("width", "h_size"), [(None, 64), (0.5, 32)])
@pytest.mark.parametrize("forced", [False, True])
def test_vrnn_run_matches_reference(width: float | None, h_size: int, forced: bool) -> None:
    model = compiled("vrnn", width)
    assert model.steps == 40 and model.semi == ("x",)
    # the decoder reads (h[t-1], z[t]) and the GRU's input is (x[t], z[t]), in that order
    steps = {s.node: s for s in model.generative.timed}
    assert steps["x"].parents == (("h", 1, None), ("z", 0, None))
    assert steps["h"].parents == (("x", 0, None), ("z", 0, None), ("h", 1, None))
    vrnn = ref.VRNN.of(model, h_size)
    g = generator(5)
    noise = {"z": torch.randn(8, 40, 8, generator=g, dtype=DTYPE), "x": torch.randn(8, 40, 1, generator=g, dtype=DTYPE)}
    x = torch.randn(8, 40, 1, generator=g, dtype=DTYPE) if forced else None
    trace = model.run(noise, given={"x": x} if forced else None)
    expected = vrnn.run(noise, x)
    same_trace(trace, expected, ("z", "x", "h"))
    assert trace.values["h"].shape == (8, 40, h_size)
    if forced:
        assert torch.equal(trace.values["x"], x)
        assert torch.equal(trace.noise["x"], noise["x"])
    # log p(x | ...) sums over steps and the node's dimension
    px = expected.params["x"]
    close(model.log_prob("x", trace), ref.normal_log_density(expected.values["x"], px).sum(-1), "log p(x)")


# -- 3. gradients (the samplers of every family: tests/test_families.py) ----------------------

def grads(model: CompiledModel, prefix: str) -> dict[str, float]:
    """Total |gradient| per network or free parameter (None -> 0)."""
    out = {}
    for name, p in model.named_parameters():
        key = name.split(".")[1]
        if key.startswith(prefix):
            out[key] = out.get(key, 0.0) + (0.0 if p.grad is None else p.grad.abs().sum().item())
    return out


def test_vae_loss_on_x_backpropagates_into_the_guide() -> None:
    model = compiled("vae")
    g = generator(8)
    x = torch.bernoulli(torch.full((16, 64), 0.4, dtype=DTYPE), generator=g)
    post = model.infer({"x": x}, noise={"z": torch.randn(16, 16, generator=g, dtype=DTYPE)})
    gen = model.run({}, given={"z": post.values["z"], "x": x})
    assert post.values["z"].requires_grad
    (-model.log_prob("x", gen).mean()).backward()
    total = grads(model, "")
    assert total["q_z"] > 0 and total["p_x"] > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.guide_parameters())


def test_hm_gradient_stops_at_bernoulli_layers() -> None:
    model = compiled("hm")
    noise = hm_noise(128, 9)
    trace = model.run(noise)
    trace.params["y1"]["loc"].pow(2).mean().backward()
    total = grads(model, "p_")
    assert total.pop("p_y1") > 0
    assert total == {"p_z4": 0.0, "p_z3": 0.0, "p_y2": 0.0, "p_z2": 0.0, "p_z1": 0.0}

    # Through the Normal y2 (not forced), a loss on z2's logits reaches y2's network,
    # but nothing above the Bernoulli z3.
    model.zero_grad(set_to_none=True)
    trace = model.run(noise)
    trace.params["z2"]["logits"].pow(2).mean().backward()
    total = grads(model, "p_")
    assert total["p_z2"] > 0 and total["p_y2"] > 0
    assert total["p_z3"] == total["p_z4"] == total["p_z1"] == total["p_y1"] == 0.0

    # Teacher forcing of y2 cuts that path too.
    model.zero_grad(set_to_none=True)
    trace = model.run(noise, given={"y2": trace.values["y2"].detach()})
    trace.params["z2"]["logits"].pow(2).mean().backward()
    assert grads(model, "p_")["p_y2"] == 0.0


@pytest.mark.parametrize("name", SPECS)
def test_every_conditional_gets_gradient_from_its_own_output(name: str) -> None:
    """Each network (or free root parameter) of the model and of the guide receives
    gradient from the parameters (or, for a deterministic node, the value) it computes."""
    ir_model = load(name)
    torch.manual_seed(0)
    model = compile_model(ir_model)
    g = generator(13)
    inputs = inputs_for(ir_model, 8, g)
    sample = model.sample(8, inputs, generator=g)
    data = {**inputs, **{n.name: sample.values[n.name] for n in ir_model.of_kind("observed")}}
    post = model.infer(data, generator=g) if model.inference else None
    holders = {**model.nets, **model.free}
    assert holders
    for key, holder in holders.items():
        node = key[2:]
        trace = sample if key.startswith("p_") and node not in model.guide_states else post  # guide states: infer
        outputs = list(trace.params[node].values()) if node in trace.params else [trace.values[node]]
        weights = [holder] if isinstance(holder, torch.nn.Parameter) else list(holder.parameters())
        out = sum(o.sum() for o in outputs if o.requires_grad)
        gradients = torch.autograd.grad(out, weights, retain_graph=True, allow_unused=True)
        assert sum(0 if d is None else d.abs().sum().item() for d in gradients) > 0, key


# -- 4. a run on a sample's noise reproduces it --------------------------------------------

def inputs_for(model: Model, batch: int, g: torch.Generator) -> dict[str, Tensor]:
    """Random values for the input nodes, by their domain."""
    out = {}
    for node in model.of_kind("input"):
        shape = (batch, model.time.steps, node.size) if node.timed else (batch, node.size)
        if node.type == "OneHot":
            out[node.name] = F.one_hot(torch.randint(node.size, shape[:-1], generator=g), node.size).float()
        elif node.type == "Binary":
            out[node.name] = torch.bernoulli(torch.full(shape, 0.5), generator=g)
        else:
            out[node.name] = torch.randn(shape, generator=g)
    return out


def test_inputs_of_shipped_specs() -> None:
    assert {n.name: n.type for n in load("cvae").of_kind("input")} == {"c": "OneHot"}
    assert {n.name: n.type for n in load("classifier").of_kind("input")} == {"x": "Real"}


@pytest.mark.parametrize("width", [None, 0.25])
@pytest.mark.parametrize("name", SPECS)
def test_run_on_sample_noise_reproduces_the_sample(name: str, width: float | None) -> None:
    ir_model = load(name)
    torch.manual_seed(0)
    model = compile_model(ir_model, width)
    g = generator(10)
    inputs = inputs_for(ir_model, 16, g)
    sample = model.sample(16, inputs, generator=g)
    semi = {n: sample.values[n] for n in model.semi}
    again = model.run(sample.noise, inputs, given=semi)
    drawn = set(random_nodes(ir_model))  # latent and observed nodes, and draws before the first step
    assert set(sample.noise) == set(sample.params) == drawn
    assert set(sample.values) == set(again.values) == {n.name for n in ir_model.nodes} - model.guide_states | drawn
    for node, value in sample.values.items():
        assert torch.equal(again.values[node], value), node
    for node, params in sample.params.items():
        for p, value in params.items():
            assert torch.equal(again.params[node][p], value), (node, p)
    for node, eps in sample.noise.items():
        assert torch.equal(again.noise[node], eps), node
    # the same seed gives the same sample; another seed another one
    g2 = generator(10)
    twin = model.sample(16, inputs_for(ir_model, 16, g2), generator=g2)
    assert all(torch.equal(twin.values[n], v) for n, v in sample.values.items())


def test_semi_nodes_of_shipped_specs() -> None:
    semi = {name: compile_model(load(name)).semi for name in SPECS}
    assert {name: nodes for name, nodes in semi.items() if nodes} == {"cevae": ("t",), "hm": ("y2",), "srnn": ("x",),
                                                                 "vrnn": ("x",)}


@pytest.mark.parametrize("name", SPECS)
def test_sample_follows_module_device_and_dtype(name: str) -> None:
    """Fixed parameters of a root (the VAE's N(0, I) prior) and fresh noise follow the
    module: `meta` stands in for a GPU here, float64 for a non-default dtype."""
    ir_model = load(name)
    inputs = inputs_for(ir_model, 4, generator(11))
    meta = compile_model(ir_model).to("meta")
    trace = meta.sample(4, {k: v.to("meta") for k, v in inputs.items()})
    assert all(v.device.type == "meta" for v in trace.values.values())
    assert all(p.device.type == "meta" for ps in trace.params.values() for p in ps.values())
    double = compile_model(ir_model).double()
    trace = double.sample(4, {k: v.double() for k, v in inputs.items()})
    assert all(v.dtype == torch.float64 for v in trace.values.values())
    assert all(p.dtype == torch.float64 for ps in trace.params.values() for p in ps.values())


# -- 5. parameters are shared over time ----------------------------------------------------

def vrnn_with_steps(last: int) -> Model:
    """specs/vrnn.dgm over 1..last; the data and train statements go, since mnist1d's 40
    values per sequence no longer fit the steps."""
    text = (SPEC_DIR / "vrnn.dgm").read_text()
    text, n = re.subn(r"time t in 1\.\.40", f"time t in 1..{last}", text)
    assert n == 1
    text, n = re.subn(r"\n\s*(data|train) [^\n]*", "", text)
    assert n == 2
    return dgmc.loads(text)


@pytest.mark.parametrize("width", [None, 0.5])
def test_vrnn_parameter_count_does_not_depend_on_steps(width: float | None) -> None:
    long, short = compile_model(load("vrnn"), width), compile_model(vrnn_with_steps(10), width)
    assert (long.steps, short.steps) == (40, 10)
    assert long.parameter_counts() == short.parameter_counts()
    total = sum(c["model"] + c["guide"] for c in long.parameter_counts().values())
    assert total == sum(p.numel() for p in long.parameters())
    # the same weights, shape for shape; the short model is the long one's first 10 steps
    short.load_state_dict(long.state_dict())
    g = generator(12)
    noise = {"z": torch.randn(4, 40, 8, generator=g), "x": torch.randn(4, 40, 1, generator=g)}
    a = long.run(noise)
    b = short.run({k: v[:, :10] for k, v in noise.items()})
    for node in ("z", "x", "h"):
        assert b.values[node].shape[1] == 10
        torch.testing.assert_close(b.values[node], a.values[node][:, :10], rtol=0, atol=0)
