"""Outcome metrics per replication, and summaries across replications (mean, sd, t-based 95% CI)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from sim.parameters import ETIOLOGIES

PROCEDURE_COLUMNS = {
    "ebp_per_patient": "n_ebp",
    "targeted_patch_per_patient": "n_targeted_patch",
    "fibrin_patch_per_patient": "n_fibrin_patch",
    "surgery_per_patient": "n_surgery",
    "embolization_per_patient": "n_embolization",
    "spinal_imaging_per_patient": "n_spinal_imaging",
    "consultations_per_patient": "n_consultations",
}
ECONOMIC_METRICS = {"cost_per_patient": "cost", "qaly_per_patient": "qaly", "qaly_loss_per_patient": "qaly_loss"}
# Metrics whose confidence interval drives `--reps auto` and headline comparisons.
PRIMARY_METRICS: tuple[str, ...] = (
    "diagnosis_delay_mean_days",
    "time_to_resolution_mean_days",
    "symptom_days_mean",
    "share_resolved_by_365_days",
    "ebp_per_patient",
)
MIN_REPS = 3  # smallest replication count the stopping rule considers
LOOK_AHEAD = 5  # Hoad et al.'s kLimit: the criterion must keep holding for this many more replications


def _nan_stat(values: np.ndarray, fn) -> float:
    return float(fn(values)) if values.size else math.nan


def patient_metrics(p: pd.DataFrame, horizon_days: float) -> dict[str, float]:
    """Metrics of one group of patients (all, or one etiology) of one replication.

    Care metrics use the patients who reached care (presented within the horizon). Shares resolved by X days
    use only patients whose onset lies at least X days before the horizon, so censoring does not bias them.
    """
    out: dict[str, float] = {"n_patients": float(len(p))}
    out["share_resolved_without_care"] = float((p["final_state"] == "resolved_without_care").mean()) \
        if len(p) else math.nan
    care = p[p["presented_day"].notna()]
    n = len(care)
    out["n_presented"] = float(n)
    diag = (care["diagnosed_day"] - care["onset_day"]).dropna().to_numpy()
    out["share_diagnosed"] = float(len(diag) / n) if n else math.nan
    out["diagnosis_delay_mean_days"] = _nan_stat(diag, np.mean)
    out["diagnosis_delay_median_days"] = _nan_stat(diag, np.median)
    resolved = care[care["final_state"] == "resolved"]
    ttr = (resolved["resolved_day"] - resolved["onset_day"]).to_numpy()
    out["time_to_resolution_mean_days"] = _nan_stat(ttr, np.mean)
    out["time_to_resolution_median_days"] = _nan_stat(ttr, np.median)
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
    out["waiting_days_mean"] = float(care["waiting_days"].mean()) if n else math.nan
    if "cost" in p:  # health economics (sim/economics.py): over all patients, as a cohort from onset to horizon
        for metric, column in ECONOMIC_METRICS.items():
            out[metric] = float(p[column].mean()) if len(p) else math.nan
    return out


def replication_metrics(patients: pd.DataFrame, resources: pd.DataFrame, horizon_days: float) -> pd.DataFrame:
    """Tidy table [replication, metric, group, value] of one replication (warm-up patients left out)."""
    rep = int(patients["replication"].iloc[0]) if len(patients) else int(resources["replication"].iloc[0])
    p = patients[~patients["in_warmup"]]
    rows: list[tuple[int, str, str, float]] = []
    groups = [("all", p)] + [(e, p[p["etiology"] == e]) for e in ETIOLOGIES]
    homes = sorted(p["home_center"].unique())
    if len(homes) > 1:  # the postcode lottery: does where you live change your outcome?
        groups += [(f"home:{c}", p[p["home_center"] == c]) for c in homes]
        groups += [(f"home:{c}/spontaneous", p[(p["home_center"] == c) & (p["etiology"] == "spontaneous")])
                   for c in homes]
    for group, frame in groups:
        for metric, value in patient_metrics(frame, horizon_days).items():
            rows.append((rep, metric, group, value))
    for r in resources.itertuples(index=False):
        group = f"{r.center}/{r.resource}"
        rows.append((rep, "resource_mean_wait_days", group, float(r.mean_wait_days)))
        rows.append((rep, "resource_utilization", group, float(r.utilization)))
    # Pooled over centers, so that scenarios with different centers can still be compared per resource.
    for resource, g in resources.groupby("resource", sort=False):
        served = g["n_served"].to_numpy(dtype=float)
        waits = np.nan_to_num(g["mean_wait_days"].to_numpy(dtype=float))
        pooled_wait = float((waits * served).sum() / served.sum()) if served.sum() else math.nan
        rows.append((rep, "resource_mean_wait_days", f"all centers/{resource}", pooled_wait))
    return pd.DataFrame(rows, columns=["replication", "metric", "group", "value"])


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sd, and the two ends of the t-based confidence interval (nan where undefined)."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return (math.nan,) * 4
    mean = float(v.mean())
    if v.size == 1:
        return mean, math.nan, math.nan, math.nan
    sd = float(v.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, v.size - 1)) * sd / math.sqrt(v.size)
    return mean, sd, mean - half, mean + half


def summarize(per_rep: pd.DataFrame) -> pd.DataFrame:
    """Across replications: one row per (metric, group) with mean, sd, 95% CI and the replication count."""
    rows = []
    for (metric, group), g in per_rep.groupby(["metric", "group"], sort=False):
        values = g["value"].to_numpy(dtype=float)
        mean, sd, lo, hi = t_interval(values)
        rows.append((metric, group, mean, sd, lo, hi, int(np.sum(~np.isnan(values)))))
    return pd.DataFrame(rows, columns=["metric", "group", "mean", "sd", "ci95_low", "ci95_high",
                                       "n_replications"])


def summary_table(per_rep: pd.DataFrame, across: pd.DataFrame | None = None) -> pd.DataFrame:
    """summary.csv: per-replication rows (level=replication) followed by across-replication rows (`across`:
    `summarize(per_rep)` when the caller already has it, which saves computing it twice)."""
    reps = per_rep.assign(level="replication")
    across = (summarize(per_rep) if across is None else across).assign(level="across")
    cols = ["level", "metric", "group", "replication", "value", "mean", "sd", "ci95_low", "ci95_high",
            "n_replications"]
    return pd.concat([reps, across], ignore_index=True).reindex(columns=cols)


def relative_half_widths(values: dict[str, np.ndarray], n: int) -> dict[str, float]:
    """95% CI half-width over |mean| of each metric's first n replication values."""
    out = {}
    for metric, v in values.items():
        mean, _, lo, hi = t_interval(v[:n])
        out[metric] = (hi - lo) / 2 / abs(mean) if mean else (0.0 if hi == lo else math.inf)
    return out


def replications_needed(values: dict[str, np.ndarray], precision: float, look_ahead: int = LOOK_AHEAD,
                        min_reps: int = MIN_REPS) -> int | None:
    """Confidence-interval replication rule (Hoad, Robinson & Davies 2010): the smallest n >= min_reps at which
    every metric's relative half-width is <= precision and stays so for the next f(n) replications, where
    f(n) = look_ahead for n <= 100 and look_ahead * n / 100 beyond. None if the values seen do not settle it."""
    available = min(len(v) for v in values.values())
    for n in range(min_reps, available + 1):
        f = look_ahead if n <= 100 else math.floor(look_ahead * n / 100)
        if n + f > available:
            return None
        if all(all(w <= precision for w in relative_half_widths(values, m).values()) for m in range(n, n + f + 1)):
            return n
    return None


PATIENT_QUANTITIES = {
    "diagnosis_delay_days": ("diagnosed_day", "onset_day"),
    "time_to_resolution_days": ("resolved_day", "onset_day"),
    "symptom_days": ("symptom_days", None),
    "waiting_days": ("waiting_days", None),
    "n_consultations": ("n_consultations", None),
    "n_ebp": ("n_ebp", None),
}
PERCENTILES = (5, 25, 50, 75, 95)


def distribution_table(patients: pd.DataFrame, per_rep: pd.DataFrame) -> pd.DataFrame:
    """Outcome distributions: percentiles across patients (pooled over replications, patients who reached care)
    and across replications (of each replication-level metric), by group (all, etiology, center)."""
    rows = []
    care = patients[patients["presented_day"].notna() & ~patients["in_warmup"]]
    groups = [("all", "all", care)]
    groups += [("etiology", str(k), g) for k, g in care.groupby("etiology", sort=True)]
    groups += [("center", str(k), g) for k, g in care.groupby("center", sort=True)]
    for group_by, group, g in groups:
        for name, (col, minus) in PATIENT_QUANTITIES.items():
            v = g[col].to_numpy(dtype=float) - (g[minus].to_numpy(dtype=float) if minus else 0.0)
            v = v[~np.isnan(v)]
            q = np.percentile(v, PERCENTILES) if v.size else [math.nan] * len(PERCENTILES)
            rows.append(("patients", name, group_by, group, int(v.size), *q))
    rows += replication_distribution_rows(per_rep)
    return pd.DataFrame(rows, columns=["across", "quantity", "group_by", "group", "n",
                                       *(f"p{p}" for p in PERCENTILES)])


def replication_distribution_rows(per_rep: pd.DataFrame) -> list[tuple]:
    """The `across == "replications"` rows of `distribution_table`: percentiles of each replication-level
    metric (separate so that `sim.summaries` can build the table without the patient-level rows)."""
    rows = []
    for (metric, group), g in per_rep.groupby(["metric", "group"], sort=False):
        v = g["value"].to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        q = np.percentile(v, PERCENTILES) if v.size else [math.nan] * len(PERCENTILES)
        rows.append(("replications", metric, "group", group, int(v.size), *q))
    return rows
