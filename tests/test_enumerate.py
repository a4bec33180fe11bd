"""Discrete latents summed out of the ELBO (`train elbo(enumerate = [...])`), held to
hand-written sums over their values on the same weights and noise.

- Summed out of the model (no guide): with every latent summed out the ELBO is the exact
  log-likelihood, log sum_c p(c) p(x | c), and equals the exact enumerator's.
- Summed under the guide: sum_c q(c | x) [log p(x, z_c | c) - log q(z_c | x, c) + log p(c)
  - log q(c | x)], the continuous z drawn on the same guide noise for every c.
- Both at once: sum_c q(c | x) log sum_d exp(...), d summed out of the model.
Each runs the generated code and the reference interpreter; the returned terms add up
to the bound, and their gradient is the bound's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch.distributions import Normal, kl_divergence

import dgmc
from dgmc.cli import main
from dgmc.datasets import load_split
from dgmc.losses.elbo import latent_terms
from dgmc.lower import compile_model
from dgmc.training.objectives import _elbo_parts, elbo, negative_elbo

ROOT = Path(__file__).resolve().parents[1]

MIXTURE = """
model mix {
  data old_faithful(standardize) { x = [eruptions, waiting] }
  latent c : Categorical[3]
  observed x : Normal[2]
  c -> x via mlp(8)
  train elbo(steps = 10, batch = 16, lr = 1e-2, enumerate = [c])
}
"""

GMVAE = """
model gm {
  data old_faithful(standardize) { x = [eruptions, waiting] }
  latent c : Categorical[3](logits = 0)
  latent z : Normal[2]
  observed x : Normal[2]
  c -> z via linear
  z -> x via mlp(8)
  guide {
    x -> c via mlp(8)
    x, c -> z via mlp(8)
  }
  train elbo(steps = 10, batch = 16, lr = 1e-2, enumerate = [c])
}
"""

BOTH = """
model both {
  data old_faithful(standardize) { x = [eruptions, waiting] }
  latent c : Categorical[3]
  latent d : Bernoulli[2]
  latent z : Normal[2](loc = 0, scale = 1)
  observed x : Normal[2]
  c, d, z -> x via mlp(8)
  guide {
    x -> c via mlp(8)
    x, c -> z via mlp(8)
  }
  train elbo(steps = 10, batch = 16, lr = 1e-2, enumerate = [c, d])
}
"""


def _module(text: str, interpret: bool) -> dgmc.lower.CompiledModel:
    torch.manual_seed(0)
    module = compile_model(dgmc.loads(text))
    module.interpret = interpret
    return module


def _x(rows: int = 5) -> torch.Tensor:
    return torch.randn(rows, 2, generator=torch.Generator().manual_seed(1))


def _bound(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    return -sum(parts.values())


def _onehot(k: int, size: int, rows: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.full((rows,), k), size).float()


@pytest.mark.parametrize("interpret", [False, True])
def test_summed_out_of_the_model_is_the_exact_likelihood(interpret: bool) -> None:
    module, x = _module(MIXTURE, interpret), _x()
    joint = []
    for k in range(3):
        p = module.run({}, given={"x": x, "c": _onehot(k, 3, len(x))})
        log_prior = torch.log_softmax(p.params["c"]["logits"], -1)[:, k]
        joint.append(log_prior + Normal(p.params["x"]["loc"], p.params["x"]["scale"]).log_prob(x).sum(-1))
    expected = torch.logsumexp(torch.stack(joint), 0)
    got = _bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2)))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, dgmc.log_likelihood(module, {"x": x}), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interpret", [False, True])
def test_summed_under_the_guide(interpret: bool) -> None:
    module, x = _module(GMVAE, interpret), _x()
    noise = module.draw(len(x), torch.Generator().manual_seed(2), guide=True)  # what the objective draws
    bound = torch.zeros(len(x))
    for k in range(3):
        c = _onehot(k, 3, len(x))
        q = module.infer({"x": x, "c": c}, noise)
        p = module.run({}, given={"x": x, "c": c, "z": q.values["z"]})
        log_q_c = torch.log_softmax(q.params["c"]["logits"], -1)[:, k]
        log_p_c = torch.log_softmax(p.params["c"]["logits"], -1)[:, k]
        q_z = Normal(q.params["z"]["loc"], q.params["z"]["scale"])
        p_z = Normal(p.params["z"]["loc"], p.params["z"]["scale"])
        log_x = Normal(p.params["x"]["loc"], p.params["x"]["scale"]).log_prob(x).sum(-1)
        inner = log_x - kl_divergence(q_z, p_z).sum(-1) + log_p_c - log_q_c
        bound = bound + log_q_c.exp() * inner
    got = _bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2)))
    torch.testing.assert_close(got, bound, rtol=1e-5, atol=1e-5)
    assert torch.allclose(p.params["c"]["logits"], torch.zeros(3))  # the fixed uniform prior


@pytest.mark.parametrize("interpret", [False, True])
def test_guided_and_model_sums_together(interpret: bool) -> None:
    module, x = _module(BOTH, interpret), _x()
    noise = module.draw(len(x), torch.Generator().manual_seed(2), guide=True)
    bits = module.families["d"].support(2)
    bound = torch.zeros(len(x))
    for k in range(3):
        c = _onehot(k, 3, len(x))
        q = module.infer({"x": x, "c": c, "d": bits[0].expand(len(x), 2)}, noise)  # the guide reads no d
        log_q_c = torch.log_softmax(q.params["c"]["logits"], -1)[:, k]
        inner = []
        for d in bits:
            p = module.run({}, given={"x": x, "c": c, "z": q.values["z"], "d": d.expand(len(x), 2)})
            log_p = (torch.log_softmax(p.params["c"]["logits"], -1)[:, k]
                     + torch.distributions.Bernoulli(logits=p.params["d"]["logits"]).log_prob(d).sum(-1)
                     + Normal(p.params["x"]["loc"], p.params["x"]["scale"]).log_prob(x).sum(-1)
                     - kl_divergence(Normal(q.params["z"]["loc"], q.params["z"]["scale"]), Normal(0.0, 1.0)).sum(-1))
            inner.append(log_p - log_q_c)
        bound = bound + log_q_c.exp() * torch.logsumexp(torch.stack(inner), 0)
    got = _bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2)))
    torch.testing.assert_close(got, bound, rtol=1e-5, atol=1e-5)


def test_the_terms_train_the_bound() -> None:
    """The logged terms add up to the loss, and the loss's gradient is the bound's."""
    module, x = _module(BOTH, False), _x()
    loss, terms = elbo(module, {"x": x}, torch.Generator().manual_seed(2))
    grads = torch.autograd.grad(loss, list(module.parameters()), allow_unused=True)
    direct = -_bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2))).mean()
    expected = torch.autograd.grad(direct, list(module.parameters()), allow_unused=True)
    torch.testing.assert_close(loss, direct)
    torch.testing.assert_close(terms["-elbo"], loss.detach())
    for got, want in zip(grads, expected, strict=True):
        if want is not None:
            torch.testing.assert_close(got, want)


def test_summing_out_trains_and_distills(tmp_path) -> None:
    """A run with a summed-out latent: the teacher learns, the students distill, and the
    mixture's reported -ELBO is its exact negative log-likelihood."""
    spec = tmp_path / "mix.dgm"
    spec.write_text(MIXTURE.rstrip()[:-1] + "  distill(width = 0.5, method = [ours], seed = 0, steps = 5)\n}\n")
    assert main(["run", str(spec), "--quick", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    teacher = json.loads((tmp_path / "run" / "teacher" / "teacher.json").read_text())["metrics"]
    assert teacher["test_objective"] == pytest.approx(teacher["test_exact_nll"], rel=1e-5)


def test_the_shipped_mixture_vae_sums_what_the_guide_samples() -> None:
    """specs/gmvae.dgm: the ELBO with c summed out under q(c | x) has the expectation of
    the one-sample ELBO with c drawn from the guide, log p(x, c, z) - log q(c, z | x)."""
    torch.manual_seed(0)
    module = compile_model(dgmc.load(ROOT / "specs" / "gmvae.dgm"))
    rows = 4096
    with torch.no_grad():
        x = module.sample(rows, generator=torch.Generator().manual_seed(1)).values["x"]
        summed = _bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2)))
        q = module.infer({"x": x}, generator=torch.Generator().manual_seed(3))
        p = module.run({}, given=q.values)
        sampled = sum(module.log_prob(n, p) for n in ("x", "c", "z")) - sum(module.log_prob(n, q) for n in ("c", "z"))
    difference = summed.mean() - sampled.mean()
    error = (summed.var() / rows + sampled.var() / rows).sqrt()
    assert abs(float(difference)) <= 5 * float(error), f"{difference:.4g} +- {error:.2g}"
    assert float(summed.var()) < float(sampled.var())  # summing c out removes its share of the noise


def test_checkpoints_made_before_keep_loading() -> None:
    """The shipped specs, and a root Categorical with learned logits, hash as they did
    before `enumerate` and a Categorical's fixable probabilities existed
    (tests/golden/checkpoint_hashes.json, written by the commits before them), so their
    teachers and students still load."""
    from dgmc.training.checkpoint import spec_hash

    golden = json.loads((ROOT / "tests" / "golden" / "checkpoint_hashes.json").read_text())
    for name, hashes in golden.items():
        model = dgmc.load(ROOT / f"{name}.dgm")
        assert {"teacher": spec_hash(model), "student x0.25": spec_hash(model, 0.25)} == hashes, name


@st.composite
def summed_specs(draw) -> tuple[str, list[str], list[str]]:
    """A small model with one to three discrete latents summed out, each with a guide
    or none, a Normal latent z with a guide, and an observed x; random edges among them."""
    count = draw(st.integers(1, 3))
    names = [f"c{i}" for i in range(count)]
    types = [draw(st.sampled_from(["Bernoulli[1]", "Bernoulli[2]", "Categorical[2]", "Categorical[3]"])) for _ in names]
    guided = [n for n in names if draw(st.booleans())]
    lines = [f"  latent {n} : {t}" for n, t in zip(names, types, strict=True)]
    lines += ["  latent z : Normal[2]", "  observed x : Normal[2]"]
    for i, n in enumerate(names):
        parents = [p for p in names[:i] if draw(st.booleans())]
        if parents:
            lines.append(f"  {', '.join(parents)} -> {n} via mlp(4)")
    z_parents = [n for n in names if draw(st.booleans())]
    if z_parents:
        lines.append(f"  {', '.join(z_parents)} -> z via mlp(4)")
    x_parents = ["z"] + [n for n in names if draw(st.booleans())]
    lines.append(f"  {', '.join(x_parents)} -> x via mlp(4)")
    guide = []
    for i, n in enumerate(guided):
        reads = ["x"] + [p for p in guided[:i] if draw(st.booleans())]
        guide.append(f"    {', '.join(reads)} -> {n} via mlp(4)")
    reads = ["x"] + [n for n in guided if draw(st.booleans())]
    guide.append(f"    {', '.join(reads)} -> z via mlp(4)")
    text = ("model random {\n  data old_faithful(standardize) { x = [eruptions, waiting] }\n" + "\n".join(lines)
            + "\n  guide {\n" + "\n".join(guide) + "\n  }\n"
            + f"  train elbo(steps = 10, enumerate = [{', '.join(names)}])\n}}\n")
    return text, guided, [n for n in names if n not in guided]


def _brute_force(module, x: torch.Tensor, guided: list[str], outside: list[str], noise,
                 given: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """sum_g q(g | x) log sum_m exp(log p(x, z, g, m) - log q(z, g | x)), every joint value
    written out, z on the same guide noise. With `given` (a guided latent's value per row,
    NaN where missing), a row holding a latent's value weighs only that value, with weight 1
    and no log q for it: the latent is observed there."""
    supports = {n: module.families[n].support(module.ir.node(n).size) for n in guided + outside}
    rows = len(x)

    def values(names: list[str]) -> list[dict[str, torch.Tensor]]:
        combos = [{}]
        for n in names:
            combos = [{**c, n: v.expand(rows, -1)} for c in combos for v in supports[n]]
        return combos

    given = given or {}
    there = {n: ~torch.isnan(v).any(-1) for n, v in given.items()}
    total = torch.zeros(rows)
    for g in values(guided):
        inner = []
        for m in values(outside):
            q = module.infer({"x": x, **g, **m}, noise)
            p = module.run({}, given={**q.values, **m})
            log_p = sum(module.log_prob(n, p) for n in ("x", *g, *m))
            log_q = sum((torch.where(there[n], 0, module.log_prob(n, q)) if n in there else module.log_prob(n, q)
                         for n in g), torch.zeros(rows))
            inner.append(log_p - log_q - _z_term(module, q, p))
        weight = torch.ones(rows)
        for n in g:
            q_n = module.log_prob(n, q).exp()
            weight = weight * (torch.where(there[n], (g[n] == given[n]).all(-1).float(), q_n) if n in there else q_n)
        total = total + weight * torch.logsumexp(torch.stack(inner), 0)
    return total


def _z_term(module, q, p) -> torch.Tensor:
    """z's term as the ELBO scores it (`losses.elbo`): KL(q || p) in closed form where the
    guide draws none of z's parents from z, else log q - log p on the sample."""
    if latent_terms(module.ir)["z"].closed:
        return kl_divergence(Normal(q.params["z"]["loc"], q.params["z"]["scale"]),
                             Normal(p.params["z"]["loc"], p.params["z"]["scale"])).sum(-1)
    return module.log_prob("z", q) - module.log_prob("z", p)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summed_specs(), st.booleans())
def test_random_sums_match_the_joint_values_written_out(case: tuple[str, list[str], list[str]],
                                                         interpret: bool) -> None:
    text, guided, outside = case
    module, x = _module(text, interpret), _x(4)
    noise = module.draw(len(x), torch.Generator().manual_seed(2), guide=True)
    with torch.no_grad():
        got = _bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2)))
        expected = _brute_force(module, x, guided, outside, noise)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(summed_specs(), st.integers(0, 2 ** 16), st.booleans())
def test_random_sums_with_values_given_in_some_rows(case: tuple[str, list[str], list[str]], seed: int,
                                                    interpret: bool) -> None:
    """Guided latents bound to data (M2's labels), each present in some rows and missing
    (NaN) in others: the summed ELBO against the joint values written out, the present
    values observed; and the classification terms are -log q of the present values."""
    text, guided, outside = case
    assume(guided)
    module, x = _module(text, interpret), _x(6)
    g = torch.Generator().manual_seed(seed)
    given = {}
    for name in guided:
        support = module.families[name].support(module.ir.node(name).size)
        value = support[torch.randint(len(support), (6,), generator=g)].clone()
        value[torch.rand(6, generator=g) < 0.5] = math.nan
        given[name] = value
    noise = module.draw(len(x), torch.Generator().manual_seed(2), guide=True)
    with torch.no_grad():
        parts = _elbo_parts(module, {"x": x, **given}, torch.Generator().manual_seed(2))
        expected = _brute_force(module, x, guided, outside, noise, given)
    torch.testing.assert_close(_bound({k: v for k, v in parts.items() if not k.startswith("class[")}), expected,
                               rtol=1e-4, atol=1e-4)
    for name in guided:
        there = ~torch.isnan(given[name]).any(-1)
        assert (parts[f"class[{name}]"][~there] == 0).all()
        assert (parts[f"class[{name}]"][there] >= 0).all()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.nested_given])
@given(summed_specs())
def test_random_summed_specs_replay_and_distill(case: tuple[str, list[str], list[str]]) -> None:
    """Random specs with summed latents run the generated passes, objectives and
    distillation losses equal to the interpreter, bit for bit (`test_generate`'s checks)."""
    from test_generate import check_distillation, check_every_pass, check_objectives

    model = dgmc.loads(case[0])
    check_every_pass(model, 0.5)
    check_objectives(model, None)
    check_distillation(model, 0.5)


CHAIN = """
model hmm {
  time t in 1..3
  data file { x = [x1, x2, x3], y = y1 }
  latent s[t] : Categorical[3]
  latent z : Normal[1](loc = 0, scale = 1)
  observed x[t] : Normal[1]
  observed y : Normal[1]
  INIT
  s[t-1] -> s[t] via mlp(4)
  s[t], z -> x[t] via mlp(4)
  z -> y via linear
  guide {
    y -> z via mlp(4)
  }
  train elbo(steps = 10, enumerate = [s])
}
"""
"""An HMM with neural transitions and emissions beside a continuous latent z (which the
emissions read), its state before the first step drawn (`init s ~`) or fixed."""


def _paths(steps: int, values: int) -> list[tuple[int, ...]]:
    paths = [()]
    for _ in range(steps):
        paths = [(*path, k) for path in paths for k in range(values)]
    return paths


@pytest.mark.parametrize("init", ["init s ~ Categorical()", "init s = 0"])
@pytest.mark.parametrize("interpret", [False, True])
def test_a_chain_summed_out_is_the_sum_over_every_path(init: str, interpret: bool) -> None:
    """log sum over all 3**4 paths (3**3 with a fixed start) of p(path) p(x | path, z),
    each path run through the model, against the forward algorithm's; z's terms as the
    sampled ELBO scores them."""
    module = _module(CHAIN.replace("INIT", init), interpret)
    rows, drawn = 4, init.startswith("init s ~")
    x, y = torch.randn(rows, 3, 1, generator=torch.Generator().manual_seed(1)), _x(rows)[:, :1]
    noise = module.draw(rows, torch.Generator().manual_seed(2), guide=True)
    with torch.no_grad():
        got = _bound(_elbo_parts(module, {"x": x, "y": y}, torch.Generator().manual_seed(2)))
        q = module.infer({"x": x, "y": y, "s": torch.eye(3)[0].expand(rows, 3, 3)}, noise)  # the guide reads no s
        joint = []
        for path in _paths(3 + drawn, 3):
            values = torch.eye(3)[list(path)]
            given = {"x": x, "y": y, "z": q.values["z"], "s": values[-3:].expand(rows, 3, 3)}
            if drawn:
                given["s[0]"] = values[0].expand(rows, 3)
            p = module.run({}, given=given)
            start = module.log_prob("s[0]", p) if drawn else 0
            joint.append(module.log_prob("s", p) + module.log_prob("x", p) + start)
        z_term = kl_divergence(Normal(q.params["z"]["loc"], q.params["z"]["scale"]), Normal(0.0, 1.0)).sum(-1)
        expected = torch.logsumexp(torch.stack(joint), 0) + module.log_prob("y", p) - z_term
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_a_summed_chain_trains(tmp_path) -> None:
    """Training an HMM on mnist1d sequences: the teacher's -ELBO falls (the shipped
    specs/hmm.dgm is run and distilled below)."""
    spec = tmp_path / "hmm.dgm"
    spec.write_text("""
model hmm {
  time t in 1..40
  data mnist1d(standardize) { x = signal }
  latent s[t] : Categorical[3]
  observed x[t] : Normal[1]
  init s ~ Categorical()
  s[t-1] -> s[t] via linear
  s[t] -> x[t] via mlp(8)
  train elbo(steps = 30, batch = 64, lr = 3e-2, enumerate = [s])
  distill(width = 0.5, method = [ours], seed = 0, steps = 5)
}
""")
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    trained = json.loads((tmp_path / "run" / "teacher.json").read_text())["metrics"]
    torch.manual_seed(0)
    untrained = compile_model(dgmc.load(spec))
    test = load_split(untrained.ir).test
    assert trained["test_objective"] < negative_elbo(untrained, test, torch.Generator().manual_seed(0)) - 1.0


@pytest.mark.parametrize("interpret", [False, True])
def test_fixed_probabilities_per_class_and_per_dimension(interpret: bool) -> None:
    """`probs = [0.2, 0.3, 0.5]` on a Categorical root and `[0.1, 0.9]` on a Bernoulli's
    two dimensions: samples follow them, and the summed-out ELBO holds them as its prior."""
    module = _module((ROOT / "tests" / "good" / "fixed_probs.dgm").read_text(), interpret)
    with torch.no_grad():
        sample = module.sample(40000, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(sample.values["c"].mean(0), torch.tensor([0.2, 0.3, 0.5]), atol=0.01, rtol=0)
        torch.testing.assert_close(sample.values["b"].mean(0), torch.tensor([0.1, 0.9]), atol=0.01, rtol=0)
        x = _x()
        got = _bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2)))
    torch.testing.assert_close(got, dgmc.log_likelihood(module, {"x": x}), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interpret", [False, True])
def test_a_probability_fixed_to_zero(interpret: bool) -> None:
    """A class of probability 0 (logits -inf in the generated code too) adds nothing to
    the sum over values: the ELBO stays finite, its gradient too, and it is the exact
    log-likelihood."""
    text = MIXTURE.replace("latent c : Categorical[3]", "latent c : Categorical[3](probs = [0.5, 0.5, 0])")
    module, x = _module(text, interpret), _x()
    loss, _ = elbo(module, {"x": x}, torch.Generator().manual_seed(2))
    grads = torch.autograd.grad(loss, [p for p in module.parameters() if p.requires_grad])
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
    with torch.no_grad():
        got = _bound(_elbo_parts(module, {"x": x}, torch.Generator().manual_seed(2)))
    torch.testing.assert_close(got, dgmc.log_likelihood(module, {"x": x}), rtol=1e-5, atol=1e-5)


def test_a_chain_nothing_observes_sums_to_one() -> None:
    """Every path of a chain no observed node reads sums to probability 1: its term is 0."""
    text = CHAIN.replace("INIT", "init s ~ Categorical()").replace("s[t], z -> x[t]", "z -> x[t]")
    module = _module(text, False)
    x, y = torch.randn(4, 3, 1), _x(4)[:, :1]
    with torch.no_grad():
        parts = _elbo_parts(module, {"x": x, "y": y}, torch.Generator().manual_seed(2))
    torch.testing.assert_close(parts["sum[s]"], torch.zeros(4), atol=1e-6, rtol=0)
