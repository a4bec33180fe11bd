"""Sample-based two-sample metrics: the paper's FID, EMD, MMD and 1NN, computed as the
authors computed them, so that our numbers sit beside theirs.

- FD: the square root of the Frechet distance between Gaussians fitted to the two sets
  (the authors' code reports the square root; on Inception features that is their "FID").
- EMD: exact optimal transport cost, uniform weights, Euclidean (not squared) cost.
- MMD: Gaussian kernel exp(-|a-b|^2 / bandwidth), the bandwidth the mean squared distance
  between reference points, the square root of the biased (V-statistic) MMD^2.
- 1NN: leave-one-out 1-nearest-neighbour two-sample accuracy on the pooled set; 0.5 is
  ideal (the sets cannot be told apart), 1.0 means every point's neighbour is of its own set.

Every metric takes `samples` [N, D] and `reference` [M, D] and returns a float; lower is
better for all four. They are the registry `METRICS` (a plugin adds one with
`METRICS.register(name, Metric(...))`), which evaluation measures and the report tables
and glosses. Only numpy, scipy, POT and the standard library: no torch, so the metrics
also serve features computed elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import ot
import scipy.linalg
from scipy.spatial.distance import cdist

from ..core.registry import Registry

Measure = Callable[[np.ndarray, np.ndarray], float]


def _pair(samples: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as float64 [rows, D], or a ValueError that says what is wrong: a metric
    fed a flattened image or two different feature spaces would otherwise return a number."""
    arrays = []
    for name, x in (("samples", samples), ("reference", reference)):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"{name} must be a 2-d array [rows, D], not of shape {x.shape}")
        if x.shape[0] < 2:
            raise ValueError(f"{name} must hold at least 2 rows, not {x.shape[0]}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} holds NaN or Inf")
        arrays.append(x)
    if arrays[0].shape[1] != arrays[1].shape[1]:
        raise ValueError(f"samples have {arrays[0].shape[1]} columns, reference {arrays[1].shape[1]}: "
                         "both must live in the same space")
    return arrays[0], arrays[1]


def frechet(samples: np.ndarray, reference: np.ndarray) -> float:
    """sqrt(|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))), covariances with ddof 1 as in
    the FID reference code. sqrtm warns of singular products (constant pixels, fewer rows
    than dimensions) yet stays accurate there (X @ X matches to ~1e-15 on binarized
    digits), so the warning is silenced; a non-finite root gets the reference code's
    remedy, a small ridge on both covariances."""
    x, y = _pair(samples, reference)
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(root).all():
            ridge = 1e-6 * np.eye(len(s1))
            root = scipy.linalg.sqrtm((s1 + ridge) @ (s2 + ridge))
    root = np.real(root)  # sqrtm of a product of PSD matrices: any imaginary part is round-off
    squared = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))
    return float(np.sqrt(max(squared, 0.0)))


def emd(samples: np.ndarray, reference: np.ndarray) -> float:
    """The exact earth mover's distance (network simplex, POT's `emd2`) between the two
    sets as uniform empirical measures, with Euclidean ground cost."""
    x, y = _pair(samples, reference)
    cost = ot.dist(x, y, metric="euclidean")
    weights_x, weights_y = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    # The default iteration cap (1e5) can stop short of the optimum for ~1000 points a side.
    return float(ot.emd2(weights_x, weights_y, cost, numItermax=max(100_000, 100 * len(x) * len(y))))


def mmd(samples: np.ndarray, reference: np.ndarray) -> float:
    """sqrt of the biased MMD^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y), all pairs
    including i = j, with k(a, b) = exp(-|a - b|^2 / h) and h the mean squared distance
    between distinct reference points (so the kernel's scale follows the data's)."""
    x, y = _pair(samples, reference)
    yy = cdist(y, y, "sqeuclidean")
    m = len(y)
    bandwidth = yy.sum() / (m * (m - 1))  # the diagonal is zero: off-diagonal mean
    if bandwidth <= 0:
        raise ValueError("all reference points coincide: the MMD bandwidth would be 0")
    kxx = np.exp(-cdist(x, x, "sqeuclidean") / bandwidth).mean()
    kyy = np.exp(-yy / bandwidth).mean()
    kxy = np.exp(-cdist(x, y, "sqeuclidean") / bandwidth).mean()
    return float(np.sqrt(max(kxx + kyy - 2 * kxy, 0.0)))


def one_nn(samples: np.ndarray, reference: np.ndarray) -> float:
    """The share of pooled points whose nearest other point (Euclidean, ties to the lower
    index: deterministic) carries the same label, samples 1 and reference 0. Only
    meaningful for equal set sizes (else always guessing the larger set beats 0.5), so
    unequal sizes are a ValueError; `subsample` equalises them."""
    x, y = _pair(samples, reference)
    if len(x) != len(y):
        raise ValueError(f"1NN needs sets of equal size, not {len(x)} samples and {len(y)} reference rows: "
                         "use metrics.subsample to equalise them")
    pooled = np.concatenate([x, y])
    labels = np.concatenate([np.ones(len(x), dtype=bool), np.zeros(len(y), dtype=bool)])
    nearest = np.empty(len(pooled), dtype=np.int64)
    chunk = 1024  # bounds memory at chunk x rows distances
    for start in range(0, len(pooled), chunk):
        distances = cdist(pooled[start:start + chunk], pooled, "sqeuclidean")
        rows = np.arange(len(distances))
        distances[rows, start + rows] = np.inf  # leave one out: a point is not its own neighbour
        nearest[start:start + chunk] = distances.argmin(axis=1)
    return float(np.mean(labels[nearest] == labels))


@dataclass(frozen=True)
class Metric:
    """A two-sample metric: how it is measured, and what evaluation and the report need
    to know of it. Verdicts (`stats.compare`) read lower as better, so a metric where
    higher is better is registered negated."""

    measure: Measure
    doc: str
    equal_sizes: bool = False
    """Meaningful only for sets of equal size (1NN): `compare` refuses unequal sets
    before anything is measured, rather than after the other metrics' work."""
    gloss: str = ""
    """What the report's sample tables say to read it (empty: its name says enough)."""

    def __call__(self, samples: np.ndarray, reference: np.ndarray) -> float:
        return self.measure(samples, reference)


METRICS: Registry[Metric] = Registry("metric", spec_names=False)
for _name, _metric in (
    ("FD", Metric(frechet, "square root of the Frechet distance of Gaussians fitted to the two sets",
                  gloss="FD is the square root of the Frechet distance")),
    ("EMD", Metric(emd, "exact earth mover's distance, Euclidean cost")),
    ("MMD", Metric(mmd, "square root of the biased MMD^2, Gaussian kernel scaled to the reference")),
    ("1NN", Metric(one_nn, "leave-one-out 1-nearest-neighbour two-sample accuracy (0.5 is ideal)", equal_sizes=True,
                   gloss="1NN is the leave-one-out 1-nearest-neighbour accuracy (0.5 is ideal)")),
):
    METRICS.register(_name, _metric, origin="dgmc")


def compare(samples: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Every metric of `METRICS`, by name. The sets must be of equal size where a metric
    needs it (1NN), else ValueError before anything is computed."""
    x, y = _pair(samples, reference)
    needing = [name for name, metric in METRICS.items() if metric.equal_sizes]
    if len(x) != len(y) and needing:
        raise ValueError(f"compare needs sets of equal size (for {', '.join(needing)}), not {len(x)} and {len(y)}: "
                         "use metrics.subsample to equalise them")
    return {name: metric.measure(x, y) for name, metric in METRICS.items()}


def glosses() -> str:
    """How to read the metrics, for the report: each registered gloss, joined."""
    return "; ".join(metric.gloss for metric in METRICS.values() if metric.gloss)


def subsample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` rows of `x` drawn without replacement (all of them, in order, if it has no more),
    the same rows for the same seed, kept in their original order."""
    x = np.asarray(x)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n is a number of rows >= 1, not {n!r}")
    if len(x) <= n:
        return x.copy()
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=int(n), replace=False))
    return x[rows]
