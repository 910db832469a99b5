"""Choosing a warm-up period: the number of patients in the care pathway over time, its running mean, and the
MSER-5 truncation point (White 1997; batch means of 5 observations)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.errors import ScenarioError


def in_pathway_series(events: pd.DataFrame, horizon_days: float, step_days: float = 1.0) -> np.ndarray:
    """Patients in the care pathway (presented, not yet resolved or persistent) at the end of each step, from
    one replication's event log."""
    change = {"presented": 1, "recurrence": 1, "resolved": -1, "persistent": -1}
    ev = events[events["activity"].isin(change)]
    # a 'resolved' event of a patient who never presented is not in the log (settled before care)
    delta = ev["activity"].map(change).to_numpy(dtype=float)
    grid = np.arange(step_days, horizon_days + 1e-9, step_days)
    order = np.argsort(ev["day"].to_numpy(), kind="stable")
    days = ev["day"].to_numpy()[order]
    level = np.cumsum(delta[order])
    idx = np.searchsorted(days, grid, side="right") - 1
    return np.where(idx >= 0, level[np.maximum(idx, 0)], 0.0)


def mser(series: np.ndarray, batch: int = 5) -> tuple[int, np.ndarray]:
    """MSER-`batch` truncation: the batch index d (searched over the first half) minimizing the squared standard
    error of the mean of the batches after d. Returns (d in observations, MSER statistic per d)."""
    n_batches = series.size // batch
    if n_batches < 4:
        return 0, np.array([])
    means = series[: n_batches * batch].reshape(n_batches, batch).mean(axis=1)
    stats = np.array([np.var(means[d:]) / (n_batches - d) for d in range(n_batches // 2)])
    return int(np.argmin(stats)) * batch, stats


def warmup_table(series_by_rep: list[np.ndarray], step_days: float) -> tuple[pd.DataFrame, float]:
    """Average the series over replications, add its running mean, and find the MSER-5 truncation day."""
    mean = np.mean(np.vstack(series_by_rep), axis=0)
    day = np.arange(1, mean.size + 1) * step_days
    cut, _ = mser(mean)
    table = pd.DataFrame({"day": day, "in_pathway_mean": mean,
                          "running_mean": np.cumsum(mean) / np.arange(1, mean.size + 1)})
    return table, float(cut * step_days)


def plot_warmup(table: pd.DataFrame, cut_day: float, path_png, path_svg) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(table["day"], table["in_pathway_mean"], color="0.6", linewidth=0.8, label="mean over replications")
    ax.plot(table["day"], table["running_mean"], color="0.1", linestyle="--", label="running mean")
    ax.axvline(cut_day, color="0.1", linestyle=":", label=f"MSER-5 truncation: day {cut_day:.0f}")
    ax.set_xlabel("Simulated day")
    ax.set_ylabel("Patients in the care pathway")
    ax.set_title("Warm-up: patients in the pathway over time")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    for path, fmt in ((path_png, "png"), (path_svg, "svg")):
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=120)
        tmp.replace(path)
    plt.close(fig)


def choose_warmup(scenario, reps: int, seed: int, out=None, jobs: int = 1,
                  overwrite: bool = False) -> tuple[pd.DataFrame, float]:
    """Run `reps` replications with the event log, average the in-pathway series, find the MSER-5 point."""
    from sim.io import outputs
    from sim.io.runfolder import RunFolder
    from sim.runs.experiment import run

    folder = RunFolder(out, "warmup", overwrite=overwrite) if out is not None else None  # refused before running
    result = run(scenario, reps=reps, seed=seed, jobs=jobs, log_events=True, progress=False)
    events = result.events
    if events.empty:
        raise ScenarioError(scenario.source_file or "(scenario)", "population.incidence_per_100k_per_year", 0,
                            "arrivals to follow: no patient arrived in any replication, so there is no start-up "
                            "to truncate")
    series = [in_pathway_series(g, scenario.horizon_days) for _, g in events.groupby("replication", sort=True)]
    table, cut = warmup_table(series, 1.0)
    if folder is not None:
        with folder:
            work = folder.open()
            outputs.atomic_write_csv(work / "warmup.csv", table)
            plot_warmup(table, cut, work / "warmup.png", work / "warmup.svg")
            folder.publish({"csfsim_warmup": True, "scenario_name": scenario.name,
                            "scenario_file": scenario.source_file, "replications": reps, "seed": seed,
                            "mser5_truncation_day": cut, **outputs.provenance()})
    return table, cut
