"""Planner outputs over time: per center and resource, arrivals, throughput, waits, queue length and
utilization in calendar bins (from the resource-use table of a replication)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MONTH_DAYS = 365.25 / 12


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
    and utilization in the period. `resources` supplies capacities (one replication)."""
    edges = np.append(np.arange(0.0, horizon_days, bin_days), horizon_days)
    width = np.diff(edges)
    rows = []
    rep = int(resources["replication"].iloc[0])
    for row in resources.itertuples(index=False):
        u = uses[(uses["center"] == row.center) & (uses["resource"] == row.resource)]
        req = u["request_day"].to_numpy(dtype=float)
        start = u["start_day"].to_numpy(dtype=float)
        end = np.minimum(u["end_day"].to_numpy(dtype=float), horizon_days)
        b_start = np.clip(np.searchsorted(edges, start, side="right") - 1, 0, width.size - 1)
        n_start = np.bincount(b_start, minlength=width.size)
        wait_sum = np.bincount(b_start, weights=start - req, minlength=width.size)
        n_req = np.bincount(np.clip(np.searchsorted(edges, req, side="right") - 1, 0, width.size - 1),
                            minlength=width.size)
        busy = overlap_per_bin(start, end, edges)
        queued = overlap_per_bin(req, start, edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_wait = np.where(n_start > 0, wait_sum / n_start, np.nan)
        for i in range(width.size):
            rows.append((rep, row.center, row.resource, edges[i], edges[i + 1], int(n_req[i]), int(n_start[i]),
                         mean_wait[i], queued[i] / width[i], busy[i] / (row.capacity * width[i])))
    return pd.DataFrame(rows, columns=["replication", "center", "resource", "period_start_day", "period_end_day",
                                       "requests", "starts", "mean_wait_days", "mean_queue_length", "utilization"])
