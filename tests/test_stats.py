"""Verdicts over seeds (`dgmc.evaluation.stats`): a difference inside the seeds' spread is a tie, a
consistent one a win or a loss, and the line under each says why."""

from __future__ import annotations

from dgmc.evaluation.stats import compare


def test_identical_students_tie() -> None:
    verdict = compare({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert verdict.outcome == "tie" and "the same value on every seed" in verdict.why


def test_a_difference_inside_the_spread_is_a_tie() -> None:
    verdict = compare({0: 1.0, 1: 2.0, 2: 0.5}, {0: 1.5, 1: 1.0, 2: 1.2})  # lower mean, but not on every seed
    assert verdict.outcome == "tie" and verdict.p is not None and verdict.p > 0.05


def test_a_consistent_difference_is_a_win_or_a_loss() -> None:
    ours, rival = {0: 1.00, 1: 1.10, 2: 0.90, 3: 1.05}, {0: 2.00, 1: 2.05, 2: 1.95, 3: 2.10}
    assert compare(ours, rival).outcome == "win"
    assert compare(rival, ours).outcome == "loss"
    assert "over 4 seeds" in compare(ours, rival).why


def test_one_seed_is_not_a_test_and_seeds_pair_by_number() -> None:
    assert compare({0: 1.0}, {0: 5.0}).why.startswith("one seed")
    assert compare({0: 1.0, 1: 1.0}, {1: 3.0, 2: 0.0}).outcome == "tie"  # only seed 1 is in both


def test_a_rival_at_the_teachers_noise_floor_is_named() -> None:
    verdict = compare({0: 0.30, 1: 0.31, 2: 0.29}, {0: 0.30, 1: 0.30, 2: 0.31}, floor=0.30)
    assert verdict.outcome == "tie" and "noise floor" in verdict.why
