"""Scenario sweeps: run a grid of parameter changes on common random numbers and tabulate every metric."""

from __future__ import annotations

import difflib
import itertools
import json
import os
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.metrics import METRICS
from sim.analysis.stats import metric_interval, t_interval
from sim.config.scenario import load_scenario
from sim.config.schema import to_jsonable
from sim.errors import ScenarioError
from sim.io import outputs
from sim.io.runfolder import RunFolder
from sim.runs.backends import Backend
from sim.runs.experiment import RunResult, run


def parse_set(text: str) -> tuple[str, list[Any]]:
    """`path=v1,v2,...` -> (path, [values]); values are read as TOML (numbers, true/false, "text")."""
    path, sep, values = text.partition("=")
    path = path.strip()
    if not sep or not path or not values.strip():
        raise ScenarioError("(command line)", "--set", text, "PATH=VALUE[,VALUE...], e.g. "
                            "centers.specialist.resources.myelography.capacity=1,2,3")
    parsed = []
    for raw in values.split(","):
        raw = raw.strip()
        try:
            parsed.append(tomllib.loads(f"v = {raw}")["v"])
        except tomllib.TOMLDecodeError:
            parsed.append(raw)  # a bare word such as a profile name
    return path, parsed


@dataclass
class SweepResult:
    table: pd.DataFrame  # one row per combination x metric x group
    runs: list[RunResult]  # the combinations run by this call (not those resumed from an interrupted sweep)
    out_dir: Path | None


def sweep(base: str | os.PathLike[str], settings: Sequence[tuple[str, list[Any]]], reps: int = 10, seed: int = 1,
          jobs: int = 1, out: str | os.PathLike[str] | None = None, backend: Backend | None = None,
          metric: str = "diagnosis_delay_median_days", group: str = "spontaneous",
          progress: bool | None = None, command: str | None = None, overwrite: bool = False,
          resume: bool = False) -> SweepResult:
    """Run every combination of the `settings` values (cartesian grid) with the same seed (common random
    numbers); the first combination is the reference for paired differences. With `out`, each finished
    combination is kept in OUT.partial/combinations/, and `resume` goes on from them after an interruption."""
    if not settings:
        raise ScenarioError("(command line)", "--set", None, "at least one --set PATH=VALUES")
    paths = [p for p, _ in settings]
    if len(set(paths)) != len(paths):
        raise ScenarioError("(command line)", "--set", paths, "each parameter path once")
    combos = list(itertools.product(*(values for _, values in settings)))
    if len(combos) > 10_000:
        raise ScenarioError("(command line)", "--set", f"{len(combos)} combinations", "at most 10000 combinations")
    scenarios = [load_scenario(base, overrides=dict(zip(paths, combo, strict=True)),
                               overrides_from="(command line) --set") for combo in combos]
    if out is None:
        runs = [run(scenarios[0], reps=reps, seed=seed, jobs=jobs, log_events=False, progress=progress,
                    backend=backend)]
        check_plotted(runs[0].per_replication, metric, group)  # before the rest of the grid runs
        runs += [run(s, reps=reps, seed=seed, jobs=jobs, log_events=False, progress=progress, backend=backend)
                 for s in scenarios[1:]]
        tables = [r.per_replication for r in runs]
        return SweepResult(table=sweep_table(paths, combos, tables), runs=runs, out_dir=None)
    with RunFolder(out, "sweep", overwrite=overwrite, keep_on_error=True) as folder:
        work = folder.open(resume)
        done = work / "combinations"
        config = {"settings": [[p, list(v)] for p, v in settings], "reps": reps, "seed": seed,
                  "scenario": json.loads(json.dumps(to_jsonable(scenarios[0].resolved), default=str))}
        _check_same_sweep(work / "sweep.json", config, resume)
        done.mkdir(exist_ok=True)
        outputs.write_json(work / "sweep.json", config)
        runs, tables = [], []
        for i, s in enumerate(scenarios):
            part = done / f"combination-{i:05d}.arrow"
            if part.exists():  # finished before the sweep was interrupted (the same scenario, seed and grid)
                tables.append(pd.read_feather(part))
            else:
                r = run(s, reps=reps, seed=seed, jobs=jobs, log_events=False, progress=progress, backend=backend)
                outputs.atomic_write_arrow(part, r.per_replication)
                runs.append(r)
                tables.append(r.per_replication)
            if i == 0:
                check_plotted(tables[0], metric, group)  # before the rest of the grid runs
        table = sweep_table(paths, combos, tables)
        outputs.atomic_write_csv(work / "sweep.csv", table)
        plot_sweep(table, paths, metric, group, work)
        # Refused now (OUT changed meanwhile), the combinations stay for a --resume once OUT is moved.
        folder.check_publishable()
        shutil.rmtree(done)
        (work / "sweep.json").unlink()
        folder.publish({
            "csfsim_sweep": True, "base": str(base), "settings": {p: v for p, v in settings},
            "combinations": len(combos), "replications": reps, "seed": seed, "common_random_numbers": True,
            "metric": metric, "group": group,
            **outputs.provenance(command)})
    return SweepResult(table=table, runs=runs, out_dir=Path(out))


def _check_same_sweep(info: Path, config: dict[str, Any], resume: bool) -> None:
    """--resume goes on only with the grid, seed, replications and scenario of the interrupted sweep."""
    if not resume or not info.exists():
        return
    try:
        earlier = json.loads(info.read_text())
    except ValueError:
        earlier = None
    config = json.loads(json.dumps(config, default=str))
    if earlier != config:
        differs = next((k for k in config if not isinstance(earlier, dict) or earlier.get(k) != config[k]), "sweep")
        option = {"settings": "--set", "reps": "--reps", "seed": "--seed", "scenario": "the scenario"}.get(differs,
                                                                                                        differs)
        raise ScenarioError(str(info), option, config.get(differs), "what the interrupted sweep had (or rerun "
                            "without --resume to start again)")


def check_plotted(per_replication: pd.DataFrame, metric: str, group: str) -> None:
    """Refuse a --metric or --group the sweep table will not have (told before the grid runs)."""
    metrics = list(dict.fromkeys(per_replication["metric"]))
    if metric not in metrics:
        close = difflib.get_close_matches(metric, metrics, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ScenarioError("(command line)", "--metric", metric,
                            f"a metric of the run's summary ({hint}one of {', '.join(metrics)})")
    groups = list(dict.fromkeys(per_replication.loc[per_replication["metric"] == metric, "group"]))
    if group not in groups:
        raise ScenarioError("(command line)", "--group", group, f"a group of {metric}: one of {', '.join(groups)}")


def sweep_table(paths: list[str], combos: list[tuple], tables: list[pd.DataFrame]) -> pd.DataFrame:
    """sweep.csv: per combination, metric and group the mean and 95% CI over replications and the paired
    difference from the first combination (`tables`: each combination's per-replication metrics)."""
    base = {key: g.set_index("replication")["value"]
            for key, g in tables[0].groupby(["metric", "group"], sort=False)}
    rows = []
    for i, (combo, per_rep) in enumerate(zip(combos, tables, strict=True)):
        for (metric, group), g in per_rep.groupby(["metric", "group"], sort=False):
            values = g.set_index("replication")["value"]
            mean, sd, lo, hi = metric_interval(metric, values.to_numpy(dtype=float))
            settings = {path: ", ".join(v) if isinstance(v, list) else v for path, v in zip(paths, combo, strict=True)}
            row: dict[str, Any] = {"combination": i, **settings, "metric": metric,
                                   "group": group, "mean": mean, "sd": sd, "ci95_low": lo, "ci95_high": hi}
            if (metric, group) in base:
                d = (values - base[(metric, group)]).dropna().to_numpy(dtype=float)
                d_mean, _, d_lo, d_hi = t_interval(d)
                row.update(diff_vs_first=d_mean, diff_ci95_low=d_lo, diff_ci95_high=d_hi)
            rows.append(row)
    return pd.DataFrame(rows)


def plot_sweep(table: pd.DataFrame, paths: list[str], metric: str, group: str, out: Path) -> None:
    """The chosen metric over the grid: x = first parameter, one line per value of the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = table[(table["metric"] == metric) & (table["group"] == group)]
    if sel.empty:
        raise ScenarioError("(command line)", "--metric", f"{metric} / {group}",
                            "a metric and group present in the sweep table")
    x = paths[0]
    others = paths[1:]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v"]
    lines = [((), sel)] if not others else list(sel.groupby(others, sort=True))
    for i, (key, g) in enumerate(lines):
        g = g.sort_values(x)
        xs = list(range(len(g))) if g[x].dtype == object else g[x]
        label = ", ".join(f"{p.split('.')[-1]}={v}" for p, v in zip(others, key if isinstance(key, tuple)
                                                                    else (key,), strict=False)) or None
        ax.errorbar(xs, g["mean"], yerr=[g["mean"] - g["ci95_low"], g["ci95_high"] - g["mean"]],
                    linestyle=styles[i % len(styles)], marker=markers[i % len(markers)], color="0.15", capsize=3,
                    label=label)
        if g[x].dtype == object:
            ax.set_xticks(xs, g[x])
        elif pd.api.types.is_integer_dtype(g[x]):  # a count: ticks at its values, never at 1.25
            ax.set_xticks(sorted(g[x].unique()))
    ax.set_xlabel(x)
    ax.set_ylabel(METRICS[metric].title(group) if metric in METRICS else f"{metric} ({group})", wrap=True)
    ax.set_title("Sweep on common random numbers (mean and 95% CI)")
    if others:
        ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    for ext in ("png", "svg"):
        tmp = out / f".sweep.{ext}.tmp"
        fig.savefig(tmp, format=ext, dpi=120)
        os.replace(tmp, out / f"sweep.{ext}")
    plt.close(fig)
