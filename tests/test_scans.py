"""Time as scans: reads of later steps (`g[t+1]`) and older ones (`h[t-2]`), backward
scans, sequence summaries (`h[T]`) and states the guide declares of its own.

The shipped smoothing models (specs/dmm.dgm, specs/srnn.dgm) and a reversed chain are held
to hand-written PyTorch references of their ELBO on the same weights and noise, written
here step by step with no use of dgmc (micrograd style); the schedule of scans is checked
on small graphs; the rules have golden bad specs (tests/bad/22, 23, 76-79).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import references as ref
import torch
from torch import Tensor

import dgmc
from dgmc.lower import compile_model
from dgmc.lower.module import CompiledModel

ROOT = Path(__file__).resolve().parents[1]
DTYPE = torch.float64
BATCH = 5


def compiled(text_or_name: str, seed: int = 0) -> CompiledModel:
    torch.manual_seed(seed)
    model = dgmc.load(ROOT / f"specs/{text_or_name}.dgm") if "{" not in text_or_name else dgmc.loads(text_or_name)
    module = compile_model(model).to(DTYPE)
    for p in module.parameters():  # learned initial values start at 0: make them count
        p.data.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()), dtype=DTYPE) * 0.1)
    return module


def normal_kl(q: ref.Params, p: ref.Params) -> Tensor:
    """KL(N(q) || N(p)), summed over the last dimension."""
    ratio = (q["scale"] / p["scale"]) ** 2
    return 0.5 * (ratio + ((q["loc"] - p["loc"]) / p["scale"]) ** 2 - 1 - torch.log(ratio)).sum(-1)


def largest_difference(generated: dict[str, Tensor], expected: dict[str, Tensor]) -> float:
    assert list(generated) == list(expected), (list(generated), list(expected))
    return max(float((generated[k] - expected[k]).detach().abs().max()) for k in expected)


def data_and_noise(module: CompiledModel, seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, module.steps, 1, generator=g, dtype=DTYPE)
    noise = {k: v.to(DTYPE) for k, v in module.draw(BATCH, g, guide=True).items()}
    return {"x": x}, noise


# -- the deep Markov model: a backward RNN in the guide ------------------------------------

def dmm_reference(module: CompiledModel, x: Tensor, noise: dict[str, Tensor]) -> dict[str, Tensor]:
    """specs/dmm.dgm by hand: g_t = GRU(x_t, g_{t+1}) from g_{T+1} = 0, run backward;
    z_0 ~ N(0, 1); q(z_t | z_{t-1}, g_t) forward; p(z_t | z_{t-1}) the gated transition;
    -ELBO = -sum_t log p(x_t | z_t) + sum_t KL(q(z_t | z_{t-1}, g_t) || p(z_t | z_{t-1}))."""
    hidden, z_size, steps = 64, 4, module.steps
    gru = ref.GRU.of(module.nets["p_g"], 1, hidden)
    combiner = ref.ReluMLP.of(module.nets["q_z"], z_size + hidden, 2 * z_size, depth=1)
    transition = gated_reference(module.nets["p_z"], z_size, hidden)
    emission = ref.ReluMLP.of(module.nets["p_x"], z_size, 2, depth=1)
    g = [None] * steps
    state = x.new_zeros(BATCH, hidden)
    for t in reversed(range(steps)):
        state = gru(x[:, t], state)
        g[t] = state
    z_prev = noise["z[0]"]  # the draw before the first step: N(0, 1) on its noise
    nll = kl = 0
    for t in range(steps):
        q = ref.normal_from_raw(combiner(torch.cat([z_prev, g[t]], -1)), z_size)
        z = ref.normal_sample(q, noise["z"][:, t])
        p = ref.normal_from_raw(transition(z_prev), z_size)
        nll = nll - ref.normal_log_density(x[:, t], ref.normal_from_raw(emission(z), 1))
        kl = kl + normal_kl(q, p)
        z_prev = z
    return {"nll[x]": nll, "kl[z]": kl}


def gated_reference(net: torch.nn.Module, z_size: int, hidden: int):
    """Krishnan et al.'s gated transition, written out from the module's weights:
    loc = (1 - g) * W u + g * h with g = sigmoid(mlp(u)) and h = mlp(u); the raw scale
    W' relu(h); returned as [loc, raw scale] like a network's output."""
    gate = ref.ReluMLP.of(net.gate, z_size, z_size, depth=1)
    proposal = ref.ReluMLP.of(net.proposal, z_size, z_size, depth=1)
    skip, scale = ref.Affine.of(net.skip, z_size, z_size), ref.Affine.of(net.scale, z_size, z_size)
    assert gate.hidden == proposal.hidden == (hidden,)

    def transition(u: Tensor) -> Tensor:
        g, h = torch.sigmoid(gate(u)), proposal(u)
        return torch.cat([(1 - g) * skip(u) + g * h, scale(torch.relu(h))], -1)

    return transition


def test_dmm_elbo_equals_the_hand_written_reference() -> None:
    module = compiled("dmm")
    data, noise = data_and_noise(module, 1)
    assert [b.direction for b in module.inference.blocks] == [0, -1, 1]  # z[0]; the backward RNN; the combiner
    generated = module.elbo_parts(data, None, noise)
    assert largest_difference(generated, dmm_reference(module, data["x"], noise)) < 1e-10


# -- the stochastic RNN: forward states, a smoothing guide over them ----------------------

def srnn_reference(module: CompiledModel, x: Tensor, noise: dict[str, Tensor]) -> dict[str, Tensor]:
    """specs/srnn.dgm by hand: d_t = GRU(x_{t-1}, d_{t-1}) (x_0 = d_0 = 0);
    a_t = GRU((d_t, x_t), a_{t+1}) backward (a_{T+1} = 0); q(z_t | z_{t-1}, a_t) with
    z_0 = 0; p(z_t | z_{t-1}, d_t), p(x_t | z_t, d_t)."""
    hidden, z_size, steps = 32, 4, module.steps
    forward = ref.GRU.of(module.nets["p_d"], 1, hidden)
    backward = ref.GRU.of(module.nets["p_a"], hidden + 1, hidden)
    guide = ref.ReluMLP.of(module.nets["q_z"], z_size + hidden, 2 * z_size, depth=1)
    prior = ref.ReluMLP.of(module.nets["p_z"], z_size + hidden, 2 * z_size, depth=1)
    emission = ref.ReluMLP.of(module.nets["p_x"], z_size + hidden, 2, depth=1)
    d, state, previous = [], x.new_zeros(BATCH, hidden), x.new_zeros(BATCH, 1)
    for t in range(steps):
        state = forward(previous, state)
        d.append(state)
        previous = x[:, t]
    a, state = [None] * steps, x.new_zeros(BATCH, hidden)
    for t in reversed(range(steps)):
        state = backward(torch.cat([d[t], x[:, t]], -1), state)
        a[t] = state
    z_prev, nll, kl = x.new_zeros(BATCH, z_size), 0, 0
    for t in range(steps):
        q = ref.normal_from_raw(guide(torch.cat([z_prev, a[t]], -1)), z_size)
        z = ref.normal_sample(q, noise["z"][:, t])
        p = ref.normal_from_raw(prior(torch.cat([z_prev, d[t]], -1)), z_size)
        nll = nll - ref.normal_log_density(x[:, t], ref.normal_from_raw(emission(torch.cat([z, d[t]], -1)), 1))
        kl = kl + normal_kl(q, p)
        z_prev = z
    return {"nll[x]": nll, "kl[z]": kl}


def test_srnn_elbo_equals_the_hand_written_reference() -> None:
    module = compiled("srnn")
    data, noise = data_and_noise(module, 2)
    assert [b.direction for b in module.inference.blocks] == [1, -1, 1]  # d; the backward RNN a; z
    generated = module.elbo_parts(data, None, noise)
    assert largest_difference(generated, srnn_reference(module, data["x"], noise)) < 1e-10


# -- a reversed chain: the model runs backward, the guide forward --------------------------

REVERSED = """
model reversed {
  time t in 1..6
  latent z[t] : Normal[2](scale = 0.5)
  observed x : Normal[2]
  init z = 0
  z[t+1] -> z[t] via mlp(8)  # the model's chain runs backward: p(z_t | z_{t+1}), z_7 = 0
  z[1] -> x via mlp(8)  # x is read off the chain's last value, z_1
  guide {
    x, z[t-1] -> z[t] via mlp(8)  # the guide runs forward: q(z_t | z_{t-1}, x), z_0 = 0
  }
}
"""


def reversed_reference(module: CompiledModel, x: Tensor, noise: dict[str, Tensor]) -> dict[str, Tensor]:
    """The reversed chain by hand. The model's parent of z_t, z_{t+1}, is drawn in the
    guide from z_t, so the term is the one-sample log q - log p, not the closed form."""
    steps = module.steps
    guide = ref.ReluMLP.of(module.nets["q_z"], 4, 4, depth=1)
    chain = ref.ReluMLP.of(module.nets["p_z"], 2, 2, depth=1)
    read = ref.ReluMLP.of(module.nets["p_x"], 2, 4, depth=1)
    z, q, previous = [], [], x.new_zeros(BATCH, 2)
    for t in range(steps):
        q.append(ref.normal_from_raw(guide(torch.cat([x, previous], -1)), 2))
        previous = ref.normal_sample(q[t], noise["z"][:, t])
        z.append(previous)
    term = 0
    for t in range(steps):
        after = z[t + 1] if t + 1 < steps else x.new_zeros(BATCH, 2)
        p = {"loc": chain(after), "scale": torch.full_like(z[t], 0.5)}
        term = term + ref.normal_log_density(z[t], q[t]) - ref.normal_log_density(z[t], p)
    return {"nll[x]": -ref.normal_log_density(x, ref.normal_from_raw(read(z[0]), 2)), "kl[z]": term}


def test_reversed_chain_elbo_equals_the_hand_written_reference() -> None:
    module = compiled(REVERSED)
    assert [b.direction for b in module.generative.blocks] == [-1, 0]  # the chain backward, then x
    assert [b.direction for b in module.inference.blocks] == [0, 1]
    g = torch.Generator().manual_seed(3)
    data = {"x": torch.randn(BATCH, 2, generator=g, dtype=DTYPE)}
    noise = {k: v.to(DTYPE) for k, v in module.draw(BATCH, g, guide=True).items()}
    generated = module.elbo_parts(data, None, noise)
    assert largest_difference(generated, reversed_reference(module, data["x"], noise)) < 1e-10


def test_a_backward_chain_samples_from_its_end() -> None:
    """Sampling the reversed chain: z_T from the value after the end, then down to z_1,
    and x from z_1; the trace holds every step in time order."""
    module = compiled(REVERSED)
    g = torch.Generator().manual_seed(4)
    noise = {k: v.to(DTYPE) for k, v in module.draw(BATCH, g).items()}
    trace = module.run(noise)
    chain = ref.ReluMLP.of(module.nets["p_z"], 2, 2, depth=1)
    after = torch.zeros(BATCH, 2, dtype=DTYPE)
    for t in reversed(range(module.steps)):
        expected = chain(after) + 0.5 * noise["z"][:, t]
        torch.testing.assert_close(trace.values["z"][:, t], expected, rtol=0, atol=1e-12)
        after = expected
    read = ref.ReluMLP.of(module.nets["p_x"], 2, 4, depth=1)
    loc = ref.normal_from_raw(read(trace.values["z"][:, 0]), 2)["loc"]
    torch.testing.assert_close(trace.params["x"]["loc"], loc, rtol=0, atol=1e-12)


# -- the schedule ----------------------------------------------------------------------------

def blocks(text: str, guide: bool = False) -> list[tuple[int, tuple[str, ...]]]:
    module = compile_model(dgmc.loads(text))
    walk = module.inference if guide else module.generative
    return [(b.direction, tuple(s.node for s in b.steps)) for b in walk.blocks]


HEAD = "model m { time t in 1..5 "


def test_groups_join_one_scan_while_their_directions_agree() -> None:
    # a forward chain and a free node that reads it: one forward scan
    assert blocks(HEAD + "latent a[t] : Normal[1] observed b[t] : Normal[1] init a = 0 a[t-1] -> a[t] "
                         "a[t] -> b[t] }") == [(1, ("a", "b"))]
    # a backward chain fed by a forward one: two scans, the forward first
    assert blocks(HEAD + "latent a[t] : Normal[1] latent c[t] : Normal[1] observed b[t] : Normal[1] "
                         "init a = 0 init c = 0 a[t-1] -> a[t] a[t], c[t+1] -> c[t] c[t] -> b[t] }") == \
        [(1, ("a",)), (-1, ("c", "b"))]
    # a static node that summarises a sequence comes after its scan; one read by every step, before
    assert blocks(HEAD + "latent s : Normal[1] latent a[t] : Normal[1] observed y : Normal[1] init a = 0 "
                         "s, a[t-2] -> a[t] a[5] -> y }") == [(0, ("s",)), (1, ("a",)), (0, ("y",))]


def test_a_node_two_steps_back_reads_the_value_before_the_sequence() -> None:
    module = compiled(HEAD + "latent a[t] : Normal[1](scale = 1) init a = learned a[t-2] -> a[t] via linear "
                             "observed b : Normal[1] a[5] -> b }")
    g = torch.Generator().manual_seed(5)
    noise = {k: v.to(DTYPE) for k, v in module.draw(BATCH, g).items()}
    trace = module.run(noise)
    weight, bias = module.nets["p_a"].weight, module.nets["p_a"].bias
    before = module.inits["a"].expand(BATCH, -1)
    values: list[Tensor] = []
    for t in range(5):
        older = values[t - 2] if t >= 2 else before
        values.append(older @ weight.T + bias + noise["a"][:, t])
    torch.testing.assert_close(trace.values["a"], torch.stack(values, 1), rtol=0, atol=1e-12)


# -- states the guide declares ------------------------------------------------------------------

def test_a_guide_state_is_the_guides_alone() -> None:
    """The backward RNN of specs/dmm.dgm is not part of the model: sampling does not run
    it, its parameters are the guide's (trained and distilled with it), and the model
    cannot read it."""
    module = compiled("dmm")
    assert "g" not in {s.node for s in module.generative.steps}
    assert "g" in module.guide_states
    guide = {id(p) for p in module.guide_parameters()}
    assert all(id(p) in guide for p in module.nets["p_g"].parameters())
    with pytest.raises(dgmc.DgmError, match="the model cannot read it"):
        dgmc.loads((ROOT / "specs/dmm.dgm").read_text().replace("z[t] -> x[t]", "z[t], g[t] -> x[t]"))


# -- the shipped smoothing models run end to end ---------------------------------------------

def test_wake_sleep_trains_a_smoothing_model() -> None:
    """Wake-sleep follows the same scans: its terms on specs/dmm.dgm equal the reference
    interpreter's, bit for bit, and a few steps lower them."""
    from dgmc.training.objectives import _wake_sleep_parts

    model = dgmc.load(ROOT / "specs/dmm.dgm")
    torch.manual_seed(0)
    module = compile_model(model)
    data = {"x": torch.randn(8, module.steps, 1, generator=torch.Generator().manual_seed(0))}
    generated = _wake_sleep_parts(module, data, torch.Generator().manual_seed(1))
    module.interpret = True
    interpreted = _wake_sleep_parts(module, data, torch.Generator().manual_seed(1))
    for key, value in generated.items():
        torch.testing.assert_close(value, interpreted[key], rtol=0, atol=0)


GLOBAL = """
model global_style {
  time t in 1..6
  latent c : Normal[2](loc = 0, scale = 1)  # one style for the whole sequence
  latent z[t] : Normal[2]
  observed x[t] : Normal[1]
  init z = 0
  c, z[t-1] -> z[t] via mlp(8)
  z[t] -> x[t] via mlp(8)
  guide {
    deterministic g[t] : Real[4]  # a backward RNN: g_1 has read the whole sequence
    init g = 0
    x[t], g[t+1] -> g[t] via gru
    g[1] -> c via mlp(8)  # the style inferred from the sequence's summary
    c, z[t-1], g[t] -> z[t] via mlp(8)
  }
}
"""


def test_a_global_latent_is_inferred_from_a_sequence_summary() -> None:
    """A static latent's guide reads the first step of a backward state (its summary of the
    whole sequence): inference runs the backward scan, then the static step, then the
    forward scan, and the generated passes equal the interpreter bit for bit."""
    from test_generate import check_distillation, check_every_pass, check_objectives

    model = dgmc.loads(GLOBAL)
    module = compile_model(model)
    assert [(b.direction, tuple(s.node for s in b.steps)) for b in module.inference.blocks] == \
        [(-1, ("x", "g")), (0, ("c",)), (1, ("z",))]
    check_every_pass(model, 0.5)
    check_objectives(model, None)
    check_distillation(model, 0.5)


def test_a_gated_transition_needs_a_loc_and_a_scale() -> None:
    """`gated` computes a Normal node's loc and scale: into a Bernoulli node (one parameter
    of three values) it is refused at the edge."""
    text = HEAD + "latent a[t] : Normal[3] observed b[t] : Bernoulli[3] init a = 0 a[t-1] -> a[t] via gated(8) " \
                  "a[t] -> b[t] via gated(8) }"
    with pytest.raises(dgmc.DgmError, match="gated transition computes a loc and a scale"):
        dgmc.loads(text)
