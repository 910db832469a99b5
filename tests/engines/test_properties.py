"""Property-based tests of the engine over randomly generated valid scenarios.

Scenarios are small (horizons of months, a few hundred patients) so that each example runs in well under a second;
they vary arrivals, natural history, success probabilities, attempt limits, center topology (one center, a
referring low-volume center, or a split catchment), capabilities and resource capacities and service times.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config.parameters import (
    EBP_SUCCESS_KEYS,
    ETIOLOGIES,
    IATROGENIC,
    IMAGING_TECHNIQUES,
    REFINED_TECHNIQUES,
    RESOURCES,
)
from sim.config.scenario import build_scenario
from sim.model.records import FINAL_STATES
from sim.runs.replication import ReplicationResult, run_replication

PROB = st.floats(0.0, 1.0)
SEED = st.integers(0, 2**32 - 1)
TIME_ORDER = ("onset_day", "presented_day", "diagnosed_day", "first_treatment_day", "resolved_day")


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in RESOURCES:
        if draw(st.booleans()):
            out[r] = {
                "capacity": draw(st.integers(1, 3)),
                "service_days": {"family": "exponential", "mean": draw(st.floats(0.05, 3.0))},
                "booking_days": {"family": "fixed", "value": draw(st.floats(0.0, 10.0))},
            }
    return out


@st.composite
def scenarios(draw: st.DrawFn, max_rate: float = 60.0) -> dict[str, Any]:
    """A raw scenario dict (as read from TOML) that the loader accepts."""
    per_etiology = {e: draw(st.floats(0.0, max_rate)) for e in ETIOLOGIES}
    raw: dict[str, Any] = {
        "run": {"horizon_days": draw(st.integers(60, 400)), "follow_up_days": 0},
        "population": {
            "catchment": {"adults": 100_000},
            "incidence_per_100k_per_year": per_etiology,
            "self_limiting_probability": {e: draw(PROB) for e in ETIOLOGIES},
            "severe_headache_probability": {e: draw(PROB) for e in ETIOLOGIES},
            "max_consultations": {"all": draw(st.integers(1, 6))},
            "care_seeking_days": {"spontaneous": {"family": "gamma", "mean": draw(st.floats(0.5, 20.0)),
                                                  "sd": draw(st.floats(0.0, 20.0))}},
        },
        "clinical": {
            "ebp_first_success": {e: draw(PROB) for e in EBP_SUCCESS_KEYS},
            "ebp_repeat_success": {e: draw(PROB) for e in EBP_SUCCESS_KEYS},
            "ebp_max_blind": {e: draw(st.integers(0, 4)) for e in ETIOLOGIES if e in IATROGENIC},
            "early_ebp": {"threshold_days": draw(st.floats(0.0, 5.0)),
                          "failure_odds_ratio": draw(st.floats(0.2, 10.0))},
            "late_treatment": {"threshold_days": draw(st.floats(10.0, 200.0)),
                               "odds_ratio": draw(st.floats(0.1, 3.0))},
            "targeted_patch_success": {"all": draw(PROB)},
            "embolization_success": {"all": draw(PROB)},
            "spinal_surgery_direct_repair_probability": {"all": draw(PROB)},
            "recurrence_probability": {k: draw(st.floats(0.0, 0.5)) for k in
                                       ("after_iatrogenic_ebp", "after_spontaneous_patch", "after_surgery",
                                        "after_embolization")},
            "recurrence_days": {"all": {"family": "uniform", "low": 1.0, "high": draw(st.floats(1.0, 200.0))}},
            "rih_probability": {"after_spontaneous_sealing": draw(PROB)},
        },
    }
    low = {"profile": "low_volume", "resources": draw(resources()),
           "offers_leak_surgery": draw(st.booleans()), "offers_targeted_patch": draw(st.booleans()),
           "recognition_probability_spontaneous": draw(PROB), "rih_recognition_probability": draw(PROB),
           "referral_delay_days": {"family": "triangular", "low": 0.0, "mode": draw(st.floats(0.0, 5.0)),
                                   "high": 30.0},
           "blind_ebp_before_imaging": draw(st.integers(0, 4)),
           "blind_ebp_after_negative_imaging": draw(st.integers(0, 4)),
           "early_spine_mri": draw(st.booleans())}
    exp = {"profile": "experienced", "resources": draw(resources()),
           "imaging_technique": draw(st.sampled_from(IMAGING_TECHNIQUES)),
           "repeat_imaging_technique": draw(st.sampled_from(REFINED_TECHNIQUES)),
           "reimage_after_failed_definitive": draw(st.booleans()),
           "repeat_refined_imaging": draw(st.integers(0, 2))}
    topology = draw(st.sampled_from(["experienced", "low_volume", "referring", "split"]))
    if topology == "experienced":
        raw["centers"] = {"a": {**exp, "catchment_share": 1.0}}
    elif topology == "low_volume":
        raw["centers"] = {"a": {**low, "catchment_share": 1.0}}
    else:
        share = 1.0 if topology == "referring" else draw(st.floats(0.0, 1.0))
        raw["centers"] = {"a": {**low, "catchment_share": share, "refers_to": "b"},
                          "b": {**exp, "catchment_share": 1.0 - share}}
    return raw


def run(raw: dict[str, Any], seed: int) -> ReplicationResult:
    return run_replication(build_scenario(raw, "<property>"), seed, 0)


# ------------------------------------------------------------------------------------------------ invariants
@settings(max_examples=100, deadline=None)
@given(raw=scenarios(), seed=SEED)
def test_patient_table_invariants(raw: dict[str, Any], seed: int):
    result = run(raw, seed)
    p = result.patients
    horizon = raw["run"]["horizon_days"]
    # every patient exactly once, with one known final state
    assert p["patient_id"].is_unique and (p["patient_id"].to_numpy() == np.arange(len(p))).all()
    assert p["final_state"].isin(FINAL_STATES).all()
    # resolved patients have a resolution day, and only they do
    assert p["resolved_day"].notna().eq(p["final_state"].isin(["resolved", "resolved_without_care"])).all()
    assert p.loc[p["final_state"] == "persistent", "persistent_reason"].notna().all()
    # times are ordered wherever both are known, and within the horizon
    for a, b in itertools.combinations(TIME_ORDER, 2):
        both = p[a].notna() & p[b].notna()
        assert (p.loc[both, a] <= p.loc[both, b] + 1e-9).all(), (a, b)
    for col in TIME_ORDER[1:]:
        assert (p[col].dropna() <= horizon + 1e-9).all(), col
        assert (p[col].dropna() >= p.loc[p[col].notna(), "onset_day"] - 1e-9).all(), col
    # no negative durations, waits or counts
    assert (p["waiting_days"].dropna() >= 0).all() and (p["symptom_days"] >= -1e-9).all()
    assert (p["rih_days"].dropna() >= 0).all()
    assert (p["symptom_days"] <= horizon - p["onset_day"] + 1e-9).all()
    counts = [c for c in p.columns if c.startswith("n_")]
    assert (p[counts] >= 0).all().all()
    res = result.resources
    assert (res["mean_wait_days"].dropna() >= 0).all() and (res["utilization"] <= 1 + 1e-9).all()
    assert (res["n_served"] + res["n_abandoned"] + res["n_waiting_at_horizon"] <= res["n_arrived"]).all()


@settings(max_examples=25, deadline=None)
@given(raw=scenarios(), seed=SEED)
def test_same_seed_same_tables(raw: dict[str, Any], seed: int):
    a, b = run(raw, seed), run(copy.deepcopy(raw), seed)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    pd.testing.assert_frame_equal(a.resources, b.resources)


# ------------------------------------------------------------------------------------------------ monotonicity
def _paired_excess(high: np.ndarray, low: np.ndarray) -> tuple[float, float]:
    """Mean of the paired difference high - low, and its noise allowance (3 standard errors)."""
    d = high - low
    if len(d) == 0:
        return 0.0, 0.0
    se = float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
    return float(d.mean()), 3.0 * se


@settings(max_examples=60, deadline=None)
@given(raw=scenarios(max_rate=120.0), seed=SEED, data=st.data())
def test_more_capacity_never_lengthens_the_mean_wait_beyond_noise(raw: dict[str, Any], seed: int, data):
    """Common random numbers: same seed, capacity c vs c + 1 on one resource of one center.

    Not exact: the extra server changes when patients reach later steps, whether a leak closes on its own while
    the patient waits (she then leaves the queue), and who is still queued at the horizon. Each patient's total
    waiting time is compared, paired, within 3 standard errors of the paired difference (plus 0.05 days).
    """
    center = data.draw(st.sampled_from(sorted(raw["centers"])))
    resource = data.draw(st.sampled_from(RESOURCES))
    scenario = build_scenario(raw, "<property>")
    c = scenario.center(center).resources[resource].capacity
    more = copy.deepcopy(raw)
    more["centers"][center].setdefault("resources", {}).setdefault(resource, {})["capacity"] = c + 1
    base, plus = run(raw, seed), run(more, seed)
    waits_base = base.patients["waiting_days"].fillna(0.0).to_numpy()
    waits_plus = plus.patients["waiting_days"].fillna(0.0).to_numpy()
    excess, noise = _paired_excess(waits_plus, waits_base)
    assert excess <= noise + 0.05, (center, resource, c, excess, noise)
    # and at the resource itself, the mean wait per use does not grow beyond noise either
    def at(r: ReplicationResult) -> float:
        row = r.resources[(r.resources["center"] == center) & (r.resources["resource"] == resource)].iloc[0]
        return 0.0 if math.isnan(row["mean_wait_days"]) else float(row["mean_wait_days"])
    assert at(plus) <= at(base) + max(noise, 0.05) + 0.1 * at(base)


def _with_better_patches(raw: dict[str, Any], delta: float) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for table in ("ebp_first_success", "ebp_repeat_success"):
        out["clinical"][table] = {k: min(1.0, v + delta) for k, v in out["clinical"][table].items()}
    return out


@settings(max_examples=60, deadline=None)
@given(raw=scenarios(max_rate=120.0), seed=SEED, delta=st.floats(0.05, 0.5))
def test_better_blood_patches_do_not_add_surgeries_on_average(raw: dict[str, Any], seed: int, delta: float):
    """Higher EBP success never increases surgeries per patient, within noise, on common random numbers.

    Why only on average: with CRN a patch succeeds when the patient's uniform for that attempt is below p, so a
    higher p can only turn failures into successes, and on her own a patient then reaches surgery no more often.
    But (1) after an EBP success the leak may recur (recurrence after EBP is likelier than after surgery) and the
    new episode of the ladder can end in theatre; (2) fewer patches free the procedure room and the clinic, so
    other patients reach theatre sooner and more of them before the horizon; (3) the late-surgery multiplier
    depends on the day of surgery. So the paired per-patient difference may be positive in a sample; it must stay
    within 3 standard errors (plus 0.005 surgeries per patient). The exact version is the next test.
    """
    base, better = run(raw, seed), run(_with_better_patches(raw, delta), seed)
    excess, noise = _paired_excess(better.patients["n_surgery"].to_numpy(float),
                                   base.patients["n_surgery"].to_numpy(float))
    assert excess <= noise + 0.005, (excess, noise)


@settings(max_examples=60, deadline=None)
@given(raw=scenarios(), seed=SEED, delta=st.floats(0.01, 0.5))
def test_better_blood_patches_never_add_a_surgery_to_any_patient_without_queues_or_recurrence(
        raw: dict[str, Any], seed: int, delta: float):
    """The exact statement: with unlimited capacity (no patient affects another) and no recurrence, each
    patient's path up to any surgery is identical in both scenarios unless a patch now succeeds, so no patient has
    more surgeries when blood patches work better."""
    raw = copy.deepcopy(raw)
    raw["clinical"]["recurrence_probability"] = dict.fromkeys(raw["clinical"]["recurrence_probability"], 0.0)
    for body in raw["centers"].values():
        body["resources"] = {r: {"capacity": 100_000} for r in RESOURCES}
    base, better = run(raw, seed), run(_with_better_patches(raw, delta), seed)
    more = better.patients["n_surgery"].to_numpy() > base.patients["n_surgery"].to_numpy()
    assert not more.any(), better.patients[more].head()
