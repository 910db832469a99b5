"""Planner outputs over time: per center and resource, arrivals, throughput, waits, queue length and
utilization in calendar bins (from the resource-use table of a replication)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MONTH_DAYS = 365.25 / 12  # a month of the calendar, on average (the planners' bins, rates per month)


def overlap_per_bin(start: np.ndarray, end: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Total length of the intervals [start, end) falling in each bin between consecutive `edges`."""
    if start.size == 0:
        return np.zeros(edges.size - 1)
    # F(t) = sum_i clip(t - start_i, 0, end_i - start_i): time covered by intervals before t
    covered = np.clip(edges[:, None] - start[None, :], 0.0, (end - start)[None, :]).sum(axis=1)
    return np.diff(covered)


def resource_timeseries(uses: pd.DataFrame, resources: pd.DataFrame, horizon_days: float,
                        bin_days: float = MONTH_DAYS) -> pd.DataFrame:
    """One row per (center, resource, period): requests, starts, mean wait of those started, mean queue length
    and utilization in the period (of CSF patients; none for a session-booked resource, whose slots other patients
    share). `resources` supplies capacities (one replication).

    The uses are split by (center, resource) once and each table column is built as an array: filtering the
    table per resource and building rows one by one took about a fifth of a replication with the event log."""
    edges = np.append(np.arange(0.0, horizon_days, bin_days), horizon_days)
    width = np.diff(edges)
    n_bins = width.size
    rep = int(resources["replication"].iloc[0])
    positions = uses.groupby(["center", "resource"], sort=False).indices if len(uses) else {}
    request_all = uses["request_day"].to_numpy(dtype=float)
    start_all = uses["start_day"].to_numpy(dtype=float)
    end_all = uses["end_day"].to_numpy(dtype=float)
    none = np.zeros(0, dtype=np.int64)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in ("requests", "starts", "mean_wait_days",
                                                                  "mean_queue_length", "utilization")}
    centers, names = [], []
    sessions = (resources["sessions_per_week"].tolist() if "sessions_per_week" in resources
                else [0] * len(resources))
    for center, resource, capacity, booked in zip(resources["center"].tolist(), resources["resource"].tolist(),
                                                  resources["capacity"].tolist(), sessions, strict=True):
        at = positions.get((center, resource), none)  # ascending: the uses in table order
        req, start = request_all[at], start_all[at]
        end = np.minimum(end_all[at], horizon_days)
        b_start = np.clip(np.searchsorted(edges, start, side="right") - 1, 0, n_bins - 1)
        n_start = np.bincount(b_start, minlength=n_bins)
        wait_sum = np.bincount(b_start, weights=start - req, minlength=n_bins)
        n_req = np.bincount(np.clip(np.searchsorted(edges, req, side="right") - 1, 0, n_bins - 1),
                            minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns["mean_wait_days"].append(np.where(n_start > 0, wait_sum / n_start, np.nan))
        columns["requests"].append(n_req)
        columns["starts"].append(n_start)
        columns["mean_queue_length"].append(overlap_per_bin(req, start, edges) / width)
        if booked:  # a session list's use is slots, of every patient group: resources.csv has it, not the uses
            columns["utilization"].append(np.full(n_bins, np.nan))
        else:
            columns["utilization"].append(overlap_per_bin(start, end, edges) / (capacity * width))
        centers.append(center)
        names.append(resource)
    n_rows = len(centers)
    return pd.DataFrame({
        "replication": np.full(n_rows * n_bins, rep, dtype=np.int64),
        "center": [c for c in centers for _ in range(n_bins)],
        "resource": [r for r in names for _ in range(n_bins)],
        "period_start_day": np.tile(edges[:-1], n_rows),
        "period_end_day": np.tile(edges[1:], n_rows),
        **{name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in columns.items()},
    })
