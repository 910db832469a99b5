"""`csfsim explain`: the share-out of B - A among parameter groups (sim/runs/explain.py).

The arithmetic (Shapley efficiency, symmetry, null groups; the order dependence of the sequential method) is
checked on made-up outcomes; the counterfactual scenarios on the shipped pair, where B's home center with every
group of A's must reproduce A patient by patient."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.report.html import build_report
from sim.runs.compare import compare
from sim.runs.experiment import run
from sim.runs.explain import (
    GROUPS,
    contributions,
    counterfactual,
    explain,
    group_differs,
    pair_centers,
    share_interval,
)
from tests.helpers import EXPERIENCED, LOW_VOLUME, PERIOD, SCENARIOS

GROUP = {g.name: g for g in GROUPS}


def _all_subsets(k: int) -> list[tuple[int, ...]]:
    return [s for size in range(k + 1) for s in itertools.combinations(range(k), size)]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.floats(-1e3, 1e3), min_size=2**k * 3, max_size=2**k * 3))))
def test_contributions_add_up_to_the_swapped_difference(case):
    k, flat = case
    subsets = _all_subsets(k)
    values = {s: np.array(flat[3 * i:3 * i + 3]) for i, s in enumerate(subsets)}
    for method in ("shapley", "sequential"):
        parts = contributions(values, k, method)
        np.testing.assert_allclose(np.sum(parts, axis=0), values[()] - values[tuple(range(k))], atol=1e-6)


def test_shapley_splits_an_interaction_evenly_and_gives_a_null_group_nothing():
    # Group 0 and group 1 only act together (a joint effect of 6); group 2 never changes anything.
    def v(s: tuple[int, ...]) -> np.ndarray:
        return np.array([10.0 - (6.0 if {0, 1} <= set(s) else 0.0)])

    values = {s: v(s) for s in _all_subsets(3)}
    shapley = [float(c[0]) for c in contributions(values, 3, "shapley")]
    assert shapley == pytest.approx([3.0, 3.0, 0.0])
    # The sequential method gives the whole interaction to whichever group comes second.
    sequential = [float(c[0]) for c in contributions(values, 3, "sequential")]
    assert sequential == pytest.approx([0.0, 6.0, 0.0])


def test_additive_effects_are_recovered_exactly():
    effects = np.array([2.0, -5.0, 7.5])

    def v(s: tuple[int, ...]) -> np.ndarray:
        return np.array([100.0 - effects[list(s)].sum()])

    values = {s: v(s) for s in _all_subsets(3)}
    for method in ("shapley", "sequential"):
        assert [float(c[0]) for c in contributions(values, 3, method)] == pytest.approx(list(effects))


def test_share_interval_covers_the_ratio_and_is_nan_without_a_gap():
    rng = np.random.default_rng(3)
    gap = 10 + rng.normal(0, 1, 20)
    part = 0.4 * gap + rng.normal(0, 0.2, 20)
    share, lo, hi = share_interval(part, gap)
    assert share == pytest.approx(part.mean() / gap.mean())
    assert lo < share < hi and lo > 0.3 and hi < 0.5
    # The whole gap is its own share, exactly.
    assert share_interval(gap, gap) == pytest.approx((1.0, 1.0, 1.0))
    # A gap whose CI includes zero has no share to give out.
    noise = rng.normal(0, 1, 20)
    assert all(math.isnan(x) for x in share_interval(noise, noise - noise.mean()))


def test_the_shipped_pair_pairs_district_with_specialist_and_shares_the_front_door():
    a, b = load_scenario(EXPERIENCED), load_scenario(LOW_VOLUME)
    pairs = pair_centers(b, a)
    assert pairs == {"district": "specialist", "specialist": "specialist"}
    differing = {g.name for g in GROUPS if group_differs(g, b, a, pairs)}
    assert "front_door" not in differing  # the front door is identical in both arms by default
    assert {"diagnosis", "imaging", "treatments_offered", "capacity", "referral"} <= differing


def test_every_group_swapped_reproduces_a_patient_by_patient():
    """B's district with all of A's specialist settings (and no route on) is A's specialist: the structure part
    of the shipped comparison is zero, and each counterfactual changes only what its group holds."""
    a = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730})
    b = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 730})
    pairs = pair_centers(b, a)
    differing = [g for g in GROUPS if group_differs(g, b, a, pairs)]
    assert "route" not in {g.name for g in differing}  # two centers of B on one of A: no valid route swap
    every = counterfactual(b, a, pairs, differing)
    district = every.center("district")
    assert district.profile == a.center("specialist").profile and district.refers_to is None
    pa = run(a, reps=2, seed=5, log_events=False, progress=False).patients
    pe = run(every, reps=2, seed=5, log_events=False, progress=False).patients
    assert set(pe["center"].unique()) == {"district"}
    names = ["center", "home_center"]
    pd.testing.assert_frame_equal(pa.drop(columns=names), pe.drop(columns=names))
    only_diagnosis = counterfactual(b, a, pairs, [GROUP["diagnosis"]]).center("district").profile
    assert only_diagnosis.recognition_probability_spontaneous == 0.70  # the experienced value
    assert only_diagnosis.imaging_technique == "conventional"  # untouched: another group's field


def test_a_scenario_differing_in_one_group_is_explained_by_that_group_alone():
    a = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730})
    b = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730,
                                              "profiles.experienced.recognition_probability_spontaneous": 0.3})
    r = explain(a, b, reps=4, seed=2, progress=False)
    assert [g.name for g in r.groups] == ["diagnosis"]
    assert r.counterfactuals == 3  # A, B and B with A's diagnosis
    row = r.part("symptom_days_mean", "spontaneous", "diagnosis")
    total = r.part("symptom_days_mean", "spontaneous", "total")
    assert row["contribution"] == pytest.approx(total["contribution"]) and total["ci95_low"] > 0
    assert row["share_of_gap"] == pytest.approx(1.0)
    assert r.part("symptom_days_mean", "spontaneous", "diagnosis_layer")["share_of_gap"] == pytest.approx(1.0)
    assert r.part("symptom_days_mean", "spontaneous", "structure")["contribution"] == 0.0


def test_parts_add_up_to_the_gap_in_a_sequential_explanation_of_the_shipped_pair():
    a = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730})
    b = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 730})
    r = explain(a, b, reps=5, seed=1, method="sequential", progress=False)
    t = r.table
    for (metric, _group), sel in t.groupby(["metric", "group"]):
        added = sel[sel["kind"].isin(["group", "structure"])]["contribution"].sum()
        assert added == pytest.approx(sel[sel["kind"] == "total"]["contribution"].iloc[0], abs=1e-9), (metric, _group)
    # The diagnosis layer of the spontaneous symptom-day gap is a real share of it.
    layer = r.part("symptom_days_mean", "spontaneous", "diagnosis_layer")
    assert 0 < layer["share_ci95_low"] <= layer["share_of_gap"] <= layer["share_ci95_high"] < 1


def test_home_centers_that_cannot_be_paired_are_refused():
    a = load_scenario(EXPERIENCED)
    network = load_scenario(SCENARIOS / "regional_network.toml")
    with pytest.raises(ScenarioError, match="home centers that match"):
        pair_centers(network, a)


def test_cli_explain_writes_its_folder_and_prints_the_shares(tmp_path, capsys):
    out = tmp_path / "explain"
    code = main(["explain", str(EXPERIENCED), str(LOW_VOLUME), "--reps", "2", "--method", "sequential",
                 "--jobs", "1", "--quiet", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Diagnosis layer (front door + diagnosis)" in text and "B - A" in text
    assert "the same in both: front_door" in text
    t = pd.read_csv(out / "explain.csv")
    assert {"total", "structure", "diagnosis_layer", "diagnosis"} <= set(t["part"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Why the scenarios differ" in page and "Diagnosis layer (front door + diagnosis)" in page
    assert (out / "figures" / "explain.png").exists()
    assert main(["report", str(out)]) == 0  # `csfsim report` rebuilds an explain folder's report
    # A second run into the same folder is refused without --overwrite, with one line and exit 2.
    assert main(["explain", str(EXPERIENCED), str(LOW_VOLUME), "--reps", "2", "--quiet", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_explain_bad_pairing_is_one_line_exit_2(capsys):
    code = main(["explain", str(EXPERIENCED), str(SCENARIOS / "regional_network.toml"), "--reps", "2", "--quiet",
                 "--out", "/nonexistent/never-written"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "regional_network.toml" in err and "home centers" in err


def test_compare_explain_total_is_the_comparisons_paired_difference(tmp_path):
    a = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730})
    b = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730, "scenario.name": "Slow imaging",
                                              "profiles.experienced.resources.mri.booking_days":
                                                  {"family": "lognormal", "median": 30.0, "sigma": 0.5}})
    out = tmp_path / "cmp"
    result = compare([a, b], reps=3, seed=4, out=out, measure_crn=False, explain=True, progress=False)
    assert result.explanation is not None and set(result.explanation["part"]) >= {"capacity", "total"}
    t = pd.read_csv(out / "explain.csv")
    comp = pd.read_csv(out / "comparison.csv")
    for metric, group in [("symptom_days_mean", "spontaneous"), ("diagnosis_cif_365_days", "spontaneous")]:
        total = t[(t["metric"] == metric) & (t["group"] == group) & (t["part"] == "total")].iloc[0]
        diff = comp[(comp["metric"] == metric) & (comp["group"] == group) & (comp["scenario_index"] == 1)].iloc[0]
        assert total["contribution"] == pytest.approx(diff["diff_vs_first"])
        capacity = t[(t["metric"] == metric) & (t["group"] == group) & (t["part"] == "capacity")].iloc[0]
        assert capacity["contribution"] == pytest.approx(total["contribution"])  # the only group that differs
    page = build_report(out).read_text(encoding="utf-8")
    assert "Slow imaging (B) against" in page and "id='fig-explain'" in page


ROUTES = SCENARIOS / "routes"


def test_direct_referral_is_explained_by_the_route_and_either_order_adds_up():
    usual = load_scenario(ROUTES / "usual_care.toml", overrides={**PERIOD, "run.horizon_days": 730})
    direct = load_scenario(ROUTES / "direct_referral.toml", overrides={**PERIOD, "run.horizon_days": 730})
    r = explain(usual, direct, reps=3, seed=3, progress=False)
    assert [g.name for g in r.groups] == ["route"]
    route = r.part("symptom_days_mean", "spontaneous", "route")
    assert route["share_of_gap"] == pytest.approx(1.0) and route["contribution"] < 0
    # A lone specialist against usual care: the counterfactuals are built on usual care (more centers), and
    # the parts still add up to B - A with no structure left.
    lone = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 730})
    r = explain(usual, lone, reps=3, seed=3, method="sequential", progress=False)
    assert r.manifest is not None and r.manifest["counterfactuals_built_on"] == "A"
    t = r.table[(r.table["metric"] == "symptom_days_mean") & (r.table["group"] == "spontaneous")]
    total = t[t["kind"] == "total"]["contribution"].iloc[0]
    assert t[t["kind"].isin(["group", "structure"])]["contribution"].sum() == pytest.approx(total)
    assert t[t["part"] == "structure"]["contribution"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    lone_mean = run(lone, reps=3, seed=3, log_events=False, progress=False).metric("symptom_days_mean",
                                                                                    "spontaneous")["mean"]
    usual_mean = run(usual, reps=3, seed=3, log_events=False, progress=False).metric("symptom_days_mean",
                                                                                    "spontaneous")["mean"]
    assert total == pytest.approx(lone_mean - usual_mean)


def test_population_settings_of_the_diagnosis_belong_to_its_group_and_one_replication_is_refused():
    usual = load_scenario(LOW_VOLUME)
    fewer = load_scenario(LOW_VOLUME, overrides={"population.second_opinion.probability": 0.0,
                                                 "population.max_consultations.all": 4})
    pairs = pair_centers(fewer, usual)
    assert [g.name for g in GROUPS if group_differs(g, fewer, usual, pairs)] == ["diagnosis"]
    with pytest.raises(ScenarioError) as info:
        explain(usual, fewer, reps=1, progress=False)
    assert "--reps" in str(info.value)
    with pytest.raises(ScenarioError):
        compare([usual, fewer], reps=1, explain=True, measure_crn=False, progress=False)
