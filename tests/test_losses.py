"""The distillation losses (dgmc.losses, dgmc.distillation) against torch and against hand
computations:

1. every registered divergence against torch.distributions / torch.nn.functional, >= 0,
   0 for equal parameters (bce: the teacher's entropy), and the registry complete;
2. a student that is an exact copy of the teacher scores 0 on every term of every shipped
   spec (bce terms: the teacher's entropy), for methods ours and local;
3. no latents (specs/classifier.dgm): the generated loss is vanilla KD;
4. the upper bound L_sd >= KL(p_T(y) || p_S(y)) on random linear-Gaussian DAGs, where
   both sides have closed forms;
5. with Bernoulli latents (specs/hm.dgm) L_sd passes no gradient to the latents' networks,
   and the latent terms do;
6. the generated HM loss is the authors' HM loss, computed by hand;
7. `dgmc compile --emit losses` lists one term per node.

docs/METHOD.md describes the method."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import references as ref
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.distributions import (
    Bernoulli,
    Laplace,
    MultivariateNormal,
    Normal,
    OneHotCategorical,
    kl_divergence,
)

import dgmc
from dgmc.cli import main
from dgmc.datasets import load_split
from dgmc.distillation.distill import distillation_loss, term_values
from dgmc.families import FAMILIES
from dgmc.ir import Model
from dgmc.losses import DIVERGENCES, describe, divergence, generate, reduce
from dgmc.lower import CompiledModel, compile_model

SPEC_DIR = Path(__file__).resolve().parent.parent / "specs"
SPECS = sorted(p.stem for p in SPEC_DIR.glob("*.dgm"))
DTYPE = torch.float64
"""Everything runs in double precision: the Bernoulli thresholds 1[u < sigmoid(logits)]
never flip on a rounding difference, and closed forms agree to ~1e-12."""
ROUNDING = 1e-12


def load(name: str) -> Model:
    return dgmc.load(SPEC_DIR / f"{name}.dgm")


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def close(actual: Tensor, expected: Tensor, what: str, atol: float = 1e-10, rtol: float = 1e-10) -> None:
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


# -- 1. the divergences against torch --------------------------------------------------

ROWS, SIZE = 3, 4


def _tensor(values: list[float], shape: tuple[int, ...]) -> Tensor:
    return torch.tensor(values, dtype=DTYPE).reshape(shape)


def _params(family: str) -> st.SearchStrategy[dict[str, Tensor]]:
    """One parameter set [ROWS, SIZE] of `family` (Categorical: SIZE classes), in ranges
    where the closed forms are well conditioned."""
    n = ROWS * SIZE
    locs = st.lists(st.floats(-5, 5), min_size=n, max_size=n)
    scales = st.lists(st.floats(0.05, 5), min_size=n, max_size=n)
    logits = st.lists(st.floats(-8, 8), min_size=n, max_size=n)
    shape = (ROWS, SIZE)
    if family in ("Normal", "Laplace"):
        return st.builds(lambda a, b: {"loc": _tensor(a, shape), "scale": _tensor(b, shape)}, locs, scales)
    return logits.map(lambda a: {"logits": _tensor(a, shape)})


def _base(family: str, params: dict[str, Tensor]):
    """torch's distribution: per dimension for the factorized families, per event for
    Categorical."""
    if family == "Normal":
        return Normal(params["loc"], params["scale"])
    if family == "Laplace":
        return Laplace(params["loc"], params["scale"])
    if family == "Bernoulli":
        return Bernoulli(logits=params["logits"])
    return OneHotCategorical(logits=params["logits"])


CLOSED = ["Normal", "Laplace", "Bernoulli", "Categorical"]
"""The families whose closed forms dgmc writes out (the others use torch's, or estimates:
tests/test_families.py walks them all)."""


def _div(name: str, family: str, t: dict[str, Tensor], s: dict[str, Tensor]) -> Tensor:
    return divergence(FAMILIES[family], name, t, s, None)


def test_every_family_names_only_registered_divergences() -> None:
    for family in FAMILIES.values():
        assert set(family.divergences) <= set(DIVERGENCES), family.name
        assert set(family.closed) <= set(family.divergences), family.name


@pytest.mark.parametrize("family", CLOSED)
@settings(max_examples=30, deadline=None, derandomize=True)
@given(data=st.data())
def test_divergences_against_torch(family: str, data: st.DataObject) -> None:
    t = data.draw(_params(family), label="teacher")
    s = data.draw(_params(family), label="student")
    kl = _div("kl", family, t, s)
    expected = kl_divergence(_base(family, t), _base(family, s))
    assert expected.shape == ((ROWS,) if family == "Categorical" else (ROWS, SIZE))
    close(kl, expected, f"kl {family}", atol=1e-9, rtol=1e-9)
    close(_div("reverse_kl", family, t, s), _div("kl", family, s, t), f"reverse_kl {family}", atol=0, rtol=0)
    close(_div("reverse_kl", family, t, s), kl_divergence(_base(family, s), _base(family, t)),
          f"reverse_kl {family} by torch", atol=1e-9, rtol=1e-9)
    mse = sum((t[k] - s[k]) ** 2 for k in t)
    close(_div("mse", family, t, s), mse, f"mse {family}", atol=0, rtol=0)
    if family == "Normal":
        w2 = (t["loc"] - s["loc"]) ** 2 + (t["scale"] - s["scale"]) ** 2
        close(_div("w2", family, t, s), w2, "w2 Normal", atol=0, rtol=0)
    if family == "Bernoulli":
        bce = _div("bce", family, t, s)
        by_torch = F.binary_cross_entropy_with_logits(s["logits"], torch.sigmoid(t["logits"]), reduction="none")
        close(bce, by_torch, "bce against torch")
        close(bce, expected + Bernoulli(logits=t["logits"]).entropy(), "bce = kl + teacher entropy", atol=1e-9,
              rtol=1e-9)
    for name in FAMILIES[family].divergences:
        value = _div(name, family, t, s)
        assert torch.isfinite(value).all(), (name, family)
        assert (value >= -ROUNDING).all(), (name, family, value.min())


@pytest.mark.parametrize("family", CLOSED)
@settings(max_examples=20, deadline=None, derandomize=True)
@given(data=st.data())
def test_divergences_vanish_on_equal_parameters(family: str, data: st.DataObject) -> None:
    t = data.draw(_params(family), label="teacher")
    s = {k: v.clone() for k, v in t.items()}
    for name in FAMILIES[family].divergences:
        value = _div(name, family, t, s)
        if name == "bce":  # the cross-entropy of p with itself is p's entropy
            close(value, Bernoulli(logits=t["logits"]).entropy(), "bce(p, p)")
        else:
            assert value.abs().max() <= ROUNDING, (name, family, value)


def test_reduce() -> None:
    values = torch.arange(2 * 3 * 4, dtype=DTYPE).reshape(2, 3, 4)  # [batch, steps, size]
    assert reduce(values, "sum", event=False) == values.sum((1, 2)).mean()
    assert reduce(values, "mean", event=False) == values.mean(-1).sum(-1).mean()
    assert reduce(values[:, 0], "sum", event=False) == values[:, 0].sum(-1).mean()
    assert reduce(values[:, :, 0], "sum", event=True) == values[:, :, 0].sum(-1).mean()  # per event, timed
    assert reduce(values[:, 0, 0], "sum", event=True) == values[:, 0, 0].mean()  # per event, static


# -- 2. an exact copy scores zero ----------------------------------------------------------

@functools.cache
def _train_inputs(name: str) -> dict[str, Tensor]:
    model = load(name)
    inputs = {n.name for n in model.of_kind("input")}
    if not inputs:
        return {}
    return {k: v for k, v in load_split(model).train.items() if k in inputs}


def inputs_of(name: str, batch: int) -> dict[str, Tensor]:
    """The first `batch` training rows of the spec's input nodes (none for most specs)."""
    return {k: v[:batch].to(DTYPE) for k, v in _train_inputs(name).items()}


def teacher_of(model: Model, seed: int = 0) -> CompiledModel:
    torch.manual_seed(seed)
    teacher = compile_model(model).to(DTYPE)
    with torch.no_grad():  # no root at a fair coin or a zero mean by construction
        for p in teacher.free.values():
            p.add_(torch.randn(p.shape, dtype=DTYPE))
    return teacher


def copy_of(model: Model, teacher: CompiledModel) -> CompiledModel:
    student = compile_model(model, width=1.0).to(DTYPE)
    shapes = {k: v.shape for k, v in student.state_dict().items()}
    assert shapes == {k: v.shape for k, v in teacher.state_dict().items()}, "width 1.0 changes a shape"
    student.load_state_dict(teacher.state_dict())
    return student


def teacher_entropy(params: dict[str, Tensor]) -> Tensor:
    """Bernoulli entropy summed over dimensions (and time steps), averaged over the batch."""
    entropy = Bernoulli(logits=params["logits"].detach()).entropy()
    return entropy.reshape(entropy.shape[0], -1).sum(-1).mean()


@pytest.mark.parametrize("method", ["ours", "local"])
@pytest.mark.parametrize("name", SPECS)
def test_exact_copy_scores_zero(name: str, method: str) -> None:
    model = load(name)
    teacher = teacher_of(model)
    student = copy_of(model, teacher)
    terms = generate(model, method)
    learned_initials = {model.initial_name(n.name) for n in model.initials() if "learned" in n.initial.values()}
    assert {t.node for t in terms} == {n.name for n in model.of_kind("latent", "observed")} | learned_initials
    batch = 16
    inputs = inputs_of(name, batch)
    loss, logged = distillation_loss(teacher, student, terms, method, batch, inputs, generator(5))
    with torch.no_grad():  # the same teacher draw as inside distillation_loss
        trace = teacher.sample(batch, inputs, generator(5))
    expected_loss = 0.0
    for term in terms:
        value = logged[f"{term.kind}[{term.node}]"]
        if term.divergence == "bce":
            entropy = float(teacher_entropy(trace.params[term.node]))
            assert entropy > 0.01, term
            assert value == pytest.approx(entropy, rel=1e-9, abs=1e-12), term
            expected_loss += term.weight * entropy
        else:
            assert abs(value) <= ROUNDING, (term, value)
    assert float(loss.detach()) == pytest.approx(expected_loss, rel=1e-9, abs=1e-12)


# -- 3. no latents: vanilla KD -------------------------------------------------------------

def test_classifier_loss_is_vanilla_kd() -> None:
    model = load("classifier")
    assert not model.of_kind("latent")
    terms = generate(model, "ours")
    assert [(t.node, t.kind, t.divergence, t.weight) for t in terms] == [("y", "surrogate", "kl", 1.0)]
    teacher = teacher_of(model)
    torch.manual_seed(1)
    student = compile_model(model, model.distill.widths[0]).to(DTYPE)
    x = inputs_of("classifier", 64)["x"]
    loss, _ = distillation_loss(teacher, student, terms, "ours", 64, {"x": x}, generator(0))

    with torch.no_grad():
        teacher_logits = teacher.nets["p_y"](x)
    student_logits = student.nets["p_y"](x)
    vanilla = F.kl_div(F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1), log_target=True,
                       reduction="batchmean")  # mean over rows of KL(softmax(t) || softmax(s))
    assert float(vanilla.detach()) > 1e-3
    close(loss, vanilla, "generated loss vs vanilla KD")
    params = list(student.generative_parameters())
    for a, b in zip(torch.autograd.grad(loss, params), torch.autograd.grad(vanilla, params), strict=True):
        close(a, b, "gradient")


# -- 4. the upper bound, on linear-Gaussian DAGs ---------------------------------------------

@dataclass
class Dag:
    kinds: list[str]
    sizes: list[int]
    scales: list[float]
    parents: list[list[int]]
    seed: int

    def text(self) -> str:
        lines = ["model dag {"]
        for i, (kind, size, scale) in enumerate(zip(self.kinds, self.sizes, self.scales, strict=True)):
            lines.append(f"  {kind} n{i} : Normal[{size}](scale = {scale})")
        for i, ps in enumerate(self.parents):
            if ps:
                lines.append(f"  {', '.join(f'n{p}' for p in ps)} -> n{i} via linear")
        lines += ["  distill(width = 1, lambda = 1)", "}"]
        return "\n".join(lines) + "\n"


@st.composite
def linear_gaussian_dags(draw) -> Dag:
    """2-5 Normal nodes with fixed scales, edges from earlier to later nodes, each node
    latent or observed, at least one observed leaf. Observed nodes WITH children are
    allowed: `ours` teacher-forces them, and the bound still holds (see the test)."""
    n = draw(st.integers(2, 5))
    parents = [[i for i in range(j) if draw(st.booleans())] for j in range(n)]
    kinds = draw(st.lists(st.sampled_from(["latent", "observed"]), min_size=n, max_size=n))
    has_children = {p for ps in parents for p in ps}
    if not any(k == "observed" and i not in has_children for i, k in enumerate(kinds)):
        kinds[-1] = "observed"  # the last node is always a leaf
    sizes = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
    scales = draw(st.lists(st.sampled_from([0.5, 0.7, 1.0, 1.5]), min_size=n, max_size=n))
    return Dag(kinds, sizes, scales, parents, draw(st.integers(0, 2**16)))


Affine = tuple[Tensor, Tensor]
"""v = M e + c, e the standard normal noise of all nodes stacked."""


def propagate(model: CompiledModel, forced: dict[str, Affine] | None = None) -> tuple[dict[str, Affine], ...]:
    """Every node's loc and value as an affine function of the stacked noise e, from the
    compiled weights (linear networks, free root locs, fixed scales); nodes in `forced`
    take the given affine value instead (teacher forcing)."""
    steps = model.generative.steps
    offsets, total = {}, 0
    for step in steps:
        offsets[step.node], total = total, total + step.size
    locs: dict[str, Affine] = {}
    values: dict[str, Affine] = {}
    for step in steps:
        if step.parents:
            net = model.nets[step.key]
            assert isinstance(net, nn.Linear), net
            m = torch.cat([values[p][0] for p, *_ in step.parents])
            c = torch.cat([values[p][1] for p, *_ in step.parents])
            loc = (net.weight @ m, net.weight @ c + net.bias)
        else:
            loc = (torch.zeros(step.size, total, dtype=DTYPE), model.free[step.key])
        locs[step.node] = loc
        if forced and step.node in forced:
            values[step.node] = forced[step.node]
        else:
            m = loc[0].clone()
            start = offsets[step.node]
            m[:, start:start + step.size] += step.spec.fixed["scale"] * torch.eye(step.size, dtype=DTYPE)
            values[step.node] = (m, loc[1])
    return locs, values


def marginal(values: dict[str, Affine], observed: list[str]) -> MultivariateNormal:
    m = torch.cat([values[y][0] for y in observed])
    c = torch.cat([values[y][1] for y in observed])
    return MultivariateNormal(c, covariance_matrix=m @ m.T)


def randomized(model: Model, seed: int) -> CompiledModel:
    torch.manual_seed(seed)
    compiled = compile_model(model, 1.0).to(DTYPE)
    with torch.no_grad():
        for p in compiled.parameters():
            p.add_(0.5 * torch.randn(p.shape, dtype=DTYPE))
    return compiled


@settings(max_examples=30, deadline=None, derandomize=True)
@given(linear_gaussian_dags())
def test_surrogate_loss_upper_bounds_vanilla_kd(dag: Dag) -> None:
    """E_eps KL(p_T(y | eps) || p_S(y | eps)) >= KL(p_T(y) || p_S(y)) (METHOD.md).

    With observed nodes that have children, `ours` feeds the student the teacher's values
    of them, and L_sd sums per node KL(p_T(y_j | eps, y_<j) || p_S(y_j | eps, y_<j)) with
    y_<j the teacher's: by the chain rule that is the KL between the two joints of
    (eps, y), so the bound (marginalising eps) holds for any such DAG, and it is an
    equality when there is no latent to marginalise. Observed nodes with children are
    therefore kept in the generated DAGs."""
    with torch.no_grad():
        model = dgmc.loads(dag.text())
        teacher, student = randomized(model, dag.seed), randomized(model, dag.seed + 1)
        observed = [n for n in model.order if model.node(n).kind == "observed"]
        forced = [f"n{p}" for p in sorted({p for ps in dag.parents for p in ps}) if dag.kinds[p] == "observed"]
        assert list(teacher.semi) == list(student.semi) == forced

        # Closed forms: p(y) of each model, and E_eps of each surrogate term.
        t_locs, t_values = propagate(teacher)
        s_locs, _ = propagate(student, forced={n: t_values[n] for n in forced})
        _, s_values = propagate(student)
        kd = float(kl_divergence(marginal(t_values, observed), marginal(s_values, observed)))
        exact = 0.0
        for y in observed:
            gap_m, gap_c = t_locs[y][0] - s_locs[y][0], t_locs[y][1] - s_locs[y][1]
            exact += float(((gap_m ** 2).sum() + (gap_c ** 2).sum()) / (2 * model.node(y).params["scale"] ** 2))
        slack = 1e-9 * (1 + kd)
        assert exact >= kd - slack, (exact, kd)
        if not model.of_kind("latent"):
            assert exact == pytest.approx(kd, rel=1e-9, abs=1e-12)

        # Monte Carlo L_sd from the generated surrogate terms, as distillation computes it.
        terms = tuple(t for t in generate(model, "ours") if t.kind == "surrogate")
        assert {t.node for t in terms} == set(observed) and all(t.divergence == "kl" for t in terms)
        g = generator(dag.seed)
        batches, batch = 40, 250
        means = torch.tensor([float(distillation_loss(teacher, student, terms, "ours", batch, {}, g)[0])
                              for _ in range(batches)], dtype=DTYPE)
        mc = float(means.mean())
        se = float(means.std() / batches ** 0.5)  # of the mean of all 10000 draws, from the 40 batch means
        assert abs(mc - exact) <= 5 * se + slack, (mc, exact, se)  # the estimate is of the closed form
        assert mc >= kd - 4 * se - slack, (mc, kd, se)  # the bound, up to 4 standard errors


# -- 5. gradients with Bernoulli latents (specs/hm.dgm) ----------------------------------------

LATENT_NETS = {"z4": "free", "z3": "nets", "z2": "nets", "z1": "nets"}


def latent_params(student: CompiledModel, node: str) -> list[nn.Parameter]:
    key = f"p_{node}"
    return [student.free[key]] if LATENT_NETS[node] == "free" else list(student.nets[key].parameters())


def grads(loss: Tensor, params: list[nn.Parameter]) -> list[Tensor]:
    found = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(found, params, strict=True)]


def hm_pair() -> tuple[Model, CompiledModel, CompiledModel]:
    model = load("hm")
    teacher = teacher_of(model)
    torch.manual_seed(1)
    student = compile_model(model, model.distill.widths[0]).to(DTYPE)
    return model, teacher, student


def forced_ancestors(model: Model, node: str, semi: tuple[str, ...]) -> set[str]:
    """Ancestors of `node` in the student's graph, edges into teacher-forced nodes cut."""
    found, todo = set(), [node]
    while todo:
        current = todo.pop()
        if current != node and current in semi:
            continue
        for parent in model.node(current).parents:
            if parent.name not in found:
                found.add(parent.name)
                todo.append(parent.name)
    return found


def test_hm_latent_nets_get_gradient_from_latent_terms_only() -> None:
    model, teacher, student = hm_pair()
    assert set(LATENT_NETS) == {n.name for n in model.of_kind("latent")}
    assert student.semi == ("y2",)
    latents = {y: forced_ancestors(model, y, student.semi) & set(LATENT_NETS) for y in ("y2", "y1")}
    assert latents == {"y2": {"z4", "z3"}, "y1": {"z2", "z1"}}

    terms = generate(model, "ours")
    batch = 512
    with torch.no_grad():
        trace = teacher.sample(batch, {}, generator(3))

    def values(s: CompiledModel) -> dict[str, Tensor]:
        return term_values(s, trace, s.run(trace.noise, {}, {"y2": trace.values["y2"]}), terms)

    now = values(student)
    surrogate = now["y2"] + now["y1"]
    latent = sum(now[z] for z in LATENT_NETS)
    for z in LATENT_NETS:
        assert all((g == 0).all() for g in grads(surrogate, latent_params(student, z))), z
        assert any((g != 0).any() for g in grads(latent, latent_params(student, z))), z
        assert any((g != 0).any() for g in grads(now[z], latent_params(student, z))), z
    for y in ("y2", "y1"):  # L_sd does train the output networks
        assert any((g != 0).any() for g in grads(surrogate, list(student.nets[f"p_{y}"].parameters()))), y

    # The zero gradient is the discreteness, not a missing dependence: moving a latent's
    # network changes the terms of the outputs below it, and only those (y2 forced).
    for z in LATENT_NETS:
        with torch.no_grad():
            moved = compile_model(model, model.distill.widths[0]).to(DTYPE)
            moved.load_state_dict(student.state_dict())
            for p in latent_params(moved, z):
                p.add_(3 * torch.randn(p.shape, generator=generator(7), dtype=DTYPE))
            after = values(moved)
        for y in ("y2", "y1"):
            changed = not torch.equal(after[y], now[y])
            assert changed == (z in latents[y]), (z, y)


# -- 6. the authors' HM loss, by hand ------------------------------------------------------------

def gaussian_kl(t: dict[str, Tensor], s: dict[str, Tensor]) -> Tensor:
    """KL(N(t) || N(s)) summed over dimensions, mean over the batch."""
    per = (torch.log(s["scale"] / t["scale"]) + (t["scale"] ** 2 + (t["loc"] - s["loc"]) ** 2) / (2 * s["scale"] ** 2)
           - 0.5)
    return per.sum(-1).mean()


def bce(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """-(p log sigmoid(l) + (1 - p) log sigmoid(-l)) summed over dimensions, mean over the batch."""
    per = -(teacher_probs * F.logsigmoid(student_logits) + (1 - teacher_probs) * F.logsigmoid(-student_logits))
    return per.sum(-1).mean()


@pytest.mark.parametrize("method", ["ours", "local"])
def test_hm_loss_is_the_authors(method: str) -> None:
    """METHOD.md: output term Gaussian KL (std 0.5) on y1 and y2, latent term
    BCE(student logits, teacher probabilities) on each binary layer, lambda 1."""
    model, teacher, student = hm_pair()
    assert 1 in model.distill.lambdas  # the authors' lambda, among the ablation's
    hand_t, hand_s = ref.HelmholtzMachine.of(teacher), ref.HelmholtzMachine.of(student)
    assert all(net.hidden == (8,) for net in hand_t.nets.values())
    assert all(net.hidden == (2,) for net in hand_s.nets.values())
    batch = 256
    with torch.no_grad():
        noise = teacher.sample(batch, {}, generator(11)).noise  # the draw distillation_loss makes
    assert set(noise) == set(ref.HM_ORDER)

    t_run = hand_t.run(noise)
    if method == "ours":  # the student on the teacher's noise, y2 teacher-forced
        s_params = hand_s.run(noise, given={"y2": t_run.values["y2"]}).params
    else:  # each student conditional fed the teacher's parent values
        s_params = {n: {"logits": hand_s.z4_logits.expand(batch, -1)} if n == "z4" else {}
                    for n in ref.HM_ORDER}
        for node, parent in ref.HM_PARENT.items():
            raw = hand_s.nets[node](t_run.values[parent])
            s_params[node] = ({"logits": raw} if node.startswith("z") else
                              {"loc": raw, "scale": torch.full_like(raw, 0.5)})
    hand = {y: gaussian_kl(t_run.params[y], s_params[y]) for y in ("y2", "y1")}
    hand |= {z: bce(s_params[z]["logits"], torch.sigmoid(t_run.params[z]["logits"])) for z in LATENT_NETS}
    total = hand["y2"] + hand["y1"] + 1.0 * sum(hand[z] for z in LATENT_NETS)
    for y in ("y2", "y1"):  # the std 0.5 of both sides: the KL is 2 (mu_T - mu_S)^2
        mu_gap = t_run.params[y]["loc"] - s_params[y]["loc"]
        close(hand[y], (2 * mu_gap ** 2).sum(-1).mean(), f"Gaussian KL of {y}")

    loss, logged = distillation_loss(teacher, student, generate(model, method, lam=1), method, batch, {},
                                     generator(11))
    assert abs(float(loss.detach()) - float(total)) <= 1e-6, (float(loss.detach()), float(total))
    assert float(total) > 0.1
    for node, value in hand.items():
        kind = "surrogate" if node.startswith("y") else "latent"
        assert abs(logged[f"{kind}[{node}]"] - float(value)) <= 1e-6, node


# -- 7. the loss as `dgmc compile --emit losses` prints it ------------------------------------------

TERM_LINE = re.compile(r"^(L_sd|L_z)\[(\w+(?:\[\d+\])?)\]\s+= E (\w+)\(p_T\([\w\[\]]+ \|[^)]*\), "
                       r"p_S\([\w\[\]]+ \|[^)]*\)\)"
                       r"  weight (\S+), (\w+), ")


def term_lines(text: str) -> list[tuple[str, str, str, float, str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith(("L_sd[", "L_z[")):
            match = TERM_LINE.match(line)
            assert match, line
            kind, node, divergence, weight, family = match.groups()
            rows.append((kind, node, divergence, float(weight), family))
    return rows


def test_compile_emit_losses_lists_one_term_per_node(capsys: pytest.CaptureFixture[str]) -> None:
    path = SPEC_DIR / "hm.dgm"
    assert main(["compile", str(path), "--emit", "losses"]) == 0
    out = capsys.readouterr().out
    assert out == describe(load("hm"))
    assert "L = L_sd[y2] + L_sd[y1] + 1 * (L_z[z4] + L_z[z3] + L_z[z2] + L_z[z1])" in out.splitlines()
    assert term_lines(out) == [
        ("L_z", "z4", "bce", 1.0, "Bernoulli"),
        ("L_z", "z3", "bce", 1.0, "Bernoulli"),
        ("L_sd", "y2", "kl", 1.0, "Normal"),
        ("L_z", "z2", "bce", 1.0, "Bernoulli"),
        ("L_z", "z1", "bce", 1.0, "Bernoulli"),
        ("L_sd", "y1", "kl", 1.0, "Normal"),
    ]
    assert main(["compile", str(path), "--emit", "losses", "--method", "local"]) == 0
    assert capsys.readouterr().out == describe(load("hm"), "local")


@pytest.mark.parametrize("method", ["ours", "local"])
@pytest.mark.parametrize("name", SPECS)
def test_describe_matches_generate(name: str, method: str) -> None:
    """Every spec: one line per latent and observed node, in topological order, with the
    divergence, weight (lambda on latent terms of ours, 1 otherwise) and family."""
    model = load(name)
    rows = term_lines(describe(model, method))
    drawn = {model.initial_name(n.name): n.name for n in model.initials() if "learned" in n.initial.values()}
    random_nodes = [*drawn, *(n for n in model.order if model.node(n).kind in ("latent", "observed"))]
    assert [r[1] for r in rows] == random_nodes
    for kind, term, named, weight, family in rows:
        node = drawn.get(term, term)  # an initial distribution's term has its node's divergence and family
        latent = model.node(node).kind == "latent"
        assert kind == ("L_z" if latent else "L_sd")
        assert named == model.distill.divergences[node]
        assert family == model.node(node).type
        assert weight == pytest.approx(model.distill.lambdas[0] if latent and method == "ours" else 1.0)
    if not model.of_kind("latent"):
        assert "vanilla knowledge distillation" in describe(model, method)


def test_describe_scratch_has_no_terms() -> None:
    text = describe(load("hm"), "scratch")
    assert term_lines(text) == [] and "no distillation terms" in text
