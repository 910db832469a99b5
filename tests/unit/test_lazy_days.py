"""sim.engines.lazy_days: a column transformed on first use equals that slot of the matrix transformed at once."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config.distributions import parse_distribution
from sim.engines.lazy_days import LazyDays

FAMILIES = [
    {"family": "lognormal", "median": 7.0, "sigma": 0.8},
    {"family": "exponential", "mean": 3.0},
    {"family": "gamma", "mean": 10.0, "sd": 4.0},
    {"family": "weibull", "shape": 1.5, "scale": 20.0},
    {"family": "triangular", "low": 1.0, "mode": 2.0, "high": 9.0},
]


@settings(max_examples=30, deadline=None)
@given(family=st.sampled_from(FAMILIES), n=st.integers(1, 200), width=st.integers(1, 24), seed=st.integers(0, 10**6))
def test_every_item_is_bit_identical_to_the_whole_matrix_transform(family, n, width, seed):
    distribution = parse_distribution(family, "test.toml", "x")
    uniforms = np.random.default_rng(seed).random((n, width))
    whole = distribution.ppf(uniforms)
    lazy = LazyDays(uniforms, distribution.ppf)
    rng = np.random.default_rng(seed + 1)
    for k, j in zip(rng.integers(0, n, 50), rng.integers(0, width, 50), strict=True):
        assert lazy.item(int(k), int(j)) == whole.item(int(k), int(j))
    assert np.array_equal(lazy.matrix(), whole)


def test_columns_nobody_asks_for_are_never_transformed():
    calls: list[int] = []

    def transform(column: np.ndarray) -> np.ndarray:
        calls.append(column.size)
        return column * 2.0

    lazy = LazyDays(np.arange(12.0).reshape(4, 3), transform)
    assert lazy.item(2, 1) == 14.0
    assert lazy.item(3, 1) == 20.0
    assert calls == [4]  # one column, once
