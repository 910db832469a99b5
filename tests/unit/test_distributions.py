"""Duration distributions: every family's inverse CDF and mean against scipy.stats, and the parser's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.config.distributions import (
    FAMILIES,
    MAX_GAMMA_CV,
    MIN_WEIBULL_SHAPE,
    Distribution,
    DistributionTable,
    parse_distribution,
)
from sim.errors import ScenarioError

U = np.array([0.0, 1e-9, 0.001, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 0.999, 1 - 1e-9])
POS = st.floats(0.01, 1000.0)


def dist(family: str, **params: float) -> Distribution:
    return parse_distribution({"family": family, **params}, "<test>", "x")


def scipy_twin(d: Distribution):
    """The same distribution in scipy.stats (frozen)."""
    p = dict(d.params)
    match d.family:
        case "exponential":
            return stats.expon(scale=p["mean"])
        case "lognormal":
            return stats.lognorm(s=p["sigma"], scale=p["median"])
        case "gamma":
            a = (p["mean"] / p["sd"]) ** 2
            return stats.gamma(a=a, scale=p["mean"] / a)
        case "weibull":
            return stats.weibull_min(c=p["shape"], scale=p["scale"])
        case "uniform":
            return stats.uniform(loc=p["low"], scale=p["high"] - p["low"])
        case "triangular":
            width = p["high"] - p["low"]
            return stats.triang(c=(p["mode"] - p["low"]) / width, loc=p["low"], scale=width)
    raise AssertionError(d.family)


@st.composite
def distributions(draw: st.DrawFn) -> Distribution:
    family = draw(st.sampled_from([f for f in FAMILIES if f != "fixed"]))
    match family:
        case "exponential":
            return dist(family, mean=draw(POS))
        case "lognormal":
            return dist(family, median=draw(POS), sigma=draw(st.floats(0.01, 3.0)))
        case "gamma":
            mean = draw(POS)
            return dist(family, mean=mean, sd=mean * draw(st.floats(0.05, 5.0)))
        case "weibull":
            return dist(family, shape=draw(st.floats(0.3, 10.0)), scale=draw(POS))
        case "uniform":
            low = draw(st.floats(0.0, 100.0))
            return dist(family, low=low, high=low + draw(st.floats(0.01, 100.0)))
    low = draw(st.floats(0.0, 100.0))
    width = draw(st.floats(0.01, 100.0))
    return dist(family, low=low, mode=low + width * draw(st.floats(0.0, 1.0)), high=low + width)


@settings(max_examples=200, deadline=None)
@given(d=distributions())
def test_ppf_matches_scipy_and_is_monotone(d: Distribution):
    ours = d.ppf(U)
    # lognormal clips u to [1e-12, 1 - 1e-12] so that no duration is infinite
    u = np.clip(U, 1e-12, 1 - 1e-12) if d.family == "lognormal" else U
    theirs = scipy_twin(d).ppf(u)
    assert np.allclose(ours, theirs, rtol=1e-6, atol=1e-9), (d, ours, theirs)
    assert np.all(np.diff(ours) >= -1e-9), "inverse CDF must be non-decreasing (common random numbers)"
    assert np.all(np.isfinite(ours)) and np.all(ours >= 0)


@settings(max_examples=200, deadline=None)
@given(d=distributions())
def test_mean_formula_matches_scipy(d: Distribution):
    assert d.mean == pytest.approx(scipy_twin(d).mean(), rel=1e-9)


@pytest.mark.parametrize("d", [
    dist("fixed", value=3.5), dist("exponential", mean=2.0), dist("lognormal", median=7.0, sigma=0.8),
    dist("gamma", mean=10.0, sd=8.0), dist("weibull", shape=1.5, scale=4.0), dist("uniform", low=1.0, high=5.0),
    dist("triangular", low=1.0, mode=2.0, high=6.0),
], ids=lambda d: d.family)
def test_sample_mean_of_the_inverse_cdf_matches_the_mean(d: Distribution):
    u = (np.arange(200_000) + 0.5) / 200_000  # a fine quadrature grid over (0, 1)
    assert d.ppf(u).mean() == pytest.approx(d.mean, rel=2e-3)
    assert d.ppf(u.reshape(400, 500)).shape == (400, 500)


@settings(max_examples=60, deadline=None)
@given(st.lists(distributions(), min_size=1, max_size=5), st.booleans())
def test_distribution_table_gives_each_groups_ppf_bit_for_bit(dists: list[Distribution], with_fixed: bool):
    """The fast path's grouped transform: element i is dists[group[i]].ppf(u[i]), to the last bit."""
    if with_fixed:
        dists = [*dists, dist("fixed", value=3.5), dist("weibull", shape=2.0, scale=4.0)]
    table = DistributionTable(dists)
    rng = np.random.default_rng(len(dists))
    u = np.concatenate([U, rng.random(40)])
    group = rng.integers(0, len(dists), u.size)
    expected = np.array([dists[g].ppf(u[i:i + 1])[0] for i, g in enumerate(group.tolist())])
    assert np.array_equal(table(group, u), expected)
    assert np.array_equal(table(0, u), dists[0].ppf(u))
    assert table(group[:0], u[:0]).shape == (0,)


def test_degenerate_cases():
    assert np.all(dist("fixed", value=2.5).ppf(U) == 2.5)
    assert np.all(dist("gamma", mean=3.0, sd=0.0).ppf(U) == 3.0)
    assert np.all(dist("uniform", low=2.0, high=2.0).ppf(U) == 2.0)
    assert np.all(dist("triangular", low=2.0, mode=2.0, high=2.0).ppf(U) == 2.0)
    assert np.allclose(dist("triangular", low=0.0, mode=0.0, high=4.0).ppf(U),
                       stats.triang(c=0.0, loc=0.0, scale=4.0).ppf(U))
    assert dist("lognormal", median=3.0, sigma=0.0).mean == 3.0
    assert dist("exponential", mean=2.0).describe() == "exponential(mean=2)"
    assert dist("lognormal", median=7.0, sigma=0.8).p("sigma") == 0.8


def test_regression_gamma_with_a_tiny_sd_does_not_overflow():
    """(mean / sd) ** 2 used to raise OverflowError for sd ~ 1e-258 (found by tests/engines/test_properties.py)."""
    d = dist("gamma", mean=1.0, sd=1.9e-258)
    assert np.allclose(d.ppf(U), 1.0)
    near = dist("gamma", mean=5.0, sd=5e-7)  # just above and below the switch to the normal approximation
    far = dist("gamma", mean=5.0, sd=5e-5)
    assert np.allclose(near.ppf(U[1:-1]), 5.0, atol=1e-5) and np.allclose(far.ppf(U[1:-1]), 5.0, atol=1e-3)
    assert np.all(np.diff(near.ppf(U)) >= 0)


def test_extreme_but_allowed_parameters_give_finite_durations():
    shapes = [dist("gamma", mean=1e-3, sd=MAX_GAMMA_CV * 1e-3), dist("weibull", shape=MIN_WEIBULL_SHAPE, scale=1.0),
              dist("lognormal", median=73050.0, sigma=5.0), dist("exponential", mean=73050.0)]
    for d in shapes:
        values = d.ppf(U[:-1])
        assert np.all(np.isfinite(values)) and np.all(values >= 0), d
        assert math.isfinite(d.mean)


@pytest.mark.parametrize(("raw", "field", "expected"), [
    (3.0, "x", "a distribution table"),
    ({"family": "cauchy"}, "x.family", "one of fixed"),
    ({"family": None}, "x.family", "one of fixed"),
    ({"family": ["gamma"]}, "x.family", "one of fixed"),
    ({"family": "exponential", "mean": 1.0, "sd": 1.0}, "x.sd", "only mean for exponential"),
    ({"family": "lognormal", "median": 1.0}, "x.sigma", "required by lognormal"),
    ({"family": "fixed", "value": "3"}, "x.value", "a finite number"),
    ({"family": "fixed", "value": True}, "x.value", "a finite number"),
    ({"family": "fixed", "value": math.inf}, "x.value", "a finite number"),
    ({"family": "fixed", "value": -1.0}, "x.value", "non-negative"),
    ({"family": "fixed", "value": 1e9}, "x.value", "at most"),
    ({"family": "exponential", "mean": 0.0}, "x", "mean > 0"),
    ({"family": "lognormal", "median": 0.0, "sigma": 1.0}, "x", "median > 0"),
    ({"family": "lognormal", "median": 1.0, "sigma": 6.0}, "x.sigma", "sigma <= 5"),
    ({"family": "gamma", "mean": 0.0, "sd": 1.0}, "x", "mean > 0"),
    ({"family": "gamma", "mean": 1.0, "sd": 101.0}, "x", "sd <= 100 x mean"),
    ({"family": "weibull", "shape": 0.05, "scale": 1.0}, "x", "shape >= 0.1"),
    ({"family": "weibull", "shape": 1.0, "scale": 0.0}, "x", "scale > 0"),
    ({"family": "uniform", "low": 2.0, "high": 1.0}, "x", "low <= high"),
    ({"family": "triangular", "low": 0.0, "mode": 5.0, "high": 4.0}, "x", "low <= mode <= high"),
])
def test_parser_refuses_bad_tables(raw: object, field: str, expected: str):
    with pytest.raises(ScenarioError) as info:
        parse_distribution(raw, "f.toml", "x")
    assert info.value.field == field and expected in info.value.expected
