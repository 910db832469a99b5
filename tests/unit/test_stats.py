"""sim.analysis.stats: the per-replication metrics on numpy arrays equal, bit for bit, the plain pandas formulas they
replaced (kept here as the executable specification)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.analysis.stats import (
    ECONOMIC_METRICS,
    PROCEDURE_COLUMNS,
    is_share,
    patient_metrics,
    replication_metrics,
    share_interval,
    summarize,
    t_interval,
)
from sim.analysis.survival import cumulative_incidence, km_median_days, restricted_mean
from sim.config.parameters import ETIOLOGIES
from sim.config.scenario import load_scenario
from sim.runs.replication import run_replication
from tests.helpers import EXPERIENCED, LOW_VOLUME, PERIOD, ROOT


def reference_patient_metrics(p: pd.DataFrame, horizon_days: float) -> dict[str, float]:
    """The metrics as first written, with pandas (one filtered frame per group)."""
    out: dict[str, float] = {"n_patients": float(len(p))}
    out["share_resolved_without_care"] = float((p["final_state"] == "resolved_without_care").mean()) \
        if len(p) else math.nan
    care = p[p["presented_day"].notna()]
    n = len(care)
    out["n_presented"] = float(n)
    diag = (care["diagnosed_day"] - care["onset_day"]).dropna().to_numpy()
    out["share_diagnosed"] = float(len(diag) / n) if n else math.nan
    out["diagnosis_delay_mean_days"] = float(np.mean(diag)) if diag.size else math.nan
    out["diagnosis_delay_median_days"] = float(np.median(diag)) if diag.size else math.nan
    resolved = care[care["final_state"] == "resolved"]
    ttr = (resolved["resolved_day"] - resolved["onset_day"]).to_numpy()
    out["time_to_resolution_mean_days"] = float(np.mean(ttr)) if ttr.size else math.nan
    out["time_to_resolution_median_days"] = float(np.median(ttr)) if ttr.size else math.nan
    onset = care["onset_day"].to_numpy()
    is_resolved = care["first_resolved_day"].notna().to_numpy()
    waited = np.where(is_resolved, care["first_resolved_day"].to_numpy() - onset, horizon_days - onset)
    a_year = n > 0 and (horizon_days - onset).max() >= 365
    out["time_to_resolution_rmst_365_days"] = restricted_mean(waited, is_resolved, 365) if a_year else math.nan
    out["time_to_resolution_km_median_days"] = km_median_days(waited, is_resolved) if n else math.nan
    diagnosed = care["diagnosed_day"].notna().to_numpy()
    closed = (care["resolved_by"] == "natural_course").to_numpy() & ~diagnosed
    cause = np.where(diagnosed, 1, np.where(closed, 2, 0))
    first = np.where(diagnosed, care["diagnosed_day"].to_numpy() - onset,
                     np.where(closed, care["resolved_day"].to_numpy() - onset, horizon_days - onset))
    out["diagnosis_cif_365_days"] = cumulative_incidence(first, cause, 1, 365) if a_year else math.nan
    for days in (90, 365):
        eligible = care[care["onset_day"] <= horizon_days - days]
        ok = (eligible["final_state"] == "resolved") & (eligible["resolved_day"] - eligible["onset_day"] <= days)
        out[f"share_resolved_by_{days}_days"] = float(ok.mean()) if len(eligible) else math.nan
    for metric, column in PROCEDURE_COLUMNS.items():
        out[metric] = float(care[column].mean()) if n else math.nan
    for state in ("persistent", "in_pathway_at_horizon"):
        out[f"share_{state}"] = float((care["final_state"] == state).mean()) if n else math.nan
    for flag in ("rih", "recurred", "referred", "leak_localized"):
        out[f"share_{flag}"] = float(care[flag].mean()) if n else math.nan
    out["symptom_days_mean"] = float(care["symptom_days"].mean()) if n else math.nan
    sealed = care[(care["resolved_by"].isin(["ebp", "targeted_patch", "fibrin_patch", "surgery", "durotomy_repair",
                                            "embolization"]) | care["recurred"])
                  & (care["etiology"] == "spontaneous")]
    out["share_residual_symptoms"] = float(sealed["residual_symptoms"].mean()) if len(sealed) else math.nan
    out["residual_days_mean"] = float(care["residual_days"].fillna(0.0).mean()) if n else math.nan
    complication = care[["complication_intracranial_bleed", "complication_neurological_deficit",
                         "complication_embolization_pain"]].any(axis=1)
    out["share_complication"] = float(complication.mean()) if n else math.nan
    spontaneous = p[p["etiology"] == "spontaneous"]
    leak = spontaneous[["complication_subdural_haematoma", "complication_superficial_siderosis"]].any(axis=1)
    out["share_leak_complication"] = float(leak.mean()) if len(spontaneous) else math.nan
    out["waiting_days_mean"] = float(care["waiting_days"].mean()) if n else math.nan
    ill = np.nan_to_num(care["symptom_days"].to_numpy(dtype=float)) + \
        np.nan_to_num(care["residual_days"].to_numpy(dtype=float))
    months = float((horizon_days - onset).sum()) / (365.25 / 12)
    out["symptom_days_per_month"] = float(ill.sum()) / months if n and months > 0 else math.nan
    if "cost" in p:
        for metric, column in ECONOMIC_METRICS.items():
            out[metric] = float(p[column].mean()) if len(p) else math.nan
    return out


def reference_replication_metrics(patients: pd.DataFrame, resources: pd.DataFrame, horizon: float) -> pd.DataFrame:
    rep = int(patients["replication"].iloc[0]) if len(patients) else int(resources["replication"].iloc[0])
    p = patients[patients["counted"]]
    rows = []
    groups = [("all", p)] + [(e, p[p["etiology"] == e]) for e in ETIOLOGIES]
    homes = sorted(p["home_center"].unique())
    if len(homes) > 1 or resources["center"].nunique() > 1:
        groups += [(f"home:{c}", p[p["home_center"] == c]) for c in homes]
        groups += [(f"home:{c}/spontaneous", p[(p["home_center"] == c) & (p["etiology"] == "spontaneous")])
                   for c in homes]
    for group, frame in groups:
        for metric, value in reference_patient_metrics(frame, horizon).items():
            rows.append((rep, metric, group, value))
    for r in resources.itertuples(index=False):
        rows.append((rep, "resource_mean_wait_days", f"{r.center}/{r.resource}", float(r.mean_wait_days)))
        rows.append((rep, "resource_utilization", f"{r.center}/{r.resource}", float(r.utilization)))
        rows.append((rep, "resource_mean_list_length", f"{r.center}/{r.resource}", float(r.mean_list_length)))
    for resource, g in resources.groupby("resource", sort=False):
        served = g["n_served"].to_numpy(dtype=float)
        waits = np.nan_to_num(g["mean_wait_days"].to_numpy(dtype=float))
        pooled = float((waits * served).sum() / served.sum()) if served.sum() else math.nan
        rows.append((rep, "resource_mean_wait_days", f"all centers/{resource}", pooled))
    return pd.DataFrame(rows, columns=["replication", "metric", "group", "value"])


CASES = [
    (EXPERIENCED, {}),
    (LOW_VOLUME, {**PERIOD, "run.horizon_days": 400}),  # short: censoring, missing days, empty groups of shares
    (ROOT / "scenarios" / "regional_network.toml", {"run.warmup_days": 200}),  # homes, warm-up left out
    (LOW_VOLUME, {**PERIOD, "run.horizon_days": 20}),  # tiny: groups with nobody in care
]


@pytest.mark.parametrize(("path", "overrides"), CASES)
def test_metrics_equal_the_pandas_formulas_bit_for_bit(path, overrides):
    s = load_scenario(path, overrides=overrides)
    for rep in (0, 1):
        r = run_replication(s, 9, rep)
        fast = replication_metrics(r.patients, r.resources, s.horizon_days)
        slow = reference_replication_metrics(r.patients, r.resources, s.horizon_days)
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)


def test_patient_metrics_of_an_empty_group_are_missing_not_errors():
    s = load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 100})
    p = run_replication(s, 1, 0).patients.iloc[0:0]
    got, want = patient_metrics(p, 100.0), reference_patient_metrics(p, 100.0)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert (math.isnan(value) and math.isnan(got[key])) or got[key] == value, key


def test_t_quantile_is_scipy_stats_t_ppf():
    from scipy import stats as sps

    from sim.analysis.stats import t_quantile

    for df in [*range(1, 60), 100, 1000, 10**5]:
        for q in (0.5, 0.9, 0.95, 0.975, 0.995, 0.025):
            assert t_quantile(q, df) == float(sps.t.ppf(q, df))


@given(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=3))
def test_every_share_interval_lies_in_zero_one_and_holds_the_mean(values):
    """At 2 and 3 replications the t interval of a share near 0 left [0, 1] (-0.4% to 14.2% in a report)."""
    mean, _, lo, hi = share_interval(np.array(values))
    if math.isnan(lo):
        return
    assert 0.0 <= lo <= mean <= hi <= 1.0


def test_the_share_interval_is_the_t_interval_where_a_share_is_far_from_zero_and_one():
    rng = np.random.default_rng(4)
    values = rng.normal(0.5, 0.01, 30)
    _, _, lo_t, hi_t = t_interval(values)
    mean, _, lo, hi = share_interval(values)
    assert lo == pytest.approx(lo_t, abs=2e-5) and hi == pytest.approx(hi_t, abs=2e-5)
    # near zero the interval is asymmetric, longer towards the middle
    mean, _, lo, hi = share_interval(np.array([0.0, 0.01, 0.03]))
    assert 0.0 < lo < mean < hi < 1.0 and hi - mean > mean - lo
    assert share_interval(np.array([0.0, 0.0, 0.0]))[2:] == (0.0, 0.0)


def test_summary_intervals_follow_the_scale_of_each_metric():
    per_rep = pd.DataFrame({"replication": [0, 1, 0, 1], "metric": ["share_persistent"] * 2 + ["n_patients"] * 2,
                            "group": ["all"] * 4, "value": [0.0, 0.06, 100.0, 300.0]})
    s = summarize(per_rep).set_index("metric")
    assert s.loc["share_persistent", "ci95_low"] >= 0.0
    assert s.loc["n_patients", "ci95_low"] < 0.0  # a count keeps the plain t interval
    assert is_share("resource_utilization") and not is_share("symptom_days_mean")


def test_symptom_days_per_month_is_a_rate_no_month_can_exceed():
    """Days ill per month of follow-up: at most every day of a month, and the patients' days over their months."""
    from sim.analysis.stats import MONTH_DAYS, patient_metrics

    scenario = load_scenario(LOW_VOLUME)
    p = run_replication(scenario, root_seed=2, replication=0).patients
    value = patient_metrics(p, scenario.horizon_days)["symptom_days_per_month"]
    care = p[p["presented_day"].notna()]
    ill = care["symptom_days"].fillna(0).sum() + care["residual_days"].fillna(0).sum()
    assert value == pytest.approx(ill / ((scenario.horizon_days - care["onset_day"]).sum() / MONTH_DAYS))
    assert 0.0 < value <= MONTH_DAYS


def test_a_patient_table_from_before_the_counted_column_counts_everyone_after_the_warm_up():
    """Run folders written before `counted` existed: the statistics fall back to the warm-up rule."""
    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 900, "run.warmup_days": 200})
    r = run_replication(s, 3, 0)
    new = replication_metrics(r.patients, r.resources, s.horizon_days)
    old = replication_metrics(r.patients.drop(columns="counted"), r.resources, s.horizon_days)
    pd.testing.assert_frame_equal(new, old)
    assert new.set_index(["metric", "group"]).loc[("n_patients", "all"), "value"] == (~r.patients["in_warmup"]).sum()
