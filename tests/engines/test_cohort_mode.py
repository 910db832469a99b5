"""Who the statistics follow: a closed cohort (`run.arrivals_until_days`: onsets only before a day) and the
follow-up window (`run.follow_up_days`: later onsets load the resources but are not counted).

A cohort run is the period run's patients with onset before the day, each with the same draws; with at least a
year of follow-up for everyone, the year's time-to-event measures have no censoring left and equal their plain
empirical versions. The follow-up window changes what is counted, never what is simulated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.analysis.stats import replication_metrics
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.report.html import load_target, stress_des
from sim.runs.experiment import run
from sim.runs.replication import run_replication
from tests.helpers import EXPERIENCED, LOW_VOLUME, PERIOD, check_invariants

UNTIL_DAYS = 700.0
HORIZON_DAYS = 1200.0


@pytest.mark.parametrize("engine", ["simpy", "fast"])
def test_a_cohort_is_the_period_runs_patients_with_onset_before_the_day(engine):
    period = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": HORIZON_DAYS})
    cohort = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": HORIZON_DAYS,
                                                   "run.arrivals_until_days": UNTIL_DAYS})
    if engine == "fast":
        from sim.engines.choice import unlimited_overrides

        extra = unlimited_overrides(period)
        period = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": HORIZON_DAYS, **extra})
        cohort = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": HORIZON_DAYS, **extra,
                                                       "run.arrivals_until_days": UNTIL_DAYS})
    p = run_replication(period, 3, 1, engine=engine).patients
    c = run_replication(cohort, 3, 1, engine=engine).patients
    check_invariants(c, HORIZON_DAYS)
    assert c["onset_day"].max() < UNTIL_DAYS and len(c) == (p["onset_day"] < UNTIL_DAYS).sum() > 100
    # Where nothing queues, every column; with queues, who fell ill and how (a later arrival may take a slot an
    # earlier patient would have had after the day, which the cohort run has no one to take).
    same = [col for col in p.columns if col != "patient_id"] if engine == "fast" else \
        ["onset_day", "etiology", "leak_type", "home_center", "first_contact_day", "presented_day",
         "n_front_door_visits"]
    pd.testing.assert_frame_equal(c[same].reset_index(drop=True),
                                  p.loc[p["onset_day"] < UNTIL_DAYS, same].reset_index(drop=True))


def test_with_a_year_of_follow_up_for_everyone_the_years_measures_are_plain_shares_and_means():
    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": HORIZON_DAYS,
                                            "run.arrivals_until_days": 800.0,
                                            "population.demand.growth_per_year": 0.10})
    r = run(s, reps=2, seed=4, log_events=False, progress=False)
    p = r.patients
    for rep, g in p.groupby("replication"):
        care = g[g["presented_day"].notna() & (g["presented_day"] < HORIZON_DAYS) & (g["etiology"] == "spontaneous")]
        onset = care["onset_day"]
        diagnosed_in_a_year = ((care["diagnosed_day"] - onset) <= 365).mean()
        to_resolution = (care["first_resolved_day"] - onset).fillna(np.inf).clip(upper=365)
        per_rep = r.per_replication
        value = per_rep[(per_rep["replication"] == rep) & (per_rep["group"] == "spontaneous")].set_index("metric")
        assert value.loc["diagnosis_cif_365_days", "value"] == pytest.approx(diagnosed_in_a_year, abs=1e-12)
        assert value.loc["time_to_resolution_rmst_365_days", "value"] == pytest.approx(to_resolution.mean(),
                                                                                       abs=1e-9)


def test_the_manifest_and_the_checks_of_the_arrivals_day(tmp_path):
    s = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 900.0, "run.arrivals_until_days": 400.0})
    r = run(s, reps=1, seed=1, out=tmp_path / "run", log_events=False, progress=False)
    assert r.manifest["arrivals_until_days"] == 400.0
    assert load_scenario(EXPERIENCED).arrivals_until_days is None  # period mode by default
    for bad in (900.0, 1000.0, -5.0):
        with pytest.raises(ScenarioError) as info:
            load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 900.0, "run.arrivals_until_days": bad})
        assert "run.arrivals_until_days" in str(info.value)


FOLLOW_UP_DAYS = 400.0


def test_the_follow_up_window_changes_what_is_counted_never_what_is_simulated():
    """Same seed with and without the window: the same patients and resource tables; the counted ones are exactly
    the onsets after the warm-up and at least follow_up_days before the horizon, and the statistics count them."""
    base = {"run.horizon_days": HORIZON_DAYS, "run.warmup_days": 100.0}
    every = load_scenario(LOW_VOLUME, overrides={**base, **PERIOD})
    window = load_scenario(LOW_VOLUME, overrides={**base, "run.follow_up_days": FOLLOW_UP_DAYS})
    a, b = run_replication(every, 6, 0), run_replication(window, 6, 0)
    pd.testing.assert_frame_equal(a.resources, b.resources)
    pd.testing.assert_frame_equal(a.patients.drop(columns="counted"), b.patients.drop(columns="counted"))
    onset = b.patients["onset_day"]
    expected = (onset >= 100.0) & (onset <= HORIZON_DAYS - FOLLOW_UP_DAYS)
    assert b.patients["counted"].tolist() == expected.tolist()
    assert 0 < expected.sum() < (onset >= 100.0).sum() < len(onset)
    counts = replication_metrics(b.patients, b.resources, HORIZON_DAYS).set_index(["metric", "group"])["value"]
    assert counts[("n_patients", "all")] == expected.sum()
    assert counts[("n_presented", "all")] == (expected & b.patients["presented_day"].notna()).sum()


def test_a_year_of_follow_up_leaves_the_years_measures_uncensored_with_arrivals_to_the_horizon():
    """Arrivals run to the horizon (the load of the whole period) and demand grows, yet over the counted patients
    the restricted mean and the cumulative incidence at a year are the plain empirical mean and share."""
    s = load_scenario(LOW_VOLUME, overrides={"run.horizon_days": HORIZON_DAYS, "run.follow_up_days": 365,
                                            "population.demand.growth_per_year": 0.10})
    r = run_replication(s, 8, 0)
    p = r.patients
    assert p["onset_day"].max() > HORIZON_DAYS - 365  # later onsets were simulated
    care = p[p["counted"] & p["presented_day"].notna() & (p["etiology"] == "spontaneous")]
    onset = care["onset_day"]
    metrics = replication_metrics(p, r.resources, HORIZON_DAYS)
    value = metrics[metrics["group"] == "spontaneous"].set_index("metric")["value"]
    assert value["diagnosis_cif_365_days"] == pytest.approx(((care["diagnosed_day"] - onset) <= 365).mean(),
                                                            abs=1e-12)
    to_resolution = (care["first_resolved_day"] - onset).fillna(np.inf).clip(upper=365)
    assert value["time_to_resolution_rmst_365_days"] == pytest.approx(to_resolution.mean(), abs=1e-9)


def test_the_follow_up_is_recorded_and_checked(tmp_path):
    s = load_scenario(EXPERIENCED, overrides={"run.horizon_days": 900.0})
    assert s.follow_up_days == 365.0 and s.counted_until_day == 535.0  # the shipped default
    r = run(s, reps=1, seed=1, out=tmp_path / "run", log_events=False, progress=False)
    assert r.manifest["follow_up_days"] == 365.0
    stress = {item: text for item, _, text in stress_des(load_target(tmp_path / "run"))}
    assert "count onsets up to day 535, so that each counted patient is followed at least 365 days" in stress["4.1"]
    for bad in (900.0, 850.0, -1.0):
        with pytest.raises(ScenarioError) as info:
            load_scenario(EXPERIENCED, overrides={"run.horizon_days": 900.0, "run.warmup_days": 50.0,
                                                  "run.follow_up_days": bad})
        assert "run.follow_up_days" in str(info.value) and "\n" not in str(info.value)
