"""The fast path gives the SimPy engine's patients, patient by patient, wherever nothing can queue."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.config.parameters import RESOURCES
from sim.config.scenario import load_scenario
from sim.engines.choice import capacity_unlimited, select_engine, unlimited_overrides
from sim.errors import ScenarioError
from sim.model.population import draw_cohort
from sim.runs.experiment import run
from sim.runs.replication import run_replication
from tests.helpers import EXPERIENCED, LOW_VOLUME, ONE_CENTER, PERIOD, ROOT, check_invariants, only

# Center "c" of the one-center test scenarios with a server per patient on every resource.
UNLIMITED_C = "\n".join(f"[centers.c.resources.{r}]\ncapacity = 100000" for r in RESOURCES)


def unlimited(path, **overrides):
    return load_scenario(path, overrides={**unlimited_overrides(load_scenario(path)), **overrides})


def assert_same_patients(scenario, seed: int, rep: int) -> pd.DataFrame:
    """Both engines on the same seed: every column of every patient equal (float times to 1e-9)."""
    slow = run_replication(scenario, seed, rep, engine="simpy")
    fast = run_replication(scenario, seed, rep, engine="fast")
    assert (slow.engine, fast.engine) == ("simpy", "fast")
    pd.testing.assert_frame_equal(fast.patients, slow.patients, check_exact=False, rtol=0, atol=1e-9)
    # every resource figure too (waits are zero without a queue; busy time summed in another order)
    pd.testing.assert_frame_equal(fast.resources, slow.resources, check_exact=False, rtol=1e-9)
    assert fast.events is None and fast.resource_uses is None and fast.n_simpy_events == 0
    return fast.patients


@pytest.mark.parametrize("path", [EXPERIENCED, LOW_VOLUME])
def test_same_patients_on_shipped_scenarios_made_unlimited(path):
    s = unlimited(path)
    for seed, rep in ((1, 0), (2, 3), (17, 1)):
        p = assert_same_patients(s, seed, rep)
        check_invariants(p, s.horizon_days)
        assert p["final_state"].nunique() == 4  # every branch of the ending is exercised
    if path == LOW_VOLUME:
        assert p["referred"].any() and (p["center"] == "specialist").any()


def test_same_patients_with_a_short_horizon_that_censors_mid_pathway():
    s = unlimited(LOW_VOLUME, **{**PERIOD, "run.horizon_days": 200})
    p = assert_same_patients(s, 4, 0)
    assert (p["final_state"] == "in_pathway_at_horizon").sum() > 10


@pytest.mark.parametrize("etiology", ["post_lp", "epidural", "spinal_surgery", "spontaneous"])
def test_same_patients_on_each_etiology_alone(write_toml, etiology):
    s = load_scenario(write_toml(only(etiology, UNLIMITED_C)))
    p = assert_same_patients(s, 3, 0)
    assert (p["etiology"] == etiology).all() and len(p) > 200


REFERRAL_NETWORK = """
[scenario]
name = "three centers"
[profiles.small]
like = "low_volume"
offers_spinal_imaging = false
offers_durotomy_repair = false
[centers.a]
profile = "small"
catchment_share = 0.5
refers_to = "b"
[centers.b]
profile = "low_volume"
catchment_share = 0.3
refers_to = "c"
[centers.c]
profile = "experienced"
catchment_share = 0.2
[population.catchment]
adults = 100_000
[population.incidence_per_100k_per_year]
spontaneous = 300
spinal_surgery = 60
[clinical.max_recurrences]
all = 4
[clinical.recurrence_probability]
after_spontaneous_patch = 0.4
after_surgery = 0.3
"""


def test_same_patients_through_a_chain_of_referrals(write_toml):
    path = write_toml(REFERRAL_NETWORK)
    s = load_scenario(path, overrides=unlimited_overrides(load_scenario(path)))
    for rep in range(2):
        p = assert_same_patients(s, 8, rep)
        assert (p["n_referrals"] >= 2).any() and (p["n_recurrences"] >= 2).any() and p["rih_misread"].any()


def test_same_patients_when_the_district_gives_up_and_sends_patients_for_a_second_opinion():
    # The district never recognizes a spontaneous leak and gives up after two consultations; every patient it gives
    # up on goes to the specialist, whose consultations count afresh.
    overrides = {"centers.district.recognition_probability_spontaneous": 0.0,
                 "centers.district.diagnose_despite_normal_mri_probability": 0.0,
                 "centers.district.brain_mri_sign_probability": 0.0,
                 "population.max_consultations.all": 2, "population.second_opinion.probability": 1.0}
    s = unlimited(LOW_VOLUME, **overrides)
    p = assert_same_patients(s, 5, 0)
    spont = p[(p["etiology"] == "spontaneous") & (p["n_consultations"] >= 2)]
    assert len(spont) > 20
    diagnosed = spont[spont["diagnosed_day"].notna()]
    assert len(diagnosed) and (diagnosed["center"] == "specialist").all() and (diagnosed["n_referrals"] >= 1).all()
    # Given up at the district, then at the specialist: at most 2 + 2 consultations before giving up for good.
    undiagnosed = spont[spont["persistent_reason"] == "undiagnosed"]
    assert len(undiagnosed) and (undiagnosed["n_consultations"] == 4).all()
    assert (undiagnosed["center"] == "specialist").all()
    # Without second opinions every patient the district gives up on stays there, undiagnosed after two.
    q = assert_same_patients(unlimited(LOW_VOLUME, **{**overrides, "population.second_opinion.probability": 0.0}),
                             5, 0)
    gave_up = q[(q["etiology"] == "spontaneous") & (q["persistent_reason"] == "undiagnosed")
                & (q["n_consultations"] > 0)]  # (those with none gave up at the front door)
    assert len(gave_up) and (gave_up["center"] == "district").all() and (gave_up["n_consultations"] == 2).all()
    assert (q["diagnosed_day"].notna() & (q["etiology"] == "spontaneous")).sum() == 0


def test_auto_picks_simpy_when_any_capacity_is_limited_or_events_are_wanted():
    s = unlimited(EXPERIENCED)
    n = draw_cohort(s, 1, 0).n
    assert capacity_unlimited(s, n) and select_engine(s, n, "auto", log_events=False) == "fast"
    assert select_engine(s, n, "auto", log_events=True) == "simpy"
    assert select_engine(s, n, "simpy", log_events=False) == "simpy"
    assert not capacity_unlimited(s, 100_001)
    one_limited = load_scenario(EXPERIENCED, overrides={**unlimited_overrides(s),
                                                        "centers.specialist.resources.theatre.capacity": n - 1})
    assert select_engine(one_limited, n, "auto", log_events=False) == "simpy"
    assert run_replication(one_limited, 1, 0).engine == "simpy"
    assert run_replication(s, 1, 0).engine == "fast"
    shipped = load_scenario(EXPERIENCED)
    assert run_replication(shipped, 1, 0).engine == "simpy"
    with pytest.raises(ScenarioError, match="capacity"):
        run_replication(shipped, 1, 0, engine="fast")
    with pytest.raises(ScenarioError, match="event log"):
        run_replication(s, 1, 0, log_events=True, engine="fast")
    with pytest.raises(ScenarioError, match="engine"):
        select_engine(s, n, "numba", log_events=False)


def test_the_manifest_records_the_engine_and_the_cli_takes_it(tmp_path, write_toml):
    s = unlimited(EXPERIENCED, **{**PERIOD, "run.horizon_days": 365})
    fast = run(s, reps=2, seed=5, log_events=False, progress=False)
    slow = run(s, reps=2, seed=5, log_events=False, progress=False, engine="simpy")
    assert (fast.manifest["engine"], slow.manifest["engine"]) == ("fast", "simpy")
    pd.testing.assert_frame_equal(fast.summary, slow.summary, check_exact=False, rtol=1e-9)
    assert np.array_equal(fast.patients["final_state"], slow.patients["final_state"])
    assert run(load_scenario(EXPERIENCED), reps=1, seed=5, log_events=False, progress=False).manifest[
        "engine"] == "simpy"
    with pytest.raises(ScenarioError, match="--engine"):
        run(s, reps=1, engine="fast", log_events=True)
    path = write_toml(ONE_CENTER + "[run]\nhorizon_days = 365\nfollow_up_days = 0\n" + UNLIMITED_C)
    out = tmp_path / "run"
    assert main(["run", str(path), "--reps", "1", "--out", str(out), "--jobs", "1", "--quiet", "--no-events",
                 "--engine", "fast"]) == 0
    assert json.loads((out / "manifest.json").read_text())["engine"] == "fast"
    assert main(["run", str(EXPERIENCED), "--reps", "1", "--out", str(tmp_path / "x"), "--jobs", "1", "--quiet",
                 "--no-events", "--engine", "fast"]) == 2


NETWORK = LOW_VOLUME.parent / "regional_network.toml"


@pytest.mark.parametrize("policy", [
    {"referral.district_north.after_failed_ebp": 1},
    {"referral.district_north.at_diagnosis": True},
    {"referral.district_west.when_imaging_negative": True, "referral.district_west.when_not_offered": False},
])
def test_same_patients_on_the_network_with_referral_policies_and_growing_demand(policy):
    s = unlimited(NETWORK, **policy, **{"population.demand.growth_per_year": 0.1,
                                        "population.demand.seasonality_amplitude": 0.3})
    p = assert_same_patients(s, 6, 1)
    assert p["referred"].any()


def test_schedules_and_volume_feedback_keep_the_simpy_engine():
    s = unlimited(LOW_VOLUME)
    n = draw_cohort(s, 1, 0).n
    assert select_engine(s, n, "auto", False) == "fast"
    scheduled = unlimited(LOW_VOLUME, **{"centers.district.resources.theatre.closed_periods": [[213, 244]]})
    assert select_engine(scheduled, n, "auto", False) == "simpy"
    volume = unlimited(LOW_VOLUME, **{"volume_outcome.enabled": True})
    assert select_engine(volume, n, "auto", False) == "simpy"
    with pytest.raises(ScenarioError, match="schedules"):
        select_engine(volume, n, "fast", False)


def test_a_batch_of_replications_drawn_together_equals_each_drawn_alone():
    """draw_cohorts: each replication's rows of the joint cohort are exactly its own draw_cohort (with thinning)."""
    from sim.model.population import draw_cohorts

    s = load_scenario(ROOT / "scenarios" / "examples" / "demand_growth.toml")
    joint, sizes = draw_cohorts(s, 3, [4, 0, 9])
    assert joint.n == sum(sizes) and len(sizes) == 3
    start = 0
    for rep, n in zip([4, 0, 9], sizes, strict=True):
        alone, part = draw_cohort(s, 3, rep), joint.rows(slice(start, start + n))
        start += n
        assert alone.n == part.n
        for name in ("etiology", "leak_type", "onset_day", "presented_day", "natural_resolution_day", "home_center",
                     "direct_repair"):
            assert np.array_equal(getattr(alone, name), getattr(part, name)), name
        for name, values in alone.uniforms.items():
            assert np.array_equal(values, part.uniforms[name]), name


@pytest.mark.parametrize("path", [EXPERIENCED, LOW_VOLUME, ROOT / "scenarios" / "regional_network.toml"])
def test_a_batch_of_replications_on_the_fast_path_gives_each_replications_own_tables(path):
    """run_replications advances the batch as one cohort; every table equals run_replication's, exactly."""
    from sim.io.outputs import arrow_table
    from sim.runs.replication import run_replications

    s = unlimited(path, **{**PERIOD, "run.horizon_days": 1000})
    reps = [2, 5, 3, 11]
    batch = run_replications(s, 8, reps)
    assert [r.replication for r in batch] == reps and {r.engine for r in batch} == {"fast"}
    for rep, result in zip(reps, batch, strict=True):
        alone = run_replication(s, 8, rep)
        pd.testing.assert_frame_equal(result.patients, alone.patients, check_exact=True)
        # The part written for it: its slice of the batch's Arrow table, equal to converting its own table.
        assert result.patients_arrow.equals(arrow_table(alone.patients), check_metadata=True)
        pd.testing.assert_frame_equal(result.resources, alone.resources, check_exact=True)


def test_replications_that_need_the_simpy_engine_are_not_batched():
    from sim.runs.replication import run_replications

    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 300})
    results = run_replications(s, 1, [0, 1])
    assert {r.engine for r in results} == {"simpy"}
    pd.testing.assert_frame_equal(results[1].patients, run_replication(s, 1, 1).patients)


def test_runs_in_fast_path_batches_equal_runs_one_replication_at_a_time(tmp_path, monkeypatch):
    """experiment.run batches fast-path replications; whatever the batch size, the number of workers or the
    backend, every table of the run folder is the same."""
    from sim.runs import replication
    from sim.runs.backends import Backend

    s = unlimited(LOW_VOLUME, **{**PERIOD, "run.horizon_days": 700})
    assert replication.batch_size(s) > 7  # all seven replications in one batch when serial
    outs = {"batched": run(s, reps=7, seed=4, out=tmp_path / "batched", log_events=False, progress=False),
            "two_workers": run(s, reps=7, seed=4, jobs=2, out=tmp_path / "two_workers", log_events=False,
                               progress=False)}
    monkeypatch.setattr(replication, "batch_size", lambda *args, **kwargs: 1)
    outs["one_by_one"] = run(s, reps=7, seed=4, backend=Backend("serial"), out=tmp_path / "one_by_one",
                             log_events=False, progress=False)
    assert {o.manifest["engine"] for o in outs.values()} == {"fast"}
    for name in ("patients.parquet",):
        base = pd.read_parquet(tmp_path / "one_by_one" / name)
        for other in ("batched", "two_workers"):
            pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / other / name), base, check_exact=True)
    for name in ("summary.csv", "km.csv", "distributions.csv", "resources.csv"):
        base_bytes = (tmp_path / "one_by_one" / name).read_bytes()
        for other in ("batched", "two_workers"):
            assert (tmp_path / other / name).read_bytes() == base_bytes, (other, name)


def test_every_treatment_step_has_its_uniforms_side_by_side():
    """The fast path reads a treatment's draw at its column block in `Cohort.treatments` (STEP_OFFSET); a
    treatment missing from population.TREATMENT_UNIFORMS would silently read another's (offset -1)."""
    from sim.engines.fast_engine import STEP_CODE, STEP_OFFSET
    from sim.model import clinical as cl
    from sim.model.population import TREATMENT_UNIFORMS

    assert set(cl.TREATMENTS) == set(TREATMENT_UNIFORMS)
    assert all(STEP_OFFSET[STEP_CODE[step]] >= 0 for step in cl.TREATMENTS)


SHIPPED = sorted([*ROOT.glob("scenarios/*.toml"), *ROOT.glob("scenarios/examples/*.toml")])
SHIPPED = [p for p in SHIPPED if p.name != "base.toml"]


def without_schedules(path):
    """The scenario made capacity-unlimited, with no opening schedules or session-booked lists and volume feedback
    off: the fast engine's case, so that both engines can run it."""
    s = load_scenario(path)
    overrides = {**unlimited_overrides(s), "volume_outcome.enabled": False}
    for c in s.centers:
        for r in RESOURCES:
            overrides[f"centers.{c.name}.resources.{r}.open_windows"] = []
            overrides[f"centers.{c.name}.resources.{r}.closed_periods"] = []
            overrides[f"centers.{c.name}.resources.{r}.sessions_per_week"] = 0
    return load_scenario(path, overrides={**overrides, **PERIOD, "run.horizon_days": 730})


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_same_patients_on_every_shipped_scenario(path):
    """Every scenario users get, made unlimited: both engines give each patient the same record."""
    assert_same_patients(without_schedules(path), 11, 2)


PROBABILITY = st.floats(0.0, 1.0, allow_nan=False)
CENTER_PROBABILITIES = ("recognition_probability_iatrogenic", "recognition_probability_spontaneous",
                        "brain_mri_sign_probability", "mri_reading_sensitivity",
                        "diagnose_despite_normal_mri_probability", "rih_recognition_probability",
                        "leak_surgery_success", "durotomy_repair_success")
CLINICAL_PROBABILITIES = ("clinical.rih_probability.after_spontaneous_sealing",
                          "clinical.rih_probability.after_embolization",
                          "clinical.recurrence_probability.after_spontaneous_patch",
                          "clinical.recurrence_probability.after_surgery", "clinical.targeted_patch_success.all",
                          "clinical.embolization_success.all", "clinical.fibrin_patch_success.spontaneous")


GROUP_LISTS = st.sampled_from([["all"], ["spontaneous"], ["iatrogenic"], ["post_lp", "csf_venous_fistula"],
                               ["ventral_dural_tear"]])


@st.composite
def random_scenarios(draw):
    """Overrides of the low-volume scenario (two centers, referral): probabilities of both centers and of the
    ladder, the district's referral policy, the give-up limit, the horizon."""
    overrides: dict = {}
    for center in ("district", "specialist"):
        for name in CENTER_PROBABILITIES:
            if draw(st.booleans()):
                overrides[f"centers.{center}.{name}"] = draw(PROBABILITY)
    for path in CLINICAL_PROBABILITIES:
        if draw(st.booleans()):
            overrides[path] = draw(PROBABILITY)
    overrides["referral.district.after_failed_ebp"] = draw(st.integers(0, 3))
    overrides["referral.district.when_imaging_negative"] = draw(st.booleans())
    overrides["referral.district.at_diagnosis"] = draw(st.booleans())
    for policy in ("after_failed_ebp", "when_imaging_negative", "at_diagnosis", "when_not_offered"):
        overrides[f"referral.district.{policy}_for"] = draw(GROUP_LISTS)
    overrides["population.max_consultations.all"] = draw(st.integers(1, 6))
    overrides["population.second_opinion.probability"] = draw(PROBABILITY)
    overrides["run.horizon_days"] = draw(st.sampled_from([90.0, 365.0, 800.0]))
    overrides.update(PERIOD)
    return overrides, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_scenarios())
def test_same_patients_on_random_scenarios(case):
    overrides, seed = case
    base = load_scenario(LOW_VOLUME)
    s = load_scenario(LOW_VOLUME, overrides={**unlimited_overrides(base), **overrides})
    assert_same_patients(s, seed, 0)
