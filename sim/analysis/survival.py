"""Kaplan-Meier estimates of time to an event with censoring at the horizon (time to diagnosis, resolution)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.model.records import counted_rows

# The median's threshold: a product-limit estimate that is exactly one half comes out of cumprod a hair above it.
HALF = 0.5 + 1e-12
# Event -> (column holding the event day, final states that count as the event having happened)
EVENTS = {"diagnosis": "diagnosed_day", "resolution": "resolved_day"}


def kaplan_meier(durations: np.ndarray, observed: np.ndarray) -> pd.DataFrame:
    """Product-limit estimate with Greenwood 95% band (log-log transform, kept in [0, 1]).

    Returns one row per distinct event time: days, at_risk, events, survival, ci95_low, ci95_high, starting with
    day 0 at survival 1.
    """
    return pd.DataFrame(_km_columns(durations, observed))


def _km_columns(durations: np.ndarray, observed: np.ndarray) -> dict[str, np.ndarray]:
    """`km_columns_from_sorted` of durations in any order."""
    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    order = np.argsort(d, kind="stable")
    return km_columns_from_sorted(d[order], e[order])


def km_from_sorted(d: np.ndarray, e: np.ndarray) -> pd.DataFrame:
    """`kaplan_meier` of durations already sorted ascending (`e`: event observed, in the same order).

    Separate so that a run can pool sorted per-replication durations (`sim.analysis.summaries`) and run exactly this
    code: the result depends only on the sorted durations, so it is the same as sorting all patients at once."""
    return pd.DataFrame(km_columns_from_sorted(d, e))


def km_columns_from_sorted(d: np.ndarray, e: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of `km_from_sorted` as arrays. For ten million patients the table has millions of rows; a
    run only reads it on a grid (`on_grid` takes these arrays too), so it is never made a DataFrame there, and
    intermediate arrays are dropped as soon as they are used."""
    times, counts = np.unique(d[e], return_counts=True)
    n = d.size
    at_risk = n - np.searchsorted(d, times, side="left")
    events = counts.astype(float)
    del counts
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = 1.0 - events / at_risk
        survival = np.cumprod(factors)
        del factors
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        log_s = np.log(survival)
        se = np.sqrt(greenwood) / np.abs(log_s)
        del greenwood, log_s
        lo = survival ** np.exp(1.96 * se)
        hi = survival ** np.exp(-1.96 * se)
        del se
    lo = np.clip(np.where(survival > 0, np.nan_to_num(lo, nan=0.0), 0.0), 0, 1)
    hi = np.clip(np.where(survival > 0, np.nan_to_num(hi, nan=1.0), 0.0), 0, 1)
    # The first row is day 0: everyone at risk, survival 1.
    return {"days": np.concatenate([[0.0], times]), "at_risk": np.concatenate([np.array([n], dtype=np.int64),
                                                                               at_risk.astype(np.int64)]),
            "events": np.concatenate([[0.0], events]), "survival": np.concatenate([[1.0], survival]),
            "ci95_low": np.concatenate([[1.0], lo]), "ci95_high": np.concatenate([[1.0], hi])}


def on_grid(table: pd.DataFrame | dict[str, np.ndarray], grid: np.ndarray) -> pd.DataFrame:
    """A Kaplan-Meier step function read at the days in `grid` (keeps output small for millions of patients):
    survival and band as of each day, patients still at risk, and events since the previous grid day.
    `table`: from `kaplan_meier`, or the arrays of `km_columns_from_sorted`."""
    days = np.asarray(table["days"])
    all_at_risk = np.asarray(table["at_risk"])
    rows = len(days)
    idx = np.searchsorted(days, grid, side="right") - 1
    cum_events = np.cumsum(np.asarray(table["events"]))
    n = int(all_at_risk[0])
    events_to_t = cum_events[idx]
    # at risk at t: everyone not yet failed or censored before t, read from the next event time's risk set
    at_risk_next = np.append(all_at_risk, 0)
    nxt = np.searchsorted(days, grid, side="left")
    at_risk = np.where(nxt < rows, at_risk_next[np.minimum(nxt, rows)], np.nan)
    return pd.DataFrame({
        "days": grid, "at_risk": np.where(np.isnan(at_risk), np.nan, at_risk).astype(float),
        "events": np.diff(np.concatenate([[0.0], events_to_t])),
        "survival": np.asarray(table["survival"])[idx],
        "ci95_low": np.asarray(table["ci95_low"])[idx], "ci95_high": np.asarray(table["ci95_high"])[idx],
        "n": n,
    })


def event_durations(onset: np.ndarray, day: np.ndarray, competing_day: np.ndarray, horizon_days: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(duration, observed, competing) per patient: days from onset to the event (`day`); for a patient without
    it, to a competing event that took her out of risk (`competing_day`, nan if none), or to the horizon
    (censored). Both the run's merged tables and the all-patients tables use this arithmetic."""
    observed = ~np.isnan(day)
    competing = ~observed & ~np.isnan(competing_day)
    duration = np.where(observed, day - onset, np.where(competing, competing_day - onset, horizon_days - onset))
    return duration, observed, competing


def competing_day(patients: pd.DataFrame, event: str) -> np.ndarray:
    """The day of the event that competes with `event`: for diagnosis, a leak closing on its own first (never
    diagnosed, resolved by its natural course); resolution has none."""
    if event != "diagnosis":
        return np.full(len(patients), np.nan)
    closed = (patients["resolved_by"] == "natural_course").to_numpy() & patients["diagnosed_day"].isna().to_numpy()
    return np.where(closed, patients["resolved_day"].to_numpy(dtype=float), np.nan)


def time_to_event(patients: pd.DataFrame, event: str, horizon_days: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`event_durations` of the patients who reached care. For resolution, patients resolved without care are
    excluded (they never entered the care pathway)."""
    care = patients[patients["presented_day"].notna()]
    return event_durations(care["onset_day"].to_numpy(dtype=float), care[EVENTS[event]].to_numpy(dtype=float),
                           competing_day(care, event), horizon_days)


def incidence_on_grid(d: np.ndarray, e: np.ndarray, c: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Aalen-Johansen cumulative incidence of the event (`e`) with `c` competing, read at the `grid` days
    (durations `d` sorted ascending): the share who have had the event by then. Without a competing event it
    is 1 - Kaplan-Meier."""
    times, n_any = np.unique(d[e | c], return_counts=True)
    if times.size == 0:
        return np.zeros(grid.size)
    n_event = np.zeros(times.size)
    event_times, counts = np.unique(d[e], return_counts=True)
    n_event[np.searchsorted(times, event_times)] = counts
    at_risk = d.size - np.searchsorted(d, times, side="left")
    survival_before = np.concatenate([[1.0], np.cumprod(1.0 - n_any / at_risk)[:-1]])
    incidence = np.cumsum(survival_before * n_event / at_risk)
    idx = np.searchsorted(times, grid, side="right") - 1
    return np.where(idx >= 0, incidence[np.maximum(idx, 0)], 0.0)


def curve_on_grid(d: np.ndarray, e: np.ndarray, c: np.ndarray, grid: np.ndarray) -> pd.DataFrame:
    """The rows of km.csv for one group (durations sorted): the Kaplan-Meier curve with a competing event
    censored where it happened (cause-specific), and the cumulative incidence that counts it as competing."""
    table = on_grid(km_columns_from_sorted(d, e), grid)
    table["incidence"] = incidence_on_grid(d, e, c, grid)
    return table


def km_grid(horizon_days: float) -> np.ndarray:
    """The days at which `km.csv` reads the curves: every day, or ~2000 points over long horizons."""
    return np.arange(0.0, horizon_days + 1e-9, max(1.0, horizon_days / 2000))


def labelled(table: pd.DataFrame, event: str, group_by: str, group: str) -> pd.DataFrame:
    """A group's curve with the leading columns of km.csv: event, group_by, group."""
    table.insert(0, "group", group)
    table.insert(0, "group_by", group_by)
    table.insert(0, "event", event)
    return table


def km_table(patients: pd.DataFrame, horizon_days: float,
             by: tuple[str, ...] = ("center", "etiology", "home_center")) -> pd.DataFrame:
    """Kaplan-Meier curves of time to diagnosis and to resolution, pooled over replications, overall and by
    each column in `by`, read on a grid of days (at most ~2000 points): rows event, group_by, group, days,
    at_risk, events (since the previous grid day), survival, ci95_low, ci95_high, n, incidence (`curve_on_grid`)."""
    pieces = []
    p = patients[counted_rows(patients)]
    grid = km_grid(horizon_days)
    for event in EVENTS:
        groups: list[tuple[str, str, pd.DataFrame]] = [("all", "all", p)]
        for col in by:
            groups += [(col, str(value), g) for value, g in p.groupby(col, sort=True)]
        for group_by, group, g in groups:
            duration, observed, competing = time_to_event(g, event, horizon_days)
            if duration.size == 0:
                continue
            order = np.argsort(duration, kind="stable")
            pieces.append(labelled(curve_on_grid(duration[order], observed[order], competing[order], grid), event,
                                   group_by, group))
    return pd.concat(pieces, ignore_index=True)


def km_median(table: pd.DataFrame) -> float:
    """Median time from a single Kaplan-Meier table (nan if survival never falls to 0.5)."""
    below = table[table["survival"] <= HALF]
    return float(below["days"].iloc[0]) if len(below) else float("nan")


def restricted_mean(durations: np.ndarray, observed: np.ndarray, tau_days: float) -> float:
    """Restricted mean time to the event over the first `tau_days` (RMST): the area under the Kaplan-Meier curve
    from 0 to tau, i.e. the mean of min(T, tau) with censored times handled by the product-limit estimate. Why:
    the mean over patients who had the event leaves out the slow ones still waiting at the horizon; with heavy
    censoring it flatters whichever arm censors more. nan with no patient. Beyond the last time observed the
    curve keeps its last value: the caller decides whether follow-up reaches tau (`stats` gives nan when no
    patient could have been followed that long)."""
    if np.size(durations) == 0:
        return float("nan")
    km = _km_columns(durations, observed)
    days, survival = km["days"], km["survival"]
    inside = days < tau_days
    edges = np.append(days[inside], tau_days)
    return float(np.sum(np.diff(edges) * survival[inside]))


def km_median_days(durations: np.ndarray, observed: np.ndarray) -> float:
    """Kaplan-Meier median time to the event: the first day the estimated survival falls to 0.5 or below (nan if
    it never does within follow-up)."""
    if np.size(durations) == 0:
        return float("nan")
    km = _km_columns(durations, observed)
    below = np.flatnonzero(km["survival"] <= HALF)
    return float(km["days"][below[0]]) if below.size else float("nan")


def cumulative_incidence(durations: np.ndarray, cause: np.ndarray, of: int, at_days: float) -> float:
    """Aalen-Johansen cumulative incidence of cause `of` by `at_days`, with every other cause > 0 competing and
    cause 0 censored: the probability of having had this event by then, which 1 - Kaplan-Meier overstates when
    a competing event (a leak closing on its own before diagnosis) removes patients from risk. nan with no
    patient; as `restricted_mean`, the caller decides whether follow-up reaches `at_days`."""
    d = np.asarray(durations, dtype=float)
    c = np.asarray(cause, dtype=np.int64)
    if d.size == 0:
        return float("nan")
    events = (c > 0) & (d <= at_days)
    if not np.any(events):
        return 0.0
    times, which = np.unique(d[events], return_inverse=True)
    any_event = np.bincount(which, minlength=times.size).astype(float)
    this_event = np.bincount(which, weights=(c[events] == of).astype(float), minlength=times.size)
    at_risk = d.size - np.searchsorted(np.sort(d), times, side="left")
    survival_before = np.concatenate([[1.0], np.cumprod(1.0 - any_event / at_risk)[:-1]])
    return float(np.sum(survival_before * this_event / at_risk))
