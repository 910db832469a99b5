"""Paired comparison of scenarios on common random numbers.

Every scenario is run with the same root seed, so replication r of each scenario draws the same patients and
the same luck at each decision. The paired difference per replication (scenario minus the first scenario) then
cancels most of the noise that independent runs would carry.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.metrics import METRICS
from sim.analysis.stats import PRIMARY_METRICS, metric_interval, t_interval
from sim.config.parameters import Scenario
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.io import outputs
from sim.io.runfolder import REPORT_OUTPUTS, RunFolder
from sim.model.randomness import replication_seed
from sim.runs.backends import Backend
from sim.runs.experiment import RunResult, run


@dataclass
class CompareResult:
    runs: list[RunResult]
    comparison: pd.DataFrame
    out_dir: Path | None
    crn: pd.DataFrame | None = None  # variance reduction of common random numbers, per metric
    manifest: dict[str, Any] | None = None  # what the comparison folder's manifest.json holds (None in memory)
    explanation: pd.DataFrame | None = None  # explain.csv: each difference from the first shared out (--explain)

    @property
    def crn_factor(self) -> float:
        """Median variance reduction over the primary metrics (how many times fewer replications CRN needs)."""
        if self.crn is None or self.crn.empty:
            return math.nan
        sel = self.crn[self.crn["metric"].isin(PRIMARY_METRICS) & (self.crn["group"] == "all")]
        return float(np.nanmedian(sel["variance_reduction"])) if len(sel) else math.nan


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
            mean, sd, lo, hi = metric_interval(metric, values.to_numpy(dtype=float))
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
    # A difference of shares, also in percentage points (a 0.05 difference of shares is 5 points, not 5%).
    share = df["metric"].map(lambda m: m in METRICS and METRICS[m].kind == "share").to_numpy(dtype=bool)
    for col, pp in (("diff_vs_first", "diff_pp"), ("diff_ci95_low", "diff_pp_ci95_low"),
                    ("diff_ci95_high", "diff_pp_ci95_high")):
        df[pp] = np.where(share, 100.0 * df[col].to_numpy(dtype=float), np.nan)
    return df


def crn_table(runs: Sequence[RunResult], independent: Sequence[RunResult]) -> pd.DataFrame:
    """Variance of the paired difference from the first scenario under common random numbers versus under
    independent streams (`independent[i-1]` is scenario i run with another seed), per metric and group."""
    base = {key: g.set_index("replication")["value"]
            for key, g in runs[0].per_replication.groupby(["metric", "group"], sort=False)}
    rows = []
    for i, (common, indep) in enumerate(zip(runs[1:], independent, strict=True), start=1):
        indep_values = {key: g.set_index("replication")["value"]
                        for key, g in indep.per_replication.groupby(["metric", "group"], sort=False)}
        for (metric, group), g in common.per_replication.groupby(["metric", "group"], sort=False):
            if (metric, group) not in base or (metric, group) not in indep_values:
                continue
            a = base[(metric, group)]
            d_common = (g.set_index("replication")["value"] - a).dropna().to_numpy(dtype=float)
            d_indep = (indep_values[(metric, group)] - a).dropna().to_numpy(dtype=float)
            if d_common.size < 2 or d_indep.size < 2:
                continue
            v_common, v_indep = float(np.var(d_common, ddof=1)), float(np.var(d_indep, ddof=1))
            ratio = v_indep / v_common if v_common > 0 else (math.inf if v_indep > 0 else math.nan)
            rows.append({"metric": metric, "group": group, "scenario": common.scenario.name, "scenario_index": i,
                         "var_paired_common": v_common, "var_paired_independent": v_indep,
                         "variance_reduction": ratio})
    return pd.DataFrame(rows, columns=["metric", "group", "scenario", "scenario_index", "var_paired_common",
                                       "var_paired_independent", "variance_reduction"])


def compare(scenarios: Sequence[Scenario | str | os.PathLike[str]], reps: int | str = 10, seed: int = 1,
            jobs: int = 1, out: str | os.PathLike[str] | None = None, log_events: bool = True,
            progress: bool | None = None, command: str | None = None, backend: Backend | None = None,
            precision: float = 0.05, max_reps: int = 200, measure_crn: bool = True,
            engine: str = "auto", overwrite: bool = False, explain: bool = False) -> CompareResult:
    """Run scenarios on common random numbers and compare them with the first.

    With `measure_crn`, every scenario after the first is also run on independent streams (another seed, in
    memory) to measure how much the pairing reduces the variance of each difference. With `explain`, each
    difference from the first is shared out among parameter groups (`sim.runs.explain`; explain.csv)."""
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    if explain and isinstance(reps, int) and reps < 2:
        raise ScenarioError("(command line)", "--reps", reps, "at least 2 replications with --explain")
    if len(loaded) < 2:
        raise ScenarioError("(command line)", "scenarios", len(loaded), "at least two scenarios to compare")
    _check_same_period(loaded)
    if out is None:
        return _compare_in(None, loaded, reps, seed, jobs, log_events, progress, command, backend, precision,
                           max_reps, measure_crn, engine, explain)
    with RunFolder(out, "compare", overwrite=overwrite) as folder:
        result = _compare_in(folder.open(), loaded, reps, seed, jobs, log_events, progress, command, backend,
                             precision, max_reps, measure_crn, engine, explain)
        assert result.manifest is not None
        folder.publish(result.manifest)
    result.out_dir = Path(out)
    for r, name in zip(result.runs, result.manifest["folders"], strict=True):
        r.out_dir = result.out_dir / name  # the run folders moved with the comparison's
    return result


# The run settings that decide which patients a scenario follows and for how long: a paired comparison needs
# them equal, or its differences mix the arms' effects with different follow-up.
PERIOD_FIELDS: tuple[tuple[str, str], ...] = (("horizon_days", "run.horizon_days"), ("warmup_days", "run.warmup_days"),
                                              ("follow_up_days", "run.follow_up_days"),
                                              ("arrivals_until_days", "run.arrivals_until_days"))


def _check_same_period(loaded: Sequence[Scenario]) -> None:
    first = loaded[0]
    for s in loaded[1:]:
        for attribute, field in PERIOD_FIELDS:
            mine, theirs = getattr(s, attribute), getattr(first, attribute)
            if mine != theirs:
                raise ScenarioError(s.source_file, field, mine, f"{theirs} as in {first.name!r}: the scenarios of a "
                                    "comparison follow the same patients over the same period")


def _compare_in(work: Path | None, loaded: list[Scenario], reps: int | str, seed: int, jobs: int,
                log_events: bool, progress: bool | None, command: str | None, backend: Backend | None,
                precision: float, max_reps: int, measure_crn: bool, engine: str, explain: bool) -> CompareResult:
    """The comparison's runs and tables, written into `work` (a locked OUT.partial) or kept in memory."""
    names: list[str] = []
    runs = []
    for s in loaded:
        name = slug(s.name)
        while name in names or name in REPORT_OUTPUTS:  # the report's figures/ beside the run folders
            name += "_b"
        names.append(name)
        sub = work / name if work is not None else None
        runs.append(run(s, reps=reps, seed=seed, jobs=jobs, out=sub, log_events=log_events, progress=progress,
                        command=command, backend=backend, precision=precision, max_reps=max_reps, engine=engine))
    table = comparison_table(runs)
    crn = None
    if measure_crn:
        independent = [run(r.scenario, reps=r.reps, seed=replication_seed(seed, i), jobs=jobs, log_events=False,
                           progress=progress, backend=backend, engine=engine)
                       for i, r in enumerate(runs[1:], start=1)]
        crn = crn_table(runs, independent)
    result = CompareResult(runs=runs, comparison=table, out_dir=work, crn=crn)
    explained = []
    if explain:
        from sim.runs.explain import explain as explain_gap

        for i, r in enumerate(runs[1:], start=1):
            why = explain_gap(runs[0].scenario, r.scenario, reps=min(runs[0].reps, r.reps), seed=seed, jobs=jobs,
                              progress=progress, backend=backend, engine=engine)
            explained.append((why, why.table.assign(scenario=r.scenario.name, scenario_index=i)))
        result.explanation = pd.concat([t for _, t in explained], ignore_index=True)
    if work is not None:
        outputs.atomic_write_csv(work / "comparison.csv", table)
        if crn is not None:
            outputs.atomic_write_csv(work / "crn_variance_reduction.csv", crn)
        if result.explanation is not None:
            outputs.atomic_write_csv(work / "explain.csv", result.explanation)
        result.manifest = {
            "csfsim_compare": True,
            "scenarios": [{"name": r.scenario.name, "file": r.scenario.source_file, "folder": n}
                          for r, n in zip(runs, names, strict=True)],
            "folders": names,
            "seed": seed, "replications": [r.reps for r in runs], "common_random_numbers": True,
            "crn_variance_reduction_median_primary": result.crn_factor,
            **({"explain": {"method": "shapley", "scenarios": [
                {key: why.manifest[key] for key in ("scenario_b", "groups", "groups_equal", "centers_paired", "runs",
                                                    "replications")} for why, _ in explained if why.manifest]}}
               if explained else {}),
            **outputs.provenance(command),
        }
    return result
