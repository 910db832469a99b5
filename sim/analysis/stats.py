"""Outcome metrics per replication, and summaries across replications (mean, sd, t-based 95% CI)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy import special

from sim.analysis.metrics import CIF_DAYS, METRICS, RMST_TAU_DAYS
from sim.analysis.planning import MONTH_DAYS
from sim.analysis.survival import cumulative_incidence, km_median_days, restricted_mean
from sim.config.parameters import ETIOLOGIES
from sim.model import clinical as cl
from sim.model.complications import COLUMNS as COMPLICATION_COLUMNS
from sim.model.complications import LEAK_COLUMNS as LEAK_COMPLICATION_COLUMNS
from sim.model.records import counted_rows

PROCEDURE_COLUMNS = {
    "ebp_per_patient": "n_ebp",
    "targeted_patch_per_patient": "n_targeted_patch",
    "fibrin_patch_per_patient": "n_fibrin_patch",
    "surgery_per_patient": "n_surgery",
    "embolization_per_patient": "n_embolization",
    "spinal_imaging_per_patient": "n_spinal_imaging",
    "consultations_per_patient": "n_consultations",
}
ECONOMIC_METRICS = {"cost_per_patient": "cost", "qaly_per_patient": "qaly", "qaly_loss_per_patient": "qaly_loss",
                    "work_days_lost_per_patient": "work_days_lost",
                    "productivity_cost_per_patient": "productivity_cost"}
# Metrics whose confidence interval drives `--reps auto` and headline comparisons.
PRIMARY_METRICS: tuple[str, ...] = (
    "diagnosis_cif_365_days",
    "time_to_resolution_rmst_365_days",
    "symptom_days_mean",
    "share_resolved_by_365_days",
    "ebp_per_patient",
)
MIN_REPS = 3  # smallest replication count the stopping rule considers
LOOK_AHEAD = 5  # Hoad et al.'s kLimit: the criterion must keep holding for this many more replications


def _nan_stat(values: np.ndarray, fn) -> float:
    return float(fn(values)) if values.size else math.nan


# Patient-table columns the metrics read.
_FLOAT_COLUMNS = ("onset_day", "presented_day", "diagnosed_day", "resolved_day", "first_resolved_day", "symptom_days",
                  "waiting_days")
_COUNT_COLUMNS = tuple(dict.fromkeys(PROCEDURE_COLUMNS.values()))
_FLAG_COLUMNS = ("rih", "recurred", "referred", "leak_localized")


class _Columns:
    """The columns of one replication's patient table that the metrics read, as numpy arrays, taken once.

    The metrics were first written with pandas, one filtered frame per group; with a dozen groups and a few
    thousand patients that cost more than simulating them. These are the same formulas on arrays and masks,
    with pandas' own arithmetic kept where it matters for the last bit (a mean that skips missing values sums
    with them set to 0), so the values are identical (tests/unit/test_stats.py holds them to the pandas
    version)."""

    def __init__(self, p: pd.DataFrame) -> None:
        self.n = len(p)
        self.float = {c: p[c].to_numpy(dtype=np.float64) for c in _FLOAT_COLUMNS}
        self.count = {c: p[c].to_numpy(dtype=np.int64) for c in _COUNT_COLUMNS}
        self.flag = {c: p[c].to_numpy(dtype=bool) for c in _FLAG_COLUMNS}
        final = p["final_state"].to_numpy(dtype=object)
        self.state = {s: final == s for s in ("resolved_without_care", "resolved", "persistent",
                                              "in_pathway_at_horizon")}
        # A table written before a column existed (a report of an older run folder) has the metrics it can.
        self.economics = {m: p[c].to_numpy(dtype=np.float64) for m, c in ECONOMIC_METRICS.items() if c in p} \
            if "cost" in p else None
        self.care = ~np.isnan(self.float["presented_day"])
        resolved_by = p["resolved_by"].to_numpy(dtype=object)
        self.natural = resolved_by == "natural_course"
        # A treatment sealed a spontaneous leak at least once: resolved by one, or recurred (only a treatment's
        # success recurs). Residual symptoms are modelled after spontaneous leaks only.
        self.sealed = (np.isin(resolved_by, cl.TREATMENTS) | self.flag["recurred"]) & (
            p["etiology"].to_numpy(dtype=object) == "spontaneous")
        self.residual = p["residual_symptoms"].to_numpy(dtype=bool) if "residual_symptoms" in p else None
        self.residual_days = p["residual_days"].to_numpy(dtype=np.float64) if "residual_days" in p else None
        flags = [p[c].to_numpy(dtype=bool) for c in COMPLICATION_COLUMNS if c in p]
        self.complication = np.logical_or.reduce(flags) if len(flags) == len(COMPLICATION_COLUMNS) else None
        self.spontaneous = p["etiology"].to_numpy(dtype=object) == "spontaneous"
        leak = [p[c].to_numpy(dtype=bool) for c in LEAK_COMPLICATION_COLUMNS if c in p]
        self.leak_complication = np.logical_or.reduce(leak) if len(leak) == len(LEAK_COMPLICATION_COLUMNS) else None


def _mean(values: np.ndarray) -> float:
    """pandas' Series.mean: missing values skipped (set to 0 in the sum), nan when none is left."""
    if values.dtype != np.float64:
        return float(values.sum(dtype=np.float64) / values.size) if values.size else math.nan
    missing = np.isnan(values)
    count = values.size - int(missing.sum())
    if not count:
        return math.nan
    if count != values.size:
        values = np.where(missing, 0.0, values)
    return float(values.sum() / count)


def patient_metrics(p: pd.DataFrame, horizon_days: float) -> dict[str, float]:
    """Metrics of one group of patients (all, or one etiology) of one replication.

    Care metrics use the patients who reached care (presented within the horizon). Shares resolved by X days
    use only patients whose onset lies at least X days before the horizon, so censoring does not bias them.
    """
    return _group_metrics(_Columns(p), np.ones(len(p), dtype=bool), horizon_days)


def _group_metrics(c: _Columns, rows: np.ndarray, horizon_days: float) -> dict[str, float]:
    """patient_metrics of the patients where `rows` is true."""
    n_all = int(rows.sum())
    out: dict[str, float] = {"n_patients": float(n_all)}
    out["share_resolved_without_care"] = _mean(c.state["resolved_without_care"][rows]) if n_all else math.nan
    care = rows & c.care
    n = int(care.sum())
    out["n_presented"] = float(n)
    onset = c.float["onset_day"][care]
    diag = c.float["diagnosed_day"][care] - onset
    diag = diag[~np.isnan(diag)]
    out["share_diagnosed"] = float(len(diag) / n) if n else math.nan
    out["diagnosis_delay_mean_days"] = _nan_stat(diag, np.mean)
    out["diagnosis_delay_median_days"] = _nan_stat(diag, np.median)
    resolved = c.state["resolved"][care]
    resolved_day = c.float["resolved_day"][care]
    ttr = resolved_day[resolved] - onset[resolved]
    out["time_to_resolution_mean_days"] = _nan_stat(ttr, np.mean)
    out["time_to_resolution_median_days"] = _nan_stat(ttr, np.median)
    # Time to the first resolution, with those never resolved censored at the horizon (sim/analysis/metrics.py).
    follow_up = horizon_days - onset
    first_day = c.float["first_resolved_day"][care]
    ever = ~np.isnan(first_day)
    to_resolution = np.where(ever, first_day - onset, follow_up)
    # Over a year only where some patient could be followed for a year (else it would be extrapolated).
    a_year = n > 0 and float(follow_up.max()) >= RMST_TAU_DAYS
    out["time_to_resolution_rmst_365_days"] = restricted_mean(to_resolution, ever, RMST_TAU_DAYS) if a_year \
        else math.nan
    out["time_to_resolution_km_median_days"] = km_median_days(to_resolution, ever) if n else math.nan
    # Diagnosis, with a leak closing on its own before any diagnosis as the competing event.
    diagnosed_day = c.float["diagnosed_day"][care]
    was_diagnosed = ~np.isnan(diagnosed_day)
    closed_first = c.natural[care] & ~was_diagnosed
    cause = np.where(was_diagnosed, 1, np.where(closed_first, 2, 0))
    to_event = np.where(was_diagnosed, diagnosed_day - onset, np.where(closed_first, resolved_day - onset, follow_up))
    out["diagnosis_cif_365_days"] = cumulative_incidence(to_event, cause, 1, CIF_DAYS) \
        if n and float(follow_up.max()) >= CIF_DAYS else math.nan
    for days in (90, 365):
        eligible = onset <= horizon_days - days
        ok = resolved[eligible] & (resolved_day[eligible] - onset[eligible] <= days)
        out[f"share_resolved_by_{days}_days"] = _mean(ok) if ok.size else math.nan
    for metric, column in PROCEDURE_COLUMNS.items():
        out[metric] = _mean(c.count[column][care]) if n else math.nan
    for state in ("persistent", "in_pathway_at_horizon"):
        out[f"share_{state}"] = _mean(c.state[state][care]) if n else math.nan
    for flag in _FLAG_COLUMNS:
        out[f"share_{flag}"] = _mean(c.flag[flag][care]) if n else math.nan
    out["symptom_days_mean"] = _mean(c.float["symptom_days"][care]) if n else math.nan
    if c.residual is not None and c.residual_days is not None:
        sealed = care & c.sealed
        out["share_residual_symptoms"] = _mean(c.residual[sealed]) if sealed.any() else math.nan
        out["residual_days_mean"] = _mean(np.nan_to_num(c.residual_days[care])) if n else math.nan
    if c.complication is not None:
        out["share_complication"] = _mean(c.complication[care]) if n else math.nan
    if c.leak_complication is not None:
        spontaneous = rows & c.spontaneous
        out["share_leak_complication"] = _mean(c.leak_complication[spontaneous]) if spontaneous.any() else math.nan
    out["waiting_days_mean"] = _mean(c.float["waiting_days"][care]) if n else math.nan
    # Days with symptoms (of the leak, then residual after a seal) per month of follow-up: a person-time rate.
    days_ill = np.nan_to_num(c.float["symptom_days"][care])
    if c.residual_days is not None:
        days_ill = days_ill + np.nan_to_num(c.residual_days[care])
    months = float(follow_up.sum()) / MONTH_DAYS
    out["symptom_days_per_month"] = float(days_ill.sum()) / months if n and months > 0 else math.nan
    if c.economics is not None:  # health economics (sim/economics/costs.py): over all patients, from onset to horizon
        for metric, values in c.economics.items():
            out[metric] = _mean(values[rows]) if n_all else math.nan
    return out


def replication_metrics(patients: pd.DataFrame, resources: pd.DataFrame, horizon_days: float) -> pd.DataFrame:
    """Tidy table [replication, metric, group, value] of one replication, over its counted patients
    (`Scenario.counted`)."""
    rep = int(patients["replication"].iloc[0]) if len(patients) else int(resources["replication"].iloc[0])
    counted = counted_rows(patients)
    p = patients if counted.all() else patients[counted]
    c = _Columns(p)
    etiology = p["etiology"].to_numpy(dtype=object)
    home = p["home_center"].to_numpy(dtype=object)
    rows: list[tuple[int, str, str, float]] = []
    groups = [("all", np.ones(len(p), dtype=bool))] + [(e, etiology == e) for e in ETIOLOGIES]
    homes = sorted(set(home.tolist()))
    # The postcode lottery (does where you live change your outcome?), wherever the scenario has several centers:
    # also with one home center, so that it pairs with a scenario that has several.
    if len(homes) > 1:
        groups += [(f"home:{h}", home == h) for h in homes]
        groups += [(f"home:{h}/spontaneous", (home == h) & (etiology == "spontaneous")) for h in homes]
    by_group = {group: _group_metrics(c, mask, horizon_days) for group, mask in groups}
    if len(homes) == 1 and resources["center"].nunique() > 1:  # one home: its groups are "all" and "spontaneous"
        by_group[f"home:{homes[0]}"] = by_group["all"]
        by_group[f"home:{homes[0]}/spontaneous"] = by_group["spontaneous"]
    for group, values in by_group.items():
        for metric, value in values.items():
            rows.append((rep, metric, group, value))
    centers = resources["center"].tolist()
    names = resources["resource"].tolist()
    waits = resources["mean_wait_days"].to_numpy(dtype=float)
    utilization = resources["utilization"].to_numpy(dtype=float)
    listed = resources["mean_list_length"].to_numpy(dtype=float)
    for center, resource, wait, use, length in zip(centers, names, waits.tolist(), utilization.tolist(),
                                                   listed.tolist(), strict=True):
        group = f"{center}/{resource}"
        rows.append((rep, "resource_mean_wait_days", group, wait))
        rows.append((rep, "resource_utilization", group, use))
        rows.append((rep, "resource_mean_list_length", group, length))
    # Pooled over centers, so that scenarios with different centers can still be compared per resource.
    served_all = resources["n_served"].to_numpy(dtype=float)
    resource_of = np.asarray(names, dtype=object)
    for resource in dict.fromkeys(names):
        mask = resource_of == resource
        served = served_all[mask]
        wait = np.nan_to_num(waits[mask])
        pooled_wait = float((wait * served).sum() / served.sum()) if served.sum() else math.nan
        rows.append((rep, "resource_mean_wait_days", f"all centers/{resource}", pooled_wait))
    return pd.DataFrame(rows, columns=["replication", "metric", "group", "value"])


@functools.lru_cache(maxsize=1024)
def t_quantile(q: float, df: int) -> float:
    """Student's t quantile, cached: a summary asks for the same few (level, replications) hundreds of times.
    `special.stdtrit` is the function `scipy.stats.t.ppf` evaluates (same values), without importing
    `scipy.stats`, which cost every command about 0.4 s."""
    return float(special.stdtrit(df, q))


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sd, and the two ends of the t-based confidence interval (nan where undefined)."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return (math.nan,) * 4
    mean = float(v.mean())
    if v.size == 1:
        return mean, math.nan, math.nan, math.nan
    sd = float(v.std(ddof=1))
    half = t_quantile(0.5 + level / 2, v.size - 1) * sd / math.sqrt(v.size)
    return mean, sd, mean - half, mean + half


def is_share(metric: str) -> bool:
    """Metrics that are proportions (shares of patients, utilization): their intervals stay within [0, 1]."""
    entry = METRICS.get(metric)
    return entry.kind == "share" if entry is not None else metric.startswith("share_")


def share_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sd and a confidence interval for the mean of per-replication shares that stays within [0, 1]: the
    t interval on the logit scale (delta method: half-width t * sd / (sqrt(n) * m * (1 - m)) around logit(m)),
    mapped back (never excluding the mean by rounding). With the mean at 0 or 1 (every replication the same
    extreme) the interval is that point.
    Why: with few replications the plain t interval of a share near 0 or 1 left [0, 1] (e.g. -0.4% to 14.2%)."""
    mean, sd, lo, hi = t_interval(values, level)
    if not math.isfinite(lo) or not 0.0 <= mean <= 1.0:
        return mean, sd, lo, hi
    if mean in (0.0, 1.0) or sd == 0.0:
        return mean, sd, mean, mean
    n = int(np.sum(~np.isnan(values)))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / (math.sqrt(n) * mean * (1.0 - mean))
    centre = math.log(mean / (1.0 - mean))
    lo, hi = 1.0 / (1.0 + math.exp(-(centre - half))), 1.0 / (1.0 + math.exp(-(centre + half)))
    return mean, sd, min(lo, mean), max(hi, mean)  # the round trip through the logit can miss the mean by a bit


def metric_interval(metric: str, values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sd and confidence interval of a metric's per-replication values, on the metric's own scale."""
    return share_interval(values, level) if is_share(metric) else t_interval(values, level)


def summarize(per_rep: pd.DataFrame) -> pd.DataFrame:
    """Across replications: one row per (metric, group) with mean, sd, 95% CI and the replication count."""
    rows = []
    for (metric, group), g in per_rep.groupby(["metric", "group"], sort=False):
        values = g["value"].to_numpy(dtype=float)
        mean, sd, lo, hi = metric_interval(metric, values)
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
    care = patients[patients["presented_day"].notna() & counted_rows(patients)]
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
    metric (separate so that `sim.analysis.summaries` can build the table without the patient-level rows)."""
    rows = []
    for (metric, group), g in per_rep.groupby(["metric", "group"], sort=False):
        v = g["value"].to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        q = np.percentile(v, PERCENTILES) if v.size else [math.nan] * len(PERCENTILES)
        rows.append(("replications", metric, "group", group, int(v.size), *q))
    return rows
