"""Costs and QALYs from the patient table, cost-effectiveness functions, Sobol indices of a known model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.config.scenario import load_scenario
from sim.economics import cea
from sim.economics.costs import EconomicParams, discount_factor, discounted_years, patient_economics
from sim.errors import ScenarioError
from tests.helpers import EXPERIENCED, ONE_CENTER

COSTS = {"consultation": 100.0, "brain_mri": 200.0, "referral": 30.0, "spinal_imaging": 800.0, "ebp": 400.0,
         "targeted_patch": 1200.0, "fibrin_patch": 1500.0, "leak_surgery": 10000.0, "durotomy_repair": 1500.0,
         "embolization": 8000.0, "acetazolamide_course": 30.0}
UTILS = {"symptomatic": 0.6, "resolved": 0.9, "rih": 0.7, "persistent": 0.5}


def _patient(**kw) -> dict:
    row = {"onset_day": 100.0, "presented_day": 110.0, "diagnosed_day": 120.0, "first_treatment_day": 130.0,
           "resolved_day": 130.0, "final_state": "resolved", "etiology": "spontaneous", "symptom_days": 30.0,
           "rih_days": np.nan}
    row.update({c: 0 for c in ("n_consultations", "n_brain_mri", "n_referrals", "n_spinal_imaging", "n_ebp",
                                "n_targeted_patch", "n_fibrin_patch", "n_surgery", "n_embolization",
                                "n_acetazolamide_courses")})
    row.update(kw)
    return row


def test_discounting_matches_hand_computation():
    assert discount_factor(2 * 365.25, 0.035) == pytest.approx(1 / 1.035**2)
    delta = math.log(1.035)
    assert discounted_years(0.0, 365.25, 0.035) == pytest.approx((1 - 1 / 1.035) / delta)
    assert discounted_years(365.25, 3 * 365.25, 0.035) == pytest.approx((1.035**-1 - 1.035**-3) / delta)
    assert discounted_years(10.0, 375.25, 0.0) == pytest.approx(1.0)
    assert discounted_years(50.0, 20.0, 0.035) == 0.0  # empty interval


def test_patient_cost_and_qalys_by_hand():
    r = 0.035
    work = {"earnings_per_work_day": 100.0, "work_days_per_week": 5.0, "employed_share": 0.8,
            "work_lost_while_symptomatic": 0.5}
    params = EconomicParams("GBP", 2012, r, r, 20000.0, COSTS, UTILS, work)
    horizon = 100.0 + 2 * 365.25
    p = pd.DataFrame([
        _patient(n_consultations=2, n_brain_mri=1, n_ebp=1, rih_days=40.0, n_acetazolamide_courses=1),
        _patient(etiology="post_lp", n_surgery=1, final_state="persistent", symptom_days=2 * 365.25,
                 resolved_day=np.nan),
    ])
    e = patient_economics(p, params, horizon)
    d = lambda days: 1.035 ** (-days / 365.25)  # noqa: E731
    yrs = lambda a, b: (d(a) - d(b)) / math.log(1.035)  # noqa: E731  (years, continuous discounting)
    # consultations and MRI at presentation (10 days after onset), EBP at first treatment (30), acetazolamide at
    # resolution (30)
    cost0 = (2 * 100 + 200) * d(10) + 400 * d(30) + 30 * d(30)
    assert e["cost"][0] == pytest.approx(cost0)
    # durotomy repair for a procedure-related leak, at first treatment
    assert e["cost"][1] == pytest.approx(1500 * d(30))
    follow = 2 * 365.25
    qaly0 = 0.6 * yrs(0, 30) + 0.7 * yrs(30, 70) + 0.9 * yrs(70, follow)
    assert e["qaly"][0] == pytest.approx(qaly0)
    assert e["qaly_loss"][0] == pytest.approx(yrs(0, follow) - qaly0)
    assert e["qaly"][1] == pytest.approx(0.5 * yrs(0, follow))  # persistent all along
    # Work lost while symptomatic: 5/7 of each day x 0.8 employed x 0.5 lost; valued at 100 a day, discounted.
    share = 5 / 7 * 0.8 * 0.5
    assert e["work_days_lost"][0] == pytest.approx(30 * share)
    assert e["work_days_lost"][1] == pytest.approx(follow * share)
    assert e["productivity_cost"][0] == pytest.approx(100 * share * 365.25 * yrs(0, 30))
    assert e["productivity_cost"][1] == pytest.approx(100 * share * 365.25 * yrs(0, follow))


def test_run_tables_carry_economics(write_toml):
    s = load_scenario(write_toml(ONE_CENTER + "\n[run]\nhorizon_days = 150\nfollow_up_days = 0\n"))
    from sim.runs.experiment import run

    r = run(s, reps=1, seed=2, log_events=False)
    p = r.patients
    assert {"cost", "qaly", "qaly_loss"} <= set(p.columns)
    assert (p["cost"] >= 0).all() and (p["qaly_loss"] > 0).all()
    assert r.metric("cost_per_patient")["mean"] == pytest.approx(p["cost"].mean())
    # Without care only a complication of the leak itself costs (a haematoma is treated wherever it is found).
    unseen = p["n_consultations"] == 0
    leak = p["complication_subdural_haematoma"] | p["complication_superficial_siderosis"]
    assert (p.loc[unseen & ~leak, "cost"] == 0).all()
    assert (p.loc[unseen & leak, "cost"] > 0).all()


def test_new_units_are_checked(write_toml):
    with pytest.raises(ScenarioError, match=r"costs.ebp = -5: expected a non-negative cost"):
        load_scenario(write_toml(ONE_CENTER + "\n[costs]\nebp = -5\n"))
    with pytest.raises(ScenarioError, match=r"utilities.resolved = 1.2: expected a utility between -0.6 and 1"):
        load_scenario(write_toml(ONE_CENTER + "\n[utilities]\nresolved = 1.2\n"))
    s = load_scenario(EXPERIENCED, {"costs.ebp": 0, "utilities.persistent": -0.1})
    assert s.resolved["costs"]["ebp"].value == 0.0


def test_icer_and_nmb_by_hand():
    costs = np.array([[100.0, 150.0], [200.0, 250.0]])
    qalys = np.array([[1.0, 1.1], [2.0, 2.1]])
    s = cea.cea_summary(costs, qalys, wtp=1000.0)
    assert s["inc_cost"] == pytest.approx(50.0) and s["inc_qaly"] == pytest.approx(0.1)
    assert s["icer"] == pytest.approx(500.0)
    assert s["inc_nmb"] == pytest.approx(1000 * 0.1 - 50)
    assert s["prob_b_cost_effective"] == 1.0 and s["evpi_per_patient"] == pytest.approx(0.0)
    assert cea.icer(10.0, 0.0) != cea.icer(10.0, 0.0)  # nan
    assert cea.verdict(-1.0, 0.2).startswith("B dominant") and cea.verdict(1.0, -0.2).startswith("B dominated")


def test_ceac_and_evpi_by_hand():
    # Two samples; at WTP 100: NMB A = [100, 100], B = [150, 50]: B best in sample 0, A in sample 1.
    costs = np.array([[0.0, 50.0], [0.0, 50.0]])
    qalys = np.array([[1.0, 2.0], [1.0, 1.0]])
    probs = cea.prob_optimal(costs, qalys, [0.0, 100.0])
    np.testing.assert_allclose(probs, [[1.0, 0.0], [0.5, 0.5]])
    # E[max] = (150 + 100) / 2 = 125; max E = max(100, 100) = 100
    assert cea.evpi(costs, qalys, 100.0) == pytest.approx(25.0)


def test_variance_split():
    rng = np.random.default_rng(1)
    means = rng.normal(0, 2.0, 4000)  # no noise at all: all variance is parameter variance
    split = cea.variance_split(means, np.zeros_like(means), reps=5)
    assert split["share_parameters"] == 1.0 and split["var_noise"] == 0.0
    # pure noise: sample means of R=4 draws of sd 3, parameters fixed
    draws = rng.normal(0, 3.0, (4000, 4))
    split = cea.variance_split(draws.mean(axis=1), draws.var(axis=1, ddof=1), reps=4)
    assert split["share_noise"] > 0.9


def test_sobol_indices_of_a_linear_model():
    a = np.array([1.0, 2.0, 3.0])
    # uniform inputs on (0, 1): Var(a_i X_i) = a_i^2 / 12, additive, so S1_i = ST_i = a_i^2 / sum a^2
    res = cea.sobol_indices(lambda x: x @ a, ["x1", "x2", "x3"], 512, seed=3)
    expected = a**2 / (a**2).sum()
    np.testing.assert_allclose(res["S1"], expected, atol=0.03)
    np.testing.assert_allclose(res["ST"], expected, atol=0.03)
    assert res["S1"].sum() == pytest.approx(1.0, abs=0.03)
    # a pure interaction has no first-order effect
    res = cea.sobol_indices(lambda x: (x[:, 0] - 0.5) * (x[:, 1] - 0.5), ["x1", "x2"], 1024, seed=3)
    assert np.all(np.abs(res["S1"]) < 0.05) and np.all(res["ST"] > 0.8)


def test_evpi_is_never_negative_from_rounding():
    from sim.economics.cea import evpi

    costs = np.full((50, 2), 1234.56789)  # both strategies the same in every sample: EVPI is exactly 0
    qalys = np.full((50, 2), 0.123456789)
    assert evpi(costs, qalys, 20000.0) == 0.0
    rng = np.random.default_rng(1)
    assert evpi(rng.normal(100, 10, (40, 2)), rng.normal(1, 0.1, (40, 2)), 20000.0) > 0.0


def test_evppi_lies_between_zero_and_the_evpi_and_finds_the_parameter_that_decides():
    rng = np.random.default_rng(7)
    k = 2000
    decisive, noise = rng.uniform(-1, 1, k), rng.uniform(-1, 1, k)
    # B's net benefit over A is 1000 x the decisive parameter, plus sampling noise the parameters do not explain.
    qalys = np.column_stack([np.zeros(k), (1000 * decisive + rng.normal(0, 50, k)) / 20000.0])
    costs = np.zeros((k, 2))
    total = cea.evpi(costs, qalys, 20000.0)
    full = cea.evppi_single(costs, qalys, decisive, 20000.0)
    none = cea.evppi_single(costs, qalys, noise, 20000.0)
    assert 0.0 <= none <= full <= total
    # Knowing the decisive parameter is nearly all the information: E[max(0, 1000 U)] = 250 for U on (-1, 1).
    assert full == pytest.approx(250.0, rel=0.05) and full / total > 0.9
    # What an irrelevant parameter gets is the estimator's upward bias (block means of noise): what a random order
    # of the samples gets too, which evppi.csv reports as the noise floor.
    assert none < 0.2 * total
    shuffled = cea.evppi_single(costs, qalys, rng.permutation(k), 20000.0)
    assert shuffled == pytest.approx(none, rel=0.5)
    # One block is no information; as many blocks as samples is the EVPI itself (noise taken for information).
    assert cea.evppi_single(costs, qalys, decisive, 20000.0, bins=1) == 0.0
    assert cea.evppi_single(costs, qalys, noise, 20000.0, bins=k) == pytest.approx(total)


def test_evppi_is_never_negative_or_above_the_evpi_on_random_tables():
    rng = np.random.default_rng(11)
    for _ in range(50):
        k = int(rng.integers(2, 60))
        costs, qalys, theta = rng.normal(100, 30, (k, 2)), rng.normal(1, 0.05, (k, 2)), rng.random(k)
        value = cea.evppi_single(costs, qalys, theta, 20000.0)
        assert 0.0 <= value <= cea.evpi(costs, qalys, 20000.0) + 1e-9


def test_the_evppi_of_a_group_finds_the_group_that_decides():
    """B's net benefit over A is linear in two parameters of one group: knowing the group is nearly all the
    information (the EVPI), knowing an unrelated group of the same size only its noise floor."""
    rng = np.random.default_rng(3)
    k = 1500
    group, other = rng.uniform(-1, 1, (k, 2)), rng.uniform(-1, 1, (k, 2))
    inb = 600 * group[:, 0] + 400 * group[:, 1] + rng.normal(0, 30, k)
    qalys, costs = np.column_stack([np.zeros(k), inb / 20000.0]), np.zeros((k, 2))
    total = cea.evpi(costs, qalys, 20000.0)
    full = cea.evppi_regression(costs, qalys, group, 20000.0)
    none = cea.evppi_regression(costs, qalys, other, 20000.0)
    assert 0.0 <= none < 0.1 * total and full == pytest.approx(total, rel=0.05)
    # One parameter of the group: less than the whole group, more than nothing (and sort-and-split agrees).
    one = cea.evppi_regression(costs, qalys, group[:, 0], 20000.0)
    assert none < one < full
    assert one == pytest.approx(cea.evppi_single(costs, qalys, group[:, 0], 20000.0), rel=0.15)
    # Too few samples for the group's coefficients: no estimate rather than a fit to noise.
    assert np.isnan(cea.evppi_regression(costs[:14], qalys[:14], group[:14], 20000.0))


def test_the_group_evppi_table_groups_by_table_and_never_leaves_zero_to_the_evpi():
    import pandas as pd

    from sim.runs.psa import evppi_groups_table, parameter_group

    assert parameter_group("clinical.ebp_first_success.spontaneous") == "clinical.ebp_first_success"
    assert parameter_group("profiles.low_volume.resources.mri.booking_days (factor)") == \
        "profiles.low_volume.resources.mri"
    rng = np.random.default_rng(5)
    k = 200
    params = pd.DataFrame({"sample": range(k), "utilities.a": rng.random(k), "utilities.b": rng.random(k),
                           "clinical.x.y": rng.random(k)})
    qalys = np.column_stack([np.zeros(k), (params["utilities.a"] - 0.5) / 20.0])
    table = evppi_groups_table(params, np.zeros((k, 2)), qalys, 20000.0)
    assert list(table["group"]) == ["utilities", "clinical.x"]
    top = table.iloc[0]
    assert top["parameters"] == 2 and top["evppi_per_patient"] > 10 * top["noise_floor_per_patient"]
    assert (table["evppi_per_patient"] <= table["evpi_per_patient"] + 1e-9).all()
