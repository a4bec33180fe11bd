"""The paper's two-sample metrics against cases whose value is known by hand: identity,
translation, scaling, tiny sets worked out with explicit loops, and the errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from dgmc.core.registry import RegistryError
from dgmc.evaluation.metrics import METRICS, Metric, compare, emd, frechet, glosses, mmd, one_nn, subsample


def gaussian(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_identical_sets_are_at_distance_zero() -> None:
    x = gaussian(200, 5, 0)
    assert frechet(x, x) == pytest.approx(0, abs=1e-6)
    assert mmd(x, x) == pytest.approx(0, abs=1e-12)
    assert emd(x, x) == pytest.approx(0, abs=1e-12)
    assert one_nn(x, x) == 0.0  # every point's nearest other point is its twin in the other set


def test_a_translation_moves_emd_and_fd_by_its_length() -> None:
    """W1 between a set and its translate by v is |v| exactly (matching each point to its
    image costs |v|; duality with f(x) = <x, v>/|v| bounds it below); FD too, the
    covariances being equal."""
    x = gaussian(150, 4, 1)
    v = np.array([0.3, -1.2, 2.0, 0.5])
    assert emd(x, x + v) == pytest.approx(np.linalg.norm(v), rel=1e-9)
    assert frechet(x, x + v) == pytest.approx(np.linalg.norm(v), rel=1e-6)
    assert mmd(x, x + v) > 0.1


def test_fd_of_a_set_and_its_double_is_the_root_of_the_covariance_trace() -> None:
    """Centered x and 2x: equal means, covariances S and 4S, sqrt(S 4S) = 2S, so
    FD^2 = tr(S + 4S - 4S) = tr(S)."""
    x = gaussian(300, 3, 2) @ np.array([[1.0, 0.5, 0.0], [0.0, 2.0, 0.3], [0.0, 0.0, 0.7]])
    x -= x.mean(axis=0)
    assert frechet(x, 2 * x) == pytest.approx(math.sqrt(np.trace(np.cov(x, rowvar=False))), rel=1e-6)


def test_fd_of_singular_covariances_is_accurate_and_quiet() -> None:
    """A constant column (a pixel never on) makes the covariances singular: sqrtm warns,
    yet the translation still comes out exactly, and the caller sees no warning."""
    x = np.concatenate([gaussian(80, 3, 9), np.zeros((80, 2))], axis=1)
    v = np.array([1.0, 0.0, -2.0, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert frechet(x, x + v) == pytest.approx(math.sqrt(5), rel=1e-6)


def test_fd_takes_one_dimensional_features() -> None:
    x = np.array([[0.0], [2.0], [4.0]])  # mean 2, variance 4 (ddof 1)
    y = np.array([[1.0], [2.0], [3.0]])  # mean 2, variance 1
    assert frechet(x, y) == pytest.approx(math.sqrt(4 + 1 - 2 * 2), rel=1e-9)


def test_emd_on_a_tiny_case_takes_the_cheaper_matching() -> None:
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [3.0]])
    assert emd(x, y) == pytest.approx(1.0)  # 0->0 and 1->3: (0 + 2) / 2, not (3 + 1) / 2
    assert emd(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])) == pytest.approx(1.0)


def test_mmd_matches_the_formula_worked_out_with_loops() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = np.array([[1.0, 1.0], [2.0, 0.0], [0.5, -1.0]])
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    bandwidth = sum(float(np.sum((y[i] - y[j]) ** 2)) for i, j in pairs) / len(pairs)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / bandwidth)

    kxx = sum(k(x[i], x[j]) for i in range(3) for j in range(3)) / 9
    kyy = sum(k(y[i], y[j]) for i in range(3) for j in range(3)) / 9
    kxy = sum(k(x[i], y[j]) for i in range(3) for j in range(3)) / 9
    assert mmd(x, y) == pytest.approx(math.sqrt(kxx + kyy - 2 * kxy), rel=1e-12)


def test_mmd_needs_distinct_reference_points() -> None:
    with pytest.raises(ValueError, match="bandwidth"):
        mmd(gaussian(3, 2, 0), np.ones((3, 2)))


def test_one_nn_tells_separated_clusters_apart_and_not_two_draws_of_one_gaussian() -> None:
    assert one_nn(gaussian(100, 3, 3), gaussian(100, 3, 4) + 50) == 1.0
    assert one_nn(gaussian(600, 3, 5), gaussian(600, 3, 6)) == pytest.approx(0.5, abs=0.1)


def test_one_nn_on_a_tiny_case() -> None:
    """Pooled 0, 1, 18 (samples) and 10, 30, 31 (reference): 0 <-> 1 right, 18 -> 10 wrong,
    10 -> 18 (8 away, 1 is 9) wrong, 30 <-> 31 right: 4 of 6."""
    x, y = np.array([[0.0], [1.0], [18.0]]), np.array([[10.0], [30.0], [31.0]])
    assert one_nn(x, y) == pytest.approx(4 / 6)
    assert one_nn(y, x) == pytest.approx(4 / 6)  # symmetric in the two sets


def test_compare_computes_every_metric() -> None:
    x, y = gaussian(50, 3, 7), gaussian(50, 3, 8) + 0.5
    result = compare(x, y)
    assert list(result) == list(METRICS) == ["FD", "EMD", "MMD", "1NN"]
    assert result == {name: metric(x, y) for name, metric in METRICS.items()}
    assert all(isinstance(value, float) and value > 0 for value in result.values())


@pytest.mark.parametrize("samples, reference, message", [
    (np.zeros(5), np.zeros((5, 1)), "2-d"),
    (np.zeros((5, 2, 2)), np.zeros((5, 4)), "2-d"),
    (np.zeros((5, 2)), np.zeros((5, 3)), "same space"),
    (np.zeros((1, 2)), np.zeros((5, 2)), "at least 2 rows"),
    (np.full((3, 2), np.nan), np.zeros((3, 2)), "NaN"),
])
def test_every_metric_rejects_bad_shapes(samples: np.ndarray, reference: np.ndarray, message: str) -> None:
    for metric in (*METRICS.values(), compare):
        with pytest.raises(ValueError, match=message):
            metric(samples, reference)


def test_one_nn_and_compare_need_equal_sizes_the_others_do_not() -> None:
    x, y = gaussian(10, 2, 0), gaussian(12, 2, 1)
    for metric in (one_nn, compare):
        with pytest.raises(ValueError, match="equal size"):
            metric(x, y)
    assert all(math.isfinite(metric(x, y)) for metric in (frechet, emd, mmd))


def test_subsample_is_deterministic_and_without_replacement() -> None:
    x = np.arange(200.0).reshape(100, 2)
    a, b = subsample(x, 30, seed=1), subsample(x, 30, seed=1)
    assert a.shape == (30, 2) and np.array_equal(a, b)
    assert len({tuple(row) for row in a}) == 30 and set(a[:, 0]) <= set(x[:, 0])
    assert list(a[:, 0]) == sorted(a[:, 0])  # rows keep their order
    assert not np.array_equal(a, subsample(x, 30, seed=2))
    everything = subsample(x, 500, seed=1)
    assert np.array_equal(everything, x) and everything is not x
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n is"):
            subsample(x, bad, seed=0)  # type: ignore[arg-type]


def _mean_gap(samples: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(np.mean(samples, axis=0) - np.mean(reference, axis=0)).sum())


@pytest.fixture
def mean_gap():
    """A metric registered as a plugin would, for one test, removed after."""
    METRICS.register("GAP", Metric(_mean_gap, "for a test", gloss="GAP is the gap of the means"), origin="python")
    yield
    METRICS.unregister("GAP")


def test_a_registered_metric_is_measured_listed_and_glossed(mean_gap) -> None:
    x, y = gaussian(20, 3, 0), gaussian(20, 3, 1) + 1.0
    result = compare(x, y)
    assert list(result) == ["FD", "EMD", "MMD", "1NN", "GAP"] and result["GAP"] == _mean_gap(x, y)
    assert glosses().endswith("; GAP is the gap of the means")
    from dgmc.api import listing

    assert "metrics:\n  FD   dgmc\n" in listing() and "  GAP  python\n" in listing()


def test_a_metric_that_needs_no_equal_sizes_is_measured_on_unequal_sets() -> None:
    x, y = gaussian(10, 2, 0), gaussian(12, 2, 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(METRICS, "_entries", {"GAP": Metric(_mean_gap, "for a test")})
        assert compare(x, y) == {"GAP": _mean_gap(x, y)}


def test_metric_names_need_not_be_spec_names_but_must_be_words() -> None:
    assert "1NN" in METRICS
    with pytest.raises(RegistryError, match=r"metric name 'a gap' is not a name dgmc can use"):
        METRICS.register("a gap", Metric(_mean_gap, "for a test"))
