"""The family registry walked entry by entry: for every registered family, samples of
z = g(eps, params) follow torch's distribution (KS for continuous values, chi-square
for discrete ones) and wrong parameters are told apart; gradients pass through g
exactly for the continuous families; every divergence vanishes on equal parameters and
matches torch's closed form, or a numerical integral where torch has none."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import Tensor

from dgmc.families import DOMAINS, FAMILIES, Family, ParamSpec
from dgmc.losses.divergences import divergence, is_closed

N = 20_000
ALPHA = 1e-4
SIZE = 3
NAMES = list(FAMILIES)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def params_of(family: Family, raw: Tensor) -> dict[str, Tensor]:
    """Constrained parameters [1, SIZE] of every parameter from raw values [1, k * SIZE]."""
    spec = ParamSpec(fixed={}, learned=(), computed=family.params, settings={})
    return family.assemble(raw, None, spec, SIZE, 1, raw)


def typical(family: Family, seed: int) -> dict[str, Tensor]:
    raw = 0.6 * torch.randn(1, len(family.params) * SIZE, generator=generator(seed), dtype=torch.float64)
    return params_of(family, raw)


def draws(family: Family, params: dict[str, Tensor], seed: int) -> tuple[Tensor, Tensor]:
    """N values by the reparametrization, and N by torch's own sampler."""
    eps = family.noise((N, SIZE), generator(seed), torch.device("cpu")).double()
    wide = {k: v.expand(N, -1) for k, v in params.items()}
    ours = family.reparam(eps, wide)
    torch.manual_seed(seed + 1)
    theirs = family.base(wide).sample()
    return ours, theirs


def differ(family: Family, a: Tensor, b: Tensor) -> float:
    """The smallest p-value over the dimensions that a and b come from one distribution."""
    if family.discrete and family.event:  # one-hot rows: the class counts
        table = np.stack([a.sum(0).numpy(), b.sum(0).numpy()]) + 0.5
        return float(stats.chi2_contingency(table).pvalue)
    if family.discrete:
        pvalues = []
        for j in range(a.shape[1]):
            values = np.union1d(a[:, j].unique().numpy(), b[:, j].unique().numpy())
            table = np.stack([[(a[:, j] == v).sum().item() for v in values],
                              [(b[:, j] == v).sum().item() for v in values]]) + 0.5
            pvalues.append(stats.chi2_contingency(table).pvalue if len(values) > 1 else 1.0)
        return float(min(pvalues))
    return float(min(stats.ks_2samp(a[:, j].numpy(), b[:, j].numpy()).pvalue for j in range(a.shape[1])))


@pytest.mark.parametrize("name", NAMES)
def test_reparametrized_samples_follow_the_distribution(name: str) -> None:
    family = FAMILIES[name]
    params = typical(family, 0)
    ours, theirs = draws(family, params, 1)
    assert differ(family, ours, theirs) > ALPHA
    assert DOMAINS[family.domain].contains(ours.numpy()).all()
    move = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)  # not a common shift: a softmax ignores those
    shifted = {k: v + 0.5 * move if family.constraints[k] == "real" else v * 1.6 ** move for k, v in params.items()}
    _, wrong = draws(family, shifted, 2)
    assert differ(family, ours, wrong) < ALPHA, "a test that cannot tell wrong parameters apart"


@pytest.mark.parametrize("name", NAMES)
def test_gradients_pass_through_g_exactly_for_continuous_families(name: str) -> None:
    family = FAMILIES[name]
    raw = torch.randn(64, len(family.params) * SIZE, generator=generator(6), dtype=torch.float64,
                      requires_grad=True)
    spec = ParamSpec(fixed={}, learned=(), computed=family.params, settings={})
    params = family.assemble(raw, None, spec, SIZE, 64, raw)
    value = family.reparam(family.noise((64, SIZE), generator(7), torch.device("cpu")).double(), params)
    if family.discrete:
        assert not value.requires_grad or torch.autograd.grad(value.sum(), raw, allow_unused=True)[0] is None
    else:
        weights = torch.randn(value.shape, generator=generator(8), dtype=torch.float64)  # a softmax sums to 1
        (grad,) = torch.autograd.grad((value * weights).sum(), raw)
        assert grad.abs().gt(0).float().mean() > 0.9  # every element, bar the odd kink


def _integral(family: Family, t: dict[str, Tensor], s: dict[str, Tensor]) -> Tensor:
    """KL(t || s) per dimension by the trapezoid rule on a fine grid (factorized
    continuous families), or by summing over counts (Poisson)."""
    if family.domain == "count":
        grid = torch.arange(0, 200, dtype=torch.float64)[:, None, None]
        p = family.log_density(t, grid)
        return (p.exp() * (p - family.log_density(s, grid))).sum(0)
    low, high = (1e-9, 1 - 1e-9) if family.domain == "unit" else (-60.0, 60.0)
    low = 1e-9 if family.domain == "positive" else low
    grid = torch.linspace(low, high, 400_001, dtype=torch.float64)[:, None, None]
    p = family.log_density(t, grid)
    integrand = torch.where(p.exp() > 0, p.exp() * (p - family.log_density(s, grid)), torch.zeros(()))
    return torch.trapezoid(integrand, grid[:, 0, 0], dim=0)


@pytest.mark.parametrize("name", NAMES)
def test_divergences_match_torch_or_an_integral_and_vanish_on_equal_parameters(name: str) -> None:
    family = FAMILIES[name]
    t, s = typical(family, 3), typical(family, 4)
    eps = family.noise((N, SIZE), generator(5), torch.device("cpu")).double()
    wide_t, wide_s = ({k: v.expand(N, -1) for k, v in p.items()} for p in (t, s))
    for divergence_name in family.divergences:
        same = divergence(family, divergence_name, wide_t, wide_t, eps)
        if divergence_name == "bce":  # the cross-entropy of p with itself is p's entropy
            same = same - family.base(wide_t).entropy()
        assert same.abs().max() < 1e-9, (divergence_name, same.abs().max())
    kl = divergence(family, "kl", wide_t, wide_s, eps).mean(0)
    if is_closed(family, "kl"):
        expected = torch.distributions.kl_divergence(family.base(t), family.base(s))[0]
        torch.testing.assert_close(kl, expected, rtol=1e-6, atol=1e-9)
        reverse = divergence(family, "reverse_kl", t, s, None)[0]
        torch.testing.assert_close(reverse, torch.distributions.kl_divergence(family.base(s), family.base(t))[0])
    elif not family.event:  # an estimate: within 5 standard errors of the integral
        per_row = divergence(family, "kl", wide_t, wide_s, eps)
        error = per_row.std(0) / N ** 0.5
        assert ((kl - _integral(family, t, s)).abs() < 5 * error + 1e-6).all(), (kl, _integral(family, t, s))
    assert (kl > -1e-9).all()


def test_every_family_is_described_and_lowerable() -> None:
    for name, family in FAMILIES.items():
        assert family.name == name and family.doc and family.formula
        assert family.domain in DOMAINS and family.default_divergence in family.divergences
        assert set(family.constraints) == set(family.params)
        assert set(family.root_only) <= set(family.spec_params)
        support = family.support(SIZE)
        assert family.support_size(SIZE) == (None if support is None else len(support)), name


NO_MEAN = ("RelaxedBernoulli", "RelaxedOneHotCategorical")
"""The families whose mean has no closed form: evaluation reports their active units as not defined."""


@pytest.mark.parametrize("name", NAMES)
def test_a_family_mean_is_the_average_of_its_samples_or_none(name: str) -> None:
    family = FAMILIES[name]
    params = typical(family, 9)
    mean = family.mean(params)
    if name in NO_MEAN:
        assert mean is None
        return
    ours, _ = draws(family, params, 10)
    error = ours.std(0) / N ** 0.5
    assert mean.shape == (1, SIZE) and ((mean[0] - ours.mean(0)).abs() < 5 * error + 1e-9).all(), (mean, ours.mean(0))


@pytest.mark.parametrize("name", NAMES)
def test_a_nan_parameter_gives_a_nan_density_not_an_exception(name: str) -> None:
    """An exploding chain hands a family NaN parameters: its log-density is NaN, which
    training's finiteness guard reports by node, for every family alike (torch validates
    the inner distribution some families build, and would raise instead)."""
    family = FAMILIES[name]
    family = family.with_settings({k: 0.5 for k in family.settings}) if family.settings else family
    params = typical(family, seed=0)
    value = family.reparam(family.noise((1, SIZE), generator(1), torch.device("cpu")).double(), params)
    broken = {k: torch.full_like(v, float("nan")) for k, v in params.items()}
    assert torch.isnan(family.log_density(broken, value)).any()
