"""Verdicts that respect the noise: is one method better than another on a metric, over
the seeds of a run?

Each seed gives a pair: the two methods' students distilled with that seed from the same
teacher. The verdict is read off the paired differences d = ours - rival (lower is
better everywhere): `win` when the mean difference is negative and a two-sided paired
t-test over the seeds rejects "no difference" at the 5% level, `loss` when it rejects
and the difference is positive, `tie` when it does not reject. With fewer than two
seeds, differences that are all exactly 0, or a value that is not finite, there is
nothing to test: `tie`. Each verdict carries the line that says why, from the numbers:
the mean difference, its standard deviation over the seeds, the mean in those standard
deviations (the effect size), and p.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

LEVEL = 0.05
"""The test's level (two-sided)."""
RULE = (f"paired over seeds: a two-sided paired t-test on the per-seed differences at the {LEVEL:.0%} level; "
        "win or loss only when it rejects equal means, else tie")


@dataclass(frozen=True)
class Verdict:
    outcome: str
    """`win`, `tie` or `loss` (for the first method against the second)."""
    why: str
    """One line, from the numbers."""
    p: float | None = None


def compare(ours: dict[int, float], rival: dict[int, float], floor: float | None = None) -> Verdict:
    """`ours` against `rival`, each a metric per seed (only seeds both have count).
    `floor` is the value two independent draws of the teacher reach on this metric (its
    noise floor), when there is one: a rival at it cannot be beaten but by chance."""
    seeds = sorted(set(ours) & set(rival))
    diffs = [ours[s] - rival[s] for s in seeds]
    at_floor = _at_floor(rival, seeds, floor)
    broken = [s for s, d in zip(seeds, diffs, strict=True) if not math.isfinite(d)]
    if broken:
        return Verdict("tie", f"not finite on seed{'s' * (len(broken) > 1)} {', '.join(map(str, broken))}: "
                              "nothing to test" + at_floor)
    if len(diffs) < 2 or all(d == 0 for d in diffs):
        why = "one seed: nothing to test" if len(diffs) < 2 else "the same value on every seed"
        return Verdict("tie", why + at_floor)
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    p = _p_value(mean, sd, len(diffs))
    outcome = "tie" if p >= LEVEL else ("win" if mean < 0 else "loss")
    size = f" ({abs(mean) / sd:.1f} sd)" if sd else ""
    why = f"d = {mean:+.3g} ± {sd:.2g}{size} over {len(diffs)} seeds, p = {p:.2g}" + at_floor
    return Verdict(outcome, why, p)


def _at_floor(rival: dict[int, float], seeds: list[int], floor: float | None) -> str:
    if floor is None or not seeds:
        return ""
    mean = statistics.fmean(rival[s] for s in seeds)
    return f"; the rival already sits at the teacher's noise floor ({mean:.3g} vs {floor:.3g})" \
        if mean <= floor * 1.05 else ""


def _p_value(mean: float, sd: float, n: int) -> float:
    """Two-sided p of the paired t statistic with n - 1 degrees of freedom."""
    if sd == 0:
        return 0.0
    from scipy.stats import t

    statistic = mean / (sd / math.sqrt(n))
    return float(2 * t.sf(abs(statistic), n - 1))
