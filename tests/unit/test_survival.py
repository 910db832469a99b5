"""Kaplan-Meier, restricted means and cumulative incidence against hand-computed and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.analysis.survival import cumulative_incidence, kaplan_meier, km_median, km_median_days, restricted_mean


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


def test_the_restricted_mean_is_the_mean_when_nothing_is_censored():
    rng = np.random.default_rng(3)
    days = rng.exponential(80.0, 5000)
    assert restricted_mean(days, np.ones(days.size, dtype=bool), days.max() + 1.0) == pytest.approx(days.mean(),
                                                                                                  rel=1e-12)
    tau = 60.0
    assert restricted_mean(days, np.ones(days.size, dtype=bool), tau) == pytest.approx(np.minimum(days, tau).mean(),
                                                                                     rel=1e-12)


def test_under_heavy_censoring_the_restricted_mean_is_unbiased_and_the_mean_over_the_resolved_is_not():
    """Exponential times (mean 100 days) censored at uniform follow-up of 0-150 days: more than half censored.
    The mean over those with the event (what time_to_resolution_mean_days did) falls far short of the truth;
    the RMST to 100 days recovers 100 (1 - 1/e)."""
    rng = np.random.default_rng(11)
    n = 40_000
    t = rng.exponential(100.0, n)
    follow_up = rng.uniform(0.0, 150.0, n)
    observed = t <= follow_up
    seen = np.where(observed, t, follow_up)
    assert observed.mean() < 0.5
    truth = 100.0 * (1.0 - math.exp(-1.0))
    assert restricted_mean(seen, observed, 100.0) == pytest.approx(truth, abs=1.0)
    assert seen[observed].mean() < 0.75 * truth  # the old estimator: biased by far more than the RMST's error
    assert km_median_days(seen, observed) == pytest.approx(100.0 * math.log(2.0), abs=3.0)


def test_cumulative_incidence_of_competing_exponentials_and_what_one_minus_km_gets_wrong():
    """Diagnosis (rate 1/100 per day) competes with the leak closing on its own (rate 1/200): by day 150 the
    probability of diagnosis is 2/3 (1 - exp(-2.25)); 1 - Kaplan-Meier, censoring the closures, overstates it
    (it estimates 1 - exp(-1.5), as if no leak could close first)."""
    rng = np.random.default_rng(5)
    n = 40_000
    diagnosis, closure = rng.exponential(100.0, n), rng.exponential(200.0, n)
    follow_up = rng.uniform(50.0, 400.0, n)
    first = np.minimum(diagnosis, closure)
    cause = np.where(first > follow_up, 0, np.where(diagnosis < closure, 1, 2))
    seen = np.minimum(first, follow_up)
    truth = (2.0 / 3.0) * (1.0 - math.exp(-2.25))
    assert cumulative_incidence(seen, cause, 1, 150.0) == pytest.approx(truth, abs=0.01)
    km = kaplan_meier(seen, cause == 1)
    one_minus_km = 1.0 - float(km.loc[km["days"] <= 150.0, "survival"].iloc[-1])
    assert one_minus_km == pytest.approx(1.0 - math.exp(-1.5), abs=0.01) and one_minus_km > truth + 0.1
    assert cumulative_incidence(seen, cause, 2, 150.0) == pytest.approx((1.0 / 3.0) * (1.0 - math.exp(-2.25)),
                                                                        abs=0.01)
    assert math.isnan(cumulative_incidence(seen[:0], cause[:0], 1, 150.0))


def test_the_median_is_found_when_the_survival_is_exactly_one_half():
    """cumprod of (1 - 1/24) ... (1 - 1/13) is 0.5000000001, not 0.5: the median of 1..24 days is day 12."""
    for n in (24, 28, 30, 38):
        days = np.arange(1.0, n + 1)
        assert km_median_days(days, np.ones(n, dtype=bool)) == n // 2
        assert km_median(kaplan_meier(days, np.ones(n, dtype=bool))) == n // 2
