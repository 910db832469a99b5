"""Catchment population: arrivals are incidence per 100,000 adults times the catchment's adults, and a center's
catchment can be given in adults instead of as a share."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.runs.replication import run_replication
from tests.helpers import EXPERIENCED, PERIOD, SCENARIOS

NETWORK = SCENARIOS / "regional_network.toml"


def test_arrivals_are_incidence_times_the_catchment():
    s = load_scenario(EXPERIENCED)
    assert s.population.catchment_adults == 1_000_000
    assert s.population.arrivals_per_year["spontaneous"] == pytest.approx(37.0)  # 3.7 per 100,000 x 10
    region = load_scenario(EXPERIENCED, overrides={"population.catchment.adults": 3_000_000})
    for etiology, rate in s.population.arrivals_per_year.items():
        assert region.population.arrivals_per_year[etiology] == pytest.approx(3 * rate)
    higher = load_scenario(EXPERIENCED, overrides={"population.incidence_per_100k_per_year.spontaneous": 5.0})
    assert higher.population.arrivals_per_year["spontaneous"] == pytest.approx(50.0)
    assert higher.population.arrivals_per_year["post_lp"] == s.population.arrivals_per_year["post_lp"]


def test_a_larger_catchment_brings_proportionally_more_patients():
    small = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730})
    large = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730,
                                                  "population.catchment.adults": 4_000_000})
    n_small = sum(len(run_replication(small, 11, r).patients) for r in range(3))
    n_large = sum(len(run_replication(large, 11, r).patients) for r in range(3))
    expected = 3 * 2 * sum(small.population.arrivals_per_year.values())  # 3 replications of two years
    assert abs(n_small - expected) < 4 * expected ** 0.5
    assert abs(n_large - 4 * expected) < 4 * (4 * expected) ** 0.5


def test_centers_in_adults_give_the_same_patients_as_the_equivalent_shares(write_toml):
    """The network ships its catchments in adults (4 x 250,000); as shares of 0.25 it is the same model."""
    in_adults = load_scenario(NETWORK, overrides={**PERIOD, "run.horizon_days": 365})
    assert in_adults.population.catchment_adults == 1_000_000
    assert {c.name: c.catchment_adults for c in in_adults.centers} == dict.fromkeys(
        ("specialist", "district_north", "district_east", "district_west"), 250_000)
    text = NETWORK.read_text(encoding="utf-8")
    assert text.count("catchment_adults = 250_000") == 4
    as_shares = load_scenario(write_toml(text.replace("catchment_adults = 250_000", "catchment_share = 0.25")),
                              overrides={**PERIOD, "run.horizon_days": 365})
    assert as_shares.population.arrivals_per_year == in_adults.population.arrivals_per_year
    pd.testing.assert_frame_equal(run_replication(in_adults, 5, 0).patients, run_replication(as_shares, 5, 0).patients)
    assert in_adults.resolved["centers"]["district_east"]["catchment_adults"] == 250_000


def test_unequal_centers_share_arrivals_by_their_adults(write_toml):
    path = write_toml("""
        [centers.big]
        profile = "experienced"
        catchment_adults = 750_000
        [centers.small]
        profile = "low_volume"
        catchment_adults = 250_000
        refers_to = "big"
        [centers.tertiary_only]
        profile = "experienced"
        """)
    s = load_scenario(path)
    assert s.population.catchment_adults == 1_000_000
    by_name = {c.name: c for c in s.centers}
    assert by_name["big"].catchment_share == dict.fromkeys(by_name["big"].catchment_share, 0.75)
    assert by_name["small"].catchment_share["spontaneous"] == 0.25
    assert by_name["tertiary_only"].catchment_share["spontaneous"] == 0.0
    assert s.resolved["population"]["catchment"]["adults"].source == "Sum of the centers' catchment_adults"
    # stating the same total is allowed; a different one is refused
    assert load_scenario(path, overrides={"population.catchment.adults": 1_000_000}).population.catchment_adults \
        == 1_000_000
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides={"population.catchment.adults": 2_000_000})
    assert info.value.field == "population.catchment.adults" and "1,000,000" in info.value.expected
