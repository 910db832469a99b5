"""Scenario loading: the base file is the schema; every bad value is refused with file, field and value."""

from __future__ import annotations

import pytest

from sim.config.distributions import Distribution
from sim.config.scenario import load_scenario
from sim.config.schema import base_tree, flatten
from sim.errors import ScenarioError
from tests.helpers import EXPERIENCED, LOW_VOLUME, ONE_CENTER, PERIOD


def test_shipped_scenarios_load():
    exp = load_scenario(EXPERIENCED)
    low = load_scenario(LOW_VOLUME)
    assert exp.center_names == ("specialist",)
    assert low.center_names == ("district", "specialist")
    assert low.center("district").refers_to == "specialist"
    assert low.center("district").profile.imaging_technique == "conventional"
    assert exp.population == low.population  # same population, different center


def test_every_base_parameter_has_unit_grade_and_source():
    for path, param in flatten(base_tree()).items():
        assert param.unit, path
        assert param.grade in ("H", "M", "L", "-"), path
        assert len(param.source) > 5, path


def test_weak_parameters_are_flagged():
    weak = [p for p, param in flatten(base_tree()).items() if param.weak]
    assert "profiles.low_volume.mri_reading_sensitivity" in weak
    assert "population.incidence_per_100k_per_year.post_lp" in weak
    assert "population.incidence_per_100k_per_year.spontaneous" not in weak


def test_plain_override_keeps_unit_and_marks_source(write_toml):
    path = write_toml(ONE_CENTER + "[clinical.ebp_first_success]\npost_lp = 0.5\n")
    s = load_scenario(path)
    assert s.clinical.ebp_first_success["post_lp"] == 0.5
    param = s.resolved["clinical"]["ebp_first_success"]["post_lp"]
    assert param.unit == "probability" and "changed in s.toml" in param.source


def test_distribution_override(write_toml):
    path = write_toml(ONE_CENTER + '[population.care_seeking_days]\nspontaneous = { family = "exponential", '
                                   'mean = 3.0 }\n')
    d = load_scenario(path).population.care_seeking_days["spontaneous"]
    assert d == Distribution("exponential", (("mean", 3.0),))


def test_center_overrides_profile_fields(write_toml):
    path = write_toml(ONE_CENTER + "recognition_probability_spontaneous = 0.2\n"
                                   "[centers.c.resources.myelography]\ncapacity = 3\n")
    c = load_scenario(path).center("c")
    assert c.profile.recognition_probability_spontaneous == 0.2
    assert c.resources["myelography"].capacity == 3


def test_custom_profile_like(write_toml):
    path = write_toml("""
        [profiles.regional]
        like = "low_volume"
        offers_embolization = true
        [centers.c]
        profile = "regional"
        catchment_share = 1.0
    """)
    c = load_scenario(path).center("c")
    assert c.profile.offers_embolization and c.profile.imaging_technique == "conventional"


def test_extends_and_overrides_argument(write_toml, tmp_path):
    write_toml(ONE_CENTER, "parent.toml")
    child = write_toml('extends = "parent.toml"\n[run]\nhorizon_days = 365\nfollow_up_days = 0\n', "child.toml")
    s = load_scenario(child, overrides={"centers.c.resources.theatre.capacity": 2})
    assert s.horizon_days == 365 and s.center("c").resources["theatre"].capacity == 2


@pytest.mark.parametrize(("text", "field", "expected"), [
    (ONE_CENTER + "[clinical.ebp_first_success]\npost_lp = 1.5\n", "clinical.ebp_first_success.post_lp",
     "between 0 and 1"),
    (ONE_CENTER + "[clinical.ebp_first_sucess]\npost_lp = 0.5\n", "clinical.ebp_first_sucess", "known key"),
    (ONE_CENTER + "[population.incidence_per_100k_per_year]\nspontaneous = -1\n",
     "population.incidence_per_100k_per_year.spontaneous", "non-negative"),
    (ONE_CENTER + "[population.incidence_per_100k_per_year]\nspontaneous = \"many\"\n",
     "population.incidence_per_100k_per_year.spontaneous", "non-negative"),
    (ONE_CENTER + "[population.spontaneous_leak_type]\nindeterminate = 0.5\n", "population.spontaneous_leak_type",
     "sum to 1"),
    (ONE_CENTER + "[population.care_seeking_days]\npost_lp = { family = \"cauchy\", loc = 1 }\n",
     "population.care_seeking_days.post_lp.family", "one of fixed"),
    (ONE_CENTER + "[centers.c.resources.clinic]\ncapacity = 0\n", "centers.c.resources.clinic.capacity",
     "from 1"),
    (ONE_CENTER + "[run]\nhorizon_days = 0\nfollow_up_days = 0\n", "run.horizon_days", "longer than 0"),
    ("[centers.a]\nprofile = \"experienced\"\ncatchment_share = 0.5\nrefers_to = \"b\"\n"
     "[centers.b]\nprofile = \"experienced\"\ncatchment_share = 0.5\nrefers_to = \"a\"\n",
     "centers.a.refers_to", "cycle"),
    ("[centers.a]\nprofile = \"experienced\"\ncatchment_share = 1.0\nrefers_to = \"nowhere\"\n",
     "centers.a.refers_to", "scenario's centers"),
    ("[centers.a]\nprofile = \"expert\"\ncatchment_share = 1.0\n", "centers.a.profile", "one of"),
    ("[scenario]\nname = \"x\"\n", "centers", "at least one"),
    ("this is = = not toml", "(syntax)", "valid TOML"),
])
def test_bad_values_name_field_and_expectation(write_toml, text, field, expected):
    path = write_toml(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert err.field == field
    assert expected in err.expected
    assert str(path) in str(err) and "\n" not in str(err)


def test_missing_file():
    with pytest.raises(ScenarioError, match="existing scenario file"):
        load_scenario("/nonexistent/x.toml")


def test_absurd_population_is_refused_before_running(write_toml):
    path = write_toml(ONE_CENTER + "[population.incidence_per_100k_per_year]\npost_lp = 1e12\n")
    with pytest.raises(ScenarioError, match="max_expected_patients"):
        load_scenario(path)


def test_numpy_scalars_put_into_a_scenario_by_hand_give_the_same_patients():
    """A scenario edited with numpy values (from a sample, or dataclasses.replace) runs as the plain one does."""
    import dataclasses

    import numpy as np
    import pandas as pd

    from sim.runs.replication import run_replication

    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 400})
    pop = dataclasses.replace(s.population, max_consultations=np.int64(s.population.max_consultations),
                              arrivals_per_year={k: np.float64(v) for k, v in s.population.arrivals_per_year.items()})
    by_hand = dataclasses.replace(s, population=pop)
    pd.testing.assert_frame_equal(run_replication(by_hand, 3, 0).patients, run_replication(s, 3, 0).patients)
