"""Verification against theory: the model reduced, through scenario files alone, to cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sim.config.scenario import load_scenario
from sim.runs.replication import run_replication
from tests.helpers import PERIOD

ZERO_OTHER_ARRIVALS = "epidural = 0\nspinal_surgery = 0\nspontaneous = 0\n"


def erlang_c_wait(lam: float, mean_service: float, c: int) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C)."""
    a = lam * mean_service
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait * mean_service / (c - a)


def mmc_scenario(lam_per_day: float, mean_service: float, c: int, horizon: float) -> str:
    return f"""
[run]
horizon_days = {horizon}
follow_up_days = 0
[population.catchment]
adults = 100_000
[population.incidence_per_100k_per_year]
post_lp = {lam_per_day * 365.25}
{ZERO_OTHER_ARRIVALS}
[population.self_limiting_probability]
post_lp = 0.0
[population.care_seeking_days]
post_lp = {{ family = "fixed", value = 0.0 }}
[population.max_consultations]
all = 1
[centers.c]
profile = "experienced"
catchment_share = 1.0
recognition_probability_iatrogenic = 0.0
[centers.c.resources.clinic]
capacity = {c}
service_days = {{ family = "exponential", mean = {mean_service} }}
booking_days = {{ family = "fixed", value = 0.0 }}
"""


@pytest.mark.parametrize(("lam", "service", "c"), [(2.0, 0.8, 2), (1.0, 0.7, 1), (3.0, 1.2, 4)])
def test_single_resource_matches_erlang_c_and_littles_law(write_toml, lam, service, c):
    s = load_scenario(write_toml(mmc_scenario(lam, service, c, horizon=4000)))
    waits, utils = [], []
    for rep in range(6):
        r = run_replication(s, 100 + rep, rep)
        clinic = r.resources[r.resources["resource"] == "clinic"].iloc[0]
        waits.append(clinic["mean_wait_days"])
        utils.append(clinic["utilization"])
        # Little's law on the queue: L = lambda * W (sample path, up to patients still queued at the end)
        assert clinic["mean_queue_length"] == pytest.approx(clinic["arrival_rate_per_day"] * clinic["mean_wait_days"],
                                                           rel=0.03, abs=1e-3)
        # nobody leaves the pathway except after the one consultation
        assert (r.patients["n_consultations"] <= 1).all()
    expected = erlang_c_wait(lam, service, c)
    mean, half = np.mean(waits), stats.t.ppf(0.995, len(waits) - 1) * np.std(waits, ddof=1) / math.sqrt(len(waits))
    assert abs(mean - expected) <= max(half, 0.03 * expected), (mean, expected, half)
    assert np.mean(utils) == pytest.approx(lam * service / c, rel=0.03)


def test_little_law_holds_on_every_resource_of_the_shipped_low_volume_scenario():
    s = load_scenario("scenarios/low_volume_center.toml", overrides={**PERIOD, "run.horizon_days": 3650})
    r = run_replication(s, 2, 0)
    for row in r.resources.itertuples():
        if row.n_served > 20:
            assert row.mean_queue_length == pytest.approx(row.arrival_rate_per_day * row.mean_wait_days,
                                                          rel=0.05, abs=1e-3), row


GEOMETRIC = """
[population.catchment]
adults = 100_000
[population.incidence_per_100k_per_year]
post_lp = 2000
{zero}
[population.self_limiting_probability]
post_lp = 0.0
[clinical.ebp_first_success]
post_lp = {p}
[clinical.ebp_repeat_success]
post_lp = {p}
[clinical.ebp_max_blind]
post_lp = {m}
[clinical.recurrence_probability]
after_iatrogenic_ebp = 0.0
after_surgery = 0.0
[clinical.rih_probability]
after_iatrogenic_ebp = 0.0
[centers.c]
profile = "experienced"
catchment_share = 1.0
recognition_probability_iatrogenic = 1.0
[centers.c.resources.clinic]
capacity = 1000
[centers.c.resources.procedure_room]
capacity = 1000
"""


def test_repeated_blood_patches_follow_a_truncated_geometric_law(write_toml):
    p, m = 0.4, 8
    s = load_scenario(write_toml(GEOMETRIC.format(zero=ZERO_OTHER_ARRIVALS, p=p, m=m)))
    r = run_replication(s, 7, 0).patients
    done = r[r["final_state"] != "in_pathway_at_horizon"]
    n = done["n_ebp"].to_numpy()
    assert len(n) > 5000 and n.min() == 1
    probs = np.array([(1 - p) ** (k - 1) * p for k in range(1, m)] + [(1 - p) ** (m - 1)])
    observed = np.array([(n == k).sum() for k in range(1, m + 1)])
    _chi2, pvalue = stats.chisquare(observed, probs * len(n))
    assert pvalue > 0.001, (observed, probs * len(n))
    # exactly those who failed all m patches went on to the next step
    failed_all = (n == m) & (done["resolved_by"] != "ebp").to_numpy()
    assert ((done["n_fibrin_patch"] > 0).to_numpy() == failed_all).all()


def test_times_add_up_exactly_without_capacity_limits(write_toml):
    text = f"""
[population.catchment]
adults = 100_000
[population.incidence_per_100k_per_year]
post_lp = 300
{ZERO_OTHER_ARRIVALS}
[population.self_limiting_probability]
post_lp = 0.0
[population.care_seeking_days]
post_lp = {{ family = "fixed", value = 2.0 }}
[population.iatrogenic_review_days]
all = {{ family = "fixed", value = 1.0 }}
[population.severe_headache_probability]
post_lp = 0.0
[clinical.conservative_days]
post_lp = {{ family = "fixed", value = 2.0 }}
[clinical.procedural_patch_booking_days]
all = {{ family = "fixed", value = 1.0 }}
[clinical.ebp_first_success]
post_lp = 1.0
[clinical.recurrence_probability]
after_iatrogenic_ebp = 0.0
[centers.c]
profile = "experienced"
catchment_share = 1.0
recognition_probability_iatrogenic = 1.0
[centers.c.resources.clinic]
capacity = 100000
service_days = {{ family = "fixed", value = 0.5 }}
booking_days = {{ family = "fixed", value = 1.0 }}
[centers.c.resources.procedure_room]
capacity = 100000
service_days = {{ family = "fixed", value = 0.25 }}
booking_days = {{ family = "fixed", value = 1.0 }}
"""
    s = load_scenario(write_toml(text))
    p = run_replication(s, 1, 0).patients
    p = p[p["onset_day"] < s.horizon_days - 10]
    assert (p["final_state"] == "resolved").all() and (p["resolved_by"] == "ebp").all()
    assert np.allclose(p["presented_day"], p["onset_day"] + 2.0)
    assert np.allclose(p["diagnosed_day"], p["onset_day"] + 3.5)
    assert np.allclose(p["first_treatment_day"], p["onset_day"] + 6.75)
    assert np.allclose(p["resolved_day"], p["onset_day"] + 6.75)
    assert np.allclose(p["symptom_days"], 6.75)
    assert np.allclose(p["waiting_days"], 0.0)
