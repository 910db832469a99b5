"""Kaplan-Meier estimator against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from sim.analysis.survival import kaplan_meier, km_median


def test_kaplan_meier_matches_hand_computation():
    # times 1, 2+, 3, 3, 4+ : S(1) = 4/5, S(3) = 4/5 * (1 - 2/3) = 4/15
    t = kaplan_meier(np.array([1, 2, 3, 3, 4.0]), np.array([1, 0, 1, 1, 0], dtype=bool))
    assert list(t["days"]) == [0.0, 1.0, 3.0]
    assert list(t["at_risk"]) == [5, 5, 3]
    assert t["survival"].to_numpy() == pytest.approx([1.0, 0.8, 4 / 15])
    assert (t["ci95_low"] <= t["survival"]).all() and (t["survival"] <= t["ci95_high"]).all()
    assert km_median(t) == 3.0


def test_no_censoring_gives_the_empirical_survival_function():
    rng = np.random.default_rng(0)
    d = rng.exponential(10, 500)
    t = kaplan_meier(d, np.ones(500, dtype=bool))
    # S(t) = share of durations > t
    for _, row in t.iloc[1:50].iterrows():
        assert row["survival"] == pytest.approx(np.mean(d > row["days"]))
    assert km_median(t) == pytest.approx(np.sort(d)[249], rel=1e-9)


def test_grid_reading_of_the_step_function():
    from sim.analysis.survival import on_grid

    t = kaplan_meier(np.array([1, 2, 3, 3, 4.0]), np.array([1, 0, 1, 1, 0], dtype=bool))
    g = on_grid(t, np.array([0.0, 0.5, 1.0, 2.5, 3.0, 10.0]))
    assert g["survival"].to_numpy() == pytest.approx([1.0, 1.0, 0.8, 0.8, 4 / 15, 4 / 15])
    assert g["events"].sum() == 3
    assert g["at_risk"].iloc[3] == 3  # two patients left before day 2.5 (an event at 1, a censoring at 2)
