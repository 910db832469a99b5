"""Paired comparison of scenarios on common random numbers.

Every scenario is run with the same root seed, so replication r of each scenario draws the same patients and
the same luck at each decision. The paired difference per replication (scenario minus the first scenario) then
cancels most of the noise that independent runs would carry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim import outputs
from sim.errors import ScenarioError
from sim.experiment import RunResult, run
from sim.parameters import Scenario
from sim.scenario import load_scenario
from sim.stats import t_interval


@dataclass
class CompareResult:
    runs: list[RunResult]
    comparison: pd.DataFrame
    out_dir: Path | None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "scenario"


def comparison_table(runs: Sequence[RunResult]) -> pd.DataFrame:
    """comparison.csv: per (metric, group, scenario): mean and 95% CI, and the paired difference from the
    first scenario with its 95% CI (replications matched by index)."""
    base = {key: g.set_index("replication")["value"]
            for key, g in runs[0].per_replication.groupby(["metric", "group"], sort=False)}
    rows = []
    for i, r in enumerate(runs):
        for (metric, group), g in r.per_replication.groupby(["metric", "group"], sort=False):
            values = g.set_index("replication")["value"]
            mean, sd, lo, hi = t_interval(values.to_numpy(dtype=float))
            row = {"metric": metric, "group": group, "scenario": r.scenario.name, "scenario_index": i,
                   "mean": mean, "sd": sd, "ci95_low": lo, "ci95_high": hi}
            if i > 0 and (metric, group) in base:
                paired = (values - base[(metric, group)]).dropna()
                d_mean, d_sd, d_lo, d_hi = t_interval(paired.to_numpy(dtype=float))
                row.update(diff_vs_first=d_mean, diff_sd=d_sd, diff_ci95_low=d_lo, diff_ci95_high=d_hi)
            rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("diff_vs_first", "diff_sd", "diff_ci95_low", "diff_ci95_high"):
        if col not in df:
            df[col] = np.nan
    return df


def compare(scenarios: Sequence[Scenario | str | os.PathLike[str]], reps: int = 10, seed: int = 1, jobs: int = 1,
            out: str | os.PathLike[str] | None = None, log_events: bool = True, progress: bool | None = None,
            command: str | None = None, engine: str = "auto") -> CompareResult:
    """Run scenarios on common random numbers and compare them with the first (`engine`: see experiment.run)."""
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    if len(loaded) < 2:
        raise ScenarioError("(command line)", "scenarios", len(loaded), "at least two scenarios to compare")
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        outputs.prepare_output_dir(out_path)
        out_path.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    runs = []
    for s in loaded:
        name = slug(s.name)
        while name in names:
            name += "_b"
        names.append(name)
        sub = out_path / name if out_path is not None else None
        runs.append(run(s, reps=reps, seed=seed, jobs=jobs, out=sub, log_events=log_events, progress=progress,
                        command=command, engine=engine))
    table = comparison_table(runs)
    if out_path is not None:
        outputs.atomic_write_csv(out_path / "comparison.csv", table)
        outputs.write_json(out_path / "manifest.json", {
            "csfsim_compare": True,
            "scenarios": [{"name": r.scenario.name, "file": r.scenario.source_file, "folder": n}
                          for r, n in zip(runs, names, strict=True)],
            "seed": seed, "replications": reps, "common_random_numbers": True,
            "command": command or outputs.command_line(), "git_commit": outputs.git_commit(),
            "versions": outputs.versions(),
        })
    return CompareResult(runs=runs, comparison=table, out_dir=out_path)
