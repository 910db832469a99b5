"""A self-contained HTML report of a run or comparison folder: what was run, headline findings in words computed
from the numbers, key tables, figures (embedded PNG), parameters with sources and grades, and the manifest.

The report needs nothing but the folder: every number comes from its tables and manifests, so a report can be
rebuilt at any time with `csfsim report FOLDER`. The HTML loads nothing from the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.headline import HEADLINE
from sim.analysis.planning import MONTH_DAYS
from sim.analysis.stats import is_share, metric_interval, patient_metrics
from sim.config.parameters import ETIOLOGIES, RESOURCES
from sim.errors import RunInterrupted, ScenarioError
from sim.figures import plots
from sim.io.outputs import atomic_write_text
from sim.model.records import counted_rows
from sim.report import explanation
from sim.report.analyses import ANALYSES, build_analysis_report
from sim.report.markup import CSS, display_kind, escape, figure_html, fmt_value, html_table, mean_ci
from sim.runs.backends import Backend, WorkLost

GROUP_NAMES = {
    "all": "All patients",
    "post_lp": "Leaks after lumbar puncture",
    "epidural": "Leaks after epidural dural puncture",
    "spinal_surgery": "Leaks after spinal surgery",
    "spontaneous": "Spontaneous leaks",
}
GROUP_SHORT = {"all": "All", "post_lp": "After lumbar puncture", "epidural": "After epidural",
               "spinal_surgery": "After spinal surgery", "spontaneous": "Spontaneous"}
GROUPS: tuple[str, ...] = ("all", *ETIOLOGIES)
FIRST_CONTACT = "First-contact center"
REFERRAL_ONLY = "Referral-only center"


@dataclass
class RunData:
    """One run folder as the report sees it: its label (scenario name), folder and manifest."""

    label: str
    folder: Path
    manifest: dict[str, Any]

    def table(self, name: str) -> pd.DataFrame | None:
        """A table of the run; None if the run did not write it, an error if it did and the table is gone (a
        report silently without that section would mislead)."""
        path = self.folder / name
        if not path.exists():
            if name in self.manifest.get("files", []):
                raise ScenarioError(str(self.folder), name, "missing", "every table the run's manifest lists "
                                    "(it was removed after the run: run it again)")
            return None
        return pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)

    @property
    def care_patients(self) -> pd.DataFrame:
        p = self.table("patients.parquet")
        if p is None:
            raise ScenarioError(str(self.folder), "patients.parquet", None, "the patient table of a finished run")
        return p[counted_rows(p)]


@dataclass
class Target:
    """What a report is about: one run, or a comparison of runs (with comparison.csv)."""

    folder: Path
    runs: list[RunData]
    comparison: pd.DataFrame | None
    manifest: dict[str, Any]

    @property
    def is_comparison(self) -> bool:
        return self.comparison is not None


def _read_manifest(folder: Path, keys: Sequence[str] = ("csfsim_run", "csfsim_compare")) -> dict[str, Any]:
    path = folder / "manifest.json"
    expected = ("a csfsim run, comparison, explain, sweep, psa or sensitivity folder (with the manifest.json that "
                "the command writes)")
    if not folder.is_dir():
        raise ScenarioError(str(folder), "folder", str(folder), expected)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ScenarioError(str(folder), "manifest.json", None if not path.exists() else "unreadable",
                            expected) from None
    if not isinstance(data, dict) or not any(data.get(key) for key in keys):
        raise ScenarioError(str(folder), "manifest.json", "no csfsim output key", expected)
    return data


def load_target(folder: str | os.PathLike[str]) -> Target:
    """Read a run or comparison folder (ScenarioError if it is neither)."""
    root = Path(folder)
    manifest = _read_manifest(root)
    if manifest.get("csfsim_run"):
        return Target(root, [RunData(manifest["scenario_name"], root, manifest)], None, manifest)
    runs = []
    names = [entry["name"] for entry in manifest.get("scenarios", [])]
    for i, entry in enumerate(manifest.get("scenarios", [])):
        sub = root / entry["folder"]
        # Two scenarios may share a name (a scenario against a variant of it): the figures need distinct labels.
        label = entry["name"] if names.count(entry["name"]) == 1 else f"{entry['name']} ({chr(ord('A') + i)})"
        runs.append(RunData(label, sub, _read_manifest(sub)))
    if not (root / "comparison.csv").exists() or len(runs) < 2:
        raise ScenarioError(str(root), "comparison.csv", None, "a finished csfsim comparison folder")
    return Target(root, runs, pd.read_csv(root / "comparison.csv"), manifest)


# ---------------------------------------------------------------- series: what the figures put side by side


def series_patients(target: Target) -> list[tuple[str, RunData, pd.DataFrame]]:
    """(label, run, patients) per series: each scenario of a comparison; in a single run with several
    first-contact centers, each center (patients by the center where they first presented)."""
    out = []
    for run in target.runs:
        p = run.care_patients
        homes = sorted(p["home_center"].unique())
        if target.is_comparison or len(homes) <= 1:
            out.append((run.label, run, p))
        else:
            out.extend((f"{run.label} · {h}", run, p[p["home_center"] == h]) for h in homes)
    return out


def series_metrics(target: Target) -> pd.DataFrame:
    """Per series, patient group and metric: mean over replications with t-based 95% CI (the definitions of
    sim.analysis.stats, so the numbers equal summary.csv for whole scenarios)."""
    rows = []
    for label, run, p in series_patients(target):
        horizon = float(run.manifest["horizon_days"])
        reps = range(int(run.manifest["replications"]))
        by_rep = dict(tuple(p.groupby("replication")))
        for group in GROUPS:
            per_rep: dict[str, list[float]] = {}
            for r in reps:
                frame = by_rep.get(r, p.iloc[0:0])
                if group != "all":
                    frame = frame[frame["etiology"] == group]
                for metric, value in patient_metrics(frame, horizon).items():
                    per_rep.setdefault(metric, []).append(value)
            for metric, values in per_rep.items():
                mean, _, lo, hi = metric_interval(metric, np.asarray(values, dtype=float))
                rows.append((label, group, metric, mean, lo, hi))
    return pd.DataFrame(rows, columns=["series", "group", "metric", "mean", "ci95_low", "ci95_high"])


def procedure_table(metrics: pd.DataFrame) -> pd.DataFrame:
    kinds = {f"{k}_per_patient": k for k in plots.PROCEDURE_LABELS}
    sel = metrics[(metrics["group"] == "all") & metrics["metric"].isin(kinds)]
    return sel.assign(kind=sel["metric"].map(kinds))[["series", "kind", "mean", "ci95_low", "ci95_high"]]


def shares_table(metrics: pd.DataFrame) -> pd.DataFrame:
    names = {"share_rih": "Rebound intracranial hypertension", "share_persistent": "Persistent symptoms"}
    sel = metrics[metrics["metric"].isin(names)]
    return sel.assign(measure=sel["metric"].map(names), group=sel["group"].map(GROUP_SHORT))[
        ["measure", "series", "group", "mean", "ci95_low", "ci95_high"]]


def flow_category(p: pd.DataFrame) -> pd.Series:
    """Final state, refined by what resolved the leak or why symptoms persist."""
    cat = p["final_state"].astype(object).copy()
    resolved = p["final_state"] == "resolved"
    cat[resolved] = p.loc[resolved, "resolved_by"]
    persistent = p["final_state"] == "persistent"
    cat[persistent] = p.loc[persistent, "persistent_reason"]
    return cat


def flow_shares(target: Target) -> pd.DataFrame:
    """Share of patients in each flow category, pooled over replications, per series and patient group."""
    rows = []
    for label, _, p in series_patients(target):
        cats = flow_category(p)
        for group in GROUPS:
            mask = np.ones(len(p), dtype=bool) if group == "all" else (p["etiology"] == group).to_numpy()
            if not mask.any():
                continue
            shares = cats[mask].value_counts(normalize=True)
            bar = f"{label} — {GROUP_SHORT[group]}" if len(target.runs) > 1 or label != target.runs[0].label \
                else GROUP_SHORT[group]
            rows.extend((bar, cat, float(share)) for cat, share in shares.items())
    return pd.DataFrame(rows, columns=["bar", "category", "share"])


def km_curves(target: Target, event: str, points: int = 400) -> pd.DataFrame:
    """Kaplan-Meier curves from km.csv for the figure: scenarios side by side overall and per etiology (a
    comparison), or by home center (several of them) or else by center, and by etiology (a run); each step
    function resampled exactly at `points` days."""
    pieces = []
    for run in target.runs:
        km = run.table("km.csv")
        if km is None:
            continue
        km = km[km["event"] == event]
        # Several home centers: the curves by where patients live (the network question); else by where care ended.
        by_home = km.loc[km["group_by"] == "home_center", "group"].nunique() > 1
        for (group_by, group), g in km.groupby(["group_by", "group"], sort=False):
            if target.is_comparison:
                if group_by in ("center", "home_center"):
                    continue
                panel, label = GROUP_NAMES.get(group, group), run.label
            else:
                if group_by == "all" or group_by == ("center" if by_home else "home_center"):
                    continue
                panel = {"center": "By center (where care ended)", "home_center": "By home center (first "
                         "presented there)"}.get(group_by, "By etiology")
                label = GROUP_SHORT.get(group, group)
            pieces.append(_resample_step(g, points).assign(panel=panel, label=label))
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


def _resample_step(g: pd.DataFrame, points: int) -> pd.DataFrame:
    days = g["days"].to_numpy(dtype=float)
    grid = np.unique(np.concatenate([np.linspace(0.0, days.max(), points), days[:1]]))
    idx = np.searchsorted(days, grid, side="right") - 1
    columns = [c for c in ("survival", "ci95_low", "ci95_high", "incidence") if c in g]
    return pd.DataFrame({"days": grid, **{c: g[c].to_numpy(dtype=float)[idx] for c in columns}})


def resource_series(target: Target) -> list[tuple[str, pd.DataFrame, pd.DataFrame, float, int]]:
    """(label, uses, resources, horizon, replications) per scenario and center with any resource use."""
    out = []
    for run in target.runs:
        uses = run.table("resource_uses.parquet")
        res = run.table("resources.csv")
        if uses is None or res is None:
            continue
        for center, u in uses.groupby("center", sort=True):
            label = f"{run.label} · {center}" if target.is_comparison else str(center)
            out.append((label, u, res[res["center"] == center], float(run.manifest["horizon_days"]),
                        int(run.manifest["replications"])))
    return out


def waits_table(target: Target) -> pd.DataFrame:
    frames = [u.assign(series=label, wait_days=u["start_day"] - u["request_day"])[["series", "resource", "wait_days"]]
              for label, u, *_ in resource_series(target)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["series", "resource", "wait_days"])
    order = {r: i for i, r in enumerate(RESOURCES)}
    return df.sort_values("resource", key=lambda s: s.map(order), kind="stable")


def monthly_utilization(uses: pd.DataFrame, resources: pd.DataFrame, horizon_days: float) -> pd.DataFrame:
    """Utilization per month and resource of one center: busy server-days in the month over capacity x days,
    summed over replications. Busy time is the overlap of each use [start_day, end_day] with the month.
    Session-booked resources are left out (CSF patients' service time says nothing of their shared slots)."""
    edges = np.append(np.arange(0.0, horizon_days, MONTH_DAYS), horizon_days)
    widths = np.diff(edges)
    rows = []
    booked = set(resources.loc[resources["sessions_per_week"] > 0, "resource"]) \
        if "sessions_per_week" in resources else set()
    for resource, u in uses.groupby("resource", sort=False):
        if resource in booked:  # its slots are shared with other patients: resources.csv has their use
            continue
        start = u["start_day"].to_numpy(dtype=float)
        length = u["end_day"].to_numpy(dtype=float) - start
        # busy(t) = total time in service before t; the busy time of a month is busy(end) - busy(start)
        busy_before = np.array([np.clip(t - start, 0.0, length).sum() for t in edges])
        server_days = resources.loc[resources["resource"] == resource, "capacity"].sum() * widths
        util = np.diff(busy_before) / np.where(server_days > 0, server_days, np.nan)
        rows.extend((resource, i + 1, float(v)) for i, v in enumerate(util))
    return pd.DataFrame(rows, columns=["resource", "month", "utilization"])


def utilization_table(target: Target) -> pd.DataFrame:
    frames = [monthly_utilization(u, res, horizon).assign(series=label)
              for label, u, res, horizon, _ in resource_series(target)]
    if not frames:
        return pd.DataFrame(columns=["series", "resource", "month", "utilization"])
    order = {r: i for i, r in enumerate(RESOURCES)}
    return pd.concat(frames, ignore_index=True).sort_values("resource", key=lambda s: s.map(order), kind="stable")


# ---------------------------------------------------------------- headline findings and the forest plot

# metric -> (unit kind, group noun used in sentences, sentence for a clear difference). In the sentence,
# {low}/{high} are the scenarios with the smaller/larger value, {m} the size of the difference and {lo}/{hi}
# its 95% CI, all oriented so that they are positive when the CI excludes zero.
SENTENCES: dict[str, tuple[str, str, str]] = {
    "diagnosis_cif_365_days": ("share", "the share diagnosed within a year of onset",
                               "{vh} of {g} were diagnosed within a year of onset at {high} against {vl} at {low}: "
                               "{m} percentage points more (95% CI {lo} to {hi})."),
    "time_to_resolution_rmst_365_days": ("days", "the restricted mean time to resolution over a year",
                                         "Over the first year after onset, {g} waited on average {m} fewer days "
                                         "for a first resolution at {low} than at {high} (restricted mean; 95% CI {lo} "
                                         "to {hi} days)."),
    "time_to_resolution_km_median_days": ("days", "the median time from onset to first resolution",
                                          "The median time from onset to first resolution of {g} was {m} days shorter "
                                          "at {low} than at {high} (Kaplan-Meier; 95% CI {lo} to {hi} days)."),
    "diagnosis_delay_median_days": ("days", "the median diagnosis delay",
                                    "{G} were diagnosed a median of {m} days sooner at {low} than at {high} "
                                    "(95% CI {lo} to {hi} days)."),
    "diagnosis_delay_mean_days": ("days", "the mean diagnosis delay",
                                  "{G} were diagnosed on average {m} days sooner at {low} than at {high} "
                                  "(95% CI {lo} to {hi} days)."),
    "time_to_resolution_median_days": ("days", "the median time from onset to resolution",
                                       "{G} whose leak was resolved got there a median of {m} days sooner at {low} "
                                       "than at {high} (95% CI {lo} to {hi} days)."),
    "symptom_days_mean": ("days", "the mean number of days with symptoms",
                          "{G} spent on average {m} fewer days with symptoms at {low} than at {high} "
                          "(95% CI {lo} to {hi} days)."),
    "share_resolved_by_365_days": ("share", "the share resolved within a year",
                                   "{vh} of {g} were resolved within a year at {high} against {vl} at {low}: "
                                   "{m} percentage points more (95% CI {lo} to {hi})."),
    "share_persistent": ("share", "the share with persistent symptoms",
                         "{vh} of {g} had persistent symptoms at {high} against {vl} at {low}: "
                         "{m} percentage points more (95% CI {lo} to {hi})."),
    "share_rih": ("share", "the share with rebound intracranial hypertension",
                  "{vh} of {g} developed rebound intracranial hypertension at {high} against {vl} at {low}: "
                  "{m} percentage points more (95% CI {lo} to {hi})."),
    "share_residual_symptoms": ("share", "the share with residual symptoms after a seal",
                                "{vh} of sealed {g} kept residual symptoms after the seal at {high} against {vl} "
                                "at {low}: {m} percentage points more (95% CI {lo} to {hi})."),
    "ebp_per_patient": ("count", "blood patches per patient",
                        "{G} received {m} more blood patches per patient at {high} than at {low} "
                        "({vh} against {vl}; 95% CI {lo} to {hi})."),
}


def finding(row_first: pd.Series, row: pd.Series) -> str | None:
    """One plain-language sentence for a comparison.csv row (scenario vs the first); None if not estimable."""
    kind, what, template = SENTENCES[row["metric"]]
    diff, lo, hi = row["diff_vs_first"], row["diff_ci95_low"], row["diff_ci95_high"]
    if any(pd.isna(v) for v in (diff, row["mean"], row_first["mean"])):
        return None
    group = str(row["group"])
    names = (str(row_first["scenario"]), str(row["scenario"]))
    delta = "pp" if kind == "share" else kind
    if pd.isna(lo) or pd.isna(hi) or lo <= 0 <= hi:
        ci = "no confidence interval with one replication" if pd.isna(lo) else \
            f"95% CI {fmt_value(delta, lo, True)} to {fmt_value(delta, hi, True)}"
        unit = {"days": " days", "pp": " percentage points", "count": ""}[delta]
        return (f"{GROUP_NAMES.get(group, group)}: {what} did not differ clearly between {names[0]} "
                f"({fmt_value(kind, row_first['mean'])}) and {names[1]} ({fmt_value(kind, row['mean'])}); "
                f"difference {fmt_value(delta, diff, True)}{unit} ({ci}).")
    # Orient the difference so that it reads as a positive "high minus low".
    if diff > 0:
        low, high, m, c_lo, c_hi, v_low, v_high = names[0], names[1], diff, lo, hi, row_first["mean"], row["mean"]
    else:
        low, high, m, c_lo, c_hi, v_low, v_high = names[1], names[0], -diff, -hi, -lo, row["mean"], row_first["mean"]
    noun = GROUP_NAMES.get(group, group)
    return template.format(G=noun, g=noun[0].lower() + noun[1:] if group != "all" else "all patients",
                           low=low, high=high, m=fmt_value(delta, m), lo=fmt_value(delta, c_lo),
                           hi=fmt_value(delta, c_hi), vl=fmt_value(kind, v_low), vh=fmt_value(kind, v_high))


# The findings are the headline measures that have a sentence: the same metric for the same patients as the
# key table and the console.
FINDINGS: tuple[tuple[str, str], ...] = tuple((m, g) for m, g, _ in HEADLINE if m in SENTENCES)


def headline_findings(comparison: pd.DataFrame) -> list[tuple[dict[str, str], str]]:
    """(attributes, sentence) per finding: every later scenario against the first, for each FINDINGS row."""
    out = []
    for metric, group in FINDINGS:
        sel = comparison[(comparison["metric"] == metric) & (comparison["group"] == group)]
        sel = sel.sort_values("scenario_index")
        if len(sel) < 2:
            continue
        first = sel.iloc[0]
        for _, row in sel.iloc[1:].iterrows():
            sentence = finding(first, row)
            if sentence:
                out.append(({"metric": metric, "group": group, "scenario": str(row["scenario"])}, sentence))
    return out


def single_findings(metrics: pd.DataFrame, headline: Sequence[tuple[str, str, str]]) -> list[str]:
    """The headline measures of a single run as sentences: each series' mean with its 95% CI (the key table's
    numbers, in words)."""
    out = []
    for metric, group, _ in headline:
        if metric not in SENTENCES:
            continue
        sel = metrics[(metrics["metric"] == metric) & (metrics["group"] == group)]
        what = SENTENCES[metric][1]
        for _, row in sel.iterrows():
            if pd.isna(row["mean"]):
                continue
            where = f" at {row['series']}" if sel["series"].nunique() > 1 else ""
            kind = display_kind(metric)
            unit = " days" if kind == "days" else ""
            ci = "" if pd.isna(row["ci95_low"]) else \
                f" (95% CI {fmt_value(kind, row['ci95_low'])} to {fmt_value(kind, row['ci95_high'])}{unit})"
            out.append(f"{GROUP_NAMES.get(group, group)}{where}: {what} was {fmt_value(kind, row['mean'])}{unit}"
                       f"{ci}.")
    return out


def forest_table(comparison: pd.DataFrame, headline: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    """Paired differences of the headline metrics, in display units (days, percentage points, per patient)."""
    rows = []
    first = comparison[comparison["scenario_index"] == 0]["scenario"].iloc[0]
    for metric, group, label in headline:
        sel = comparison[(comparison["metric"] == metric) & (comparison["group"] == group)
                         & (comparison["scenario_index"] > 0)]
        unit, scale = metric_unit(metric)
        for _, r in sel.iterrows():
            rows.append((label, unit, f"{r['scenario']} − {first}", r["diff_vs_first"] * scale,
                         r["diff_ci95_low"] * scale, r["diff_ci95_high"] * scale))
    df = pd.DataFrame(rows, columns=["label", "unit", "comparison", "diff", "ci95_low", "ci95_high"])
    return df.dropna(subset=["diff"])


def metric_unit(metric: str) -> tuple[str, float]:
    """Display unit of a metric's difference and the factor to get there."""
    if is_share(metric):
        return "percentage points", 100.0
    if metric.endswith("_per_patient"):
        return "procedures per patient", 1.0
    return "days", 1.0


# ---------------------------------------------------------------- parameters, grades, STRESS-DES


def _leaves(node: dict[str, Any], prefix: str) -> Iterable[tuple[str, dict[str, Any]]]:
    for key, child in node.items():
        path = f"{prefix}{key}"
        if isinstance(child, dict) and "value" in child and "grade" in child:
            yield path, child
        elif isinstance(child, dict):
            yield from _leaves(child, path + ".")


def effective_parameters(resolved: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Parameter path -> {center or "": parameter} as the scenario's patients meet them: the shared sections,
    plus the profile of each center under its role (first-contact or referral-only), so that scenarios whose
    centers have different names can still be set side by side. A center's own overrides replace its profile's
    values."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for section, node in resolved.items():
        if section not in ("profiles", "centers") and isinstance(node, dict):
            for path, leaf in _leaves(node, f"{section}."):
                out[path] = {"": leaf}
    profiles = resolved.get("profiles", {})
    for cname, meta in resolved.get("centers", {}).items():
        shares = meta.get("catchment_share", {})
        role = FIRST_CONTACT if any(v > 0 for v in shares.values()) else REFERRAL_ONLY
        out.setdefault(f"{role}: profile", {})[cname] = {
            "value": meta.get("profile"), "unit": "choice", "grade": "-",
            "source": "Scenario file" + (f"; refers to {meta['refers_to']}" if meta.get("refers_to") else "")}
        for path, leaf in _leaves(profiles.get(meta.get("profile"), {}), ""):
            out.setdefault(f"{role}: {path}", {})[cname] = leaf
        for path, leaf in _leaves(meta.get("overrides", {}), ""):  # what this center sets apart from its profile
            out.setdefault(f"{role}: {path}", {})[cname] = leaf
    return out


def _fmt_param(value: Any, unit: str) -> str:
    if isinstance(value, dict):
        family = value.get("family", "")
        args = ", ".join(f"{k}={v:g}" if isinstance(v, float | int) else f"{k}={v}" for k, v in value.items()
                         if k != "family")
        return f"{family}({args}) {unit}".strip()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | int):
        return f"{value:g} {unit}" if unit not in ("count", "flag", "choice") else f"{value:g}"
    if isinstance(value, list) and unit == "groups":
        return ", ".join(map(str, value))
    return str(value)


def _cell(entry: dict[str, dict[str, Any]] | None) -> tuple[str, str, str]:
    """(value, grade, source) of one parameter in one scenario (centers joined when a role has several)."""
    if not entry:
        return "—", "", ""
    many = len(entry) > 1
    values = "; ".join((f"{c}: " if many else "") + _fmt_param(p["value"], p["unit"]) for c, p in entry.items())
    grades = "/".join(dict.fromkeys(str(p["grade"]) for p in entry.values()))
    sources = "; ".join(dict.fromkeys(str(p["source"]) for p in entry.values()))
    return values, grades, sources


def _follow_up_sentence(manifest: dict) -> str:
    """Which onsets the patient statistics count (run.follow_up_days), as the report's STRESS item 4.1 says it."""
    days = manifest.get("follow_up_days") or 0
    if not days:
        return "Every onset up to the horizon is counted (period statistics: late onsets have little follow-up)."
    until = manifest.get("counted_until_day", manifest["horizon_days"] - days)
    return (f"The patient statistics count onsets up to day {until:g}, so that each counted patient is followed "
            f"at least {manifest['horizon_days'] - until:g} days; later onsets are simulated (they load the "
            f"resources) but left out of them.")


def _entry_points(incidence: dict[str, Any], adults: Any) -> str:
    """Arrivals as a planner states them: incidence per 100,000 adults and the catchment they apply to."""
    if not incidence or not isinstance(adults, (int, float)):
        return "Poisson arrivals (rates not recorded)"
    per_year = ", ".join(f"{k} {v['value'] * adults / 100_000:.3g}" for k, v in incidence.items())
    return (f"Poisson arrivals from incidence per 100,000 adults per year times a catchment of {adults:,.0f} "
            f"adults: {per_year} per year")


def parameter_rows(runs: Sequence[RunData], only_differing: bool) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(parameter, [(value, grade, source) per scenario]) for every parameter, or only those that differ."""
    trees = [effective_parameters(r.manifest.get("scenario", {})) for r in runs]
    paths = list(dict.fromkeys(p for t in trees for p in t))
    rows = []
    for path in paths:
        cells = [_cell(t.get(path)) for t in trees]
        if only_differing and len({c[0] for c in cells}) == 1:
            continue
        rows.append((path, cells))
    return rows


def stress_des(target: Target) -> list[tuple[str, str, str]]:
    """STRESS-DES items (Monks et al. 2019) that the run answers by itself, with the answer from the manifests."""
    m = target.runs[0].manifest
    scenarios = [r.manifest for r in target.runs]
    leaves = [leaf for r in target.runs for e in effective_parameters(r.manifest.get("scenario", {})).values()
              for leaf in e.values()]
    grades = pd.Series([str(p["grade"]) for p in leaves]).value_counts()
    capacity = []
    for r in target.runs:
        res = r.table("resources.csv")
        if res is not None:
            cap = res.groupby(["center", "resource"], sort=False)["capacity"].first()
            capacity.append(f"{r.label}: " + ", ".join(f"{c}/{k} {v:g}" for (c, k), v in cap.items()))
    population = m.get("scenario", {}).get("population", {})
    incidence = population.get("incidence_per_100k_per_year", {})
    adults = population.get("catchment", {}).get("adults", {}).get("value")
    files = sorted({f for s in scenarios for f in s.get("files", [])} | {"manifest.json"})
    return [
        ("1.2", "Model outputs", "Files: " + ", ".join(files) + "; figures and this report."),
        ("1.3", "Experimentation aims", " | ".join(f"{s['scenario_name']}: {s.get('scenario_description', '')}"
                                                  for s in scenarios)
         + (" Compared on common random numbers." if target.is_comparison else "")),
        ("2.3", "Scenario logic", "; ".join(f"{s['scenario_name']} ({s['scenario_file']})" for s in scenarios)
         + (f"; {len(parameter_rows(target.runs, True))} parameters differ (table above)"
            if target.is_comparison else "")),
        ("2.5.3", "Resources", " | ".join(capacity) or "not recorded"),
        ("2.5.5", "Entry/exit points", _entry_points(incidence, adults) + f"; exit at a final state or the "
         f"horizon ({m['horizon_days']:g} days)."),
        ("3.1", "Data sources", f"{len(leaves)} parameter values, each with a source; grades: "
         + ", ".join(f"{g} {n}" for g, n in grades.items()) + " (L = weak evidence)."),
        ("4.1", "Initialisation", f"Warm-up {m['warmup_days']:g} days: patients with onset before it are left "
         "out of the statistics; the system starts empty. " + _follow_up_sentence(m)),
        ("4.2", "Run length", f"{m['horizon_days']:g} days of arrivals and follow-up per replication."
         if not m.get("arrivals_until_days") else
         f"Cohort mode: onsets over {m['arrivals_until_days']:g} days, everyone followed to day "
         f"{m['horizon_days']:g} (at least {m['horizon_days'] - m['arrivals_until_days']:g} days each)."),
        ("4.3", "Estimation approach", f"{m['replications']} replications per scenario; mean and t-based 95% CI "
         "across replications" + ("; paired differences on common random numbers." if target.is_comparison
                                  else ".")),
        ("5.1", "Software", ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if k != "platform")),
        ("5.2", "Random sampling", f"Root seed {m['seed']}; {m.get('replication_seeds', '')}."),
        ("5.3", "Model execution", f"Engine {m.get('engine', '')} (event scheduling via processes); "
         + "; ".join(f"{s['scenario_name']}: {s.get('backend', 'backend not recorded')}, "
                     f"{s.get('wall_seconds')} s wall, {s.get('patients')} patients" for s in scenarios) + "."),
        ("5.4", "System specification", str(m.get("versions", {}).get("platform", "not recorded"))),
        ("6.1", "Computer model sharing", f"git commit {m.get('git_commit', 'unknown')}; command: "
         f"{target.manifest.get('command', m.get('command', ''))}"),
    ]


# ---------------------------------------------------------------- HTML


def headline_table(target: Target, metrics: pd.DataFrame, headline: Sequence[tuple[str, str, str]]) -> str:
    if target.is_comparison:
        comp = target.comparison
        assert comp is not None
        names = [r.label for r in target.runs]
        headers = ["Measure", *[f"{n}: mean (95% CI)" for n in names],
                   *[f"{n} − {names[0]} (95% CI)" for n in names[1:]]]
        rows = []
        for metric, group, label in headline:
            sel = comp[(comp["metric"] == metric) & (comp["group"] == group)].sort_values("scenario_index")
            if sel.empty:
                continue
            kind = display_kind(metric)
            cells = [mean_ci(r["mean"], r["ci95_low"], r["ci95_high"], kind) for _, r in sel.iterrows()]
            diffs = [mean_ci(r["diff_vs_first"], r["diff_ci95_low"], r["diff_ci95_high"],
                              "pp" if kind == "share" else kind, signed=True) for _, r in sel.iloc[1:].iterrows()]
            rows.append([label, *cells, *diffs])
        note = "<p class='note'>Shares in %, differences of shares in percentage points.</p>"
        return html_table(headers, rows, numeric_from=1) + note
    series = list(dict.fromkeys(metrics["series"]))
    rows = []
    for metric, group, label in headline:
        sel = metrics[(metrics["metric"] == metric) & (metrics["group"] == group)].set_index("series")
        if sel.empty:
            continue
        rows.append([label, *[mean_ci(sel.loc[s, "mean"], sel.loc[s, "ci95_low"], sel.loc[s, "ci95_high"],
                                       display_kind(metric)) for s in series]])
    return html_table(["Measure", *[f"{s}: mean (95% CI)" for s in series]], rows, numeric_from=1)


def outcomes_by_group_table(metrics: pd.DataFrame) -> str:
    cols = [("n_presented", "Counted patients reaching care per replication", "whole"),
            ("diagnosis_cif_365_days", "Diagnosed within a year (cumulative incidence)", "share"),
            ("share_resolved_by_365_days", "Resolved within a year", "share"),
            ("share_persistent", "Persistent symptoms", "share"),
            ("share_rih", "Rebound hypertension", "share"),
            ("share_referred", "Referred", "share")]
    rows = []
    for (series, group), g in metrics.groupby(["series", "group"], sort=False):
        g = g.set_index("metric")
        rows.append([series, GROUP_SHORT[group], *[fmt_value(k, g.loc[m, "mean"]) if m in g.index else "n/a"
                                                    for m, _, k in cols]])
    return html_table(["Series", "Patient group", *[c[1] for c in cols]], rows, numeric_from=2)


# What the by-home-center table shows: spontaneous leaks of each home center, then its patients' symptom days.
HOME_MEASURES: tuple[tuple[str, str, str], ...] = (
    ("diagnosis_cif_365_days", "spontaneous", "Diagnosed within a year, spontaneous"),
    ("time_to_resolution_rmst_365_days", "spontaneous", "Onset to resolution, restricted mean over a year, "
                                                        "spontaneous (days)"),
    ("share_resolved_by_365_days", "spontaneous", "Resolved within a year, spontaneous"),
    ("share_persistent", "spontaneous", "Persistent symptoms, spontaneous"),
    ("share_referred", "spontaneous", "Referred, spontaneous"),
    ("symptom_days_mean", "all", "Symptom days per patient, all (days)"),
)


def _home_group(home: str, group: str) -> str:
    return f"home:{home}" if group == "all" else f"home:{home}/{group}"


def home_centers_table(target: Target) -> str:
    """Outcomes by home center (the center where patients first presented: where they live), for runs with
    several; in a comparison with each scenario's value and the paired difference from the first."""
    if target.is_comparison:
        source = target.comparison
    else:
        summary = target.runs[0].table("summary.csv")
        source = None if summary is None else summary[summary["level"] == "across"]
    if source is None:
        return ""
    home_rows = source[source["group"].astype(str).str.startswith("home:")]
    by_scenario = home_rows.groupby("scenario_index")["group"] if target.is_comparison else [(0, home_rows["group"])]
    # Shown where some scenario has patients living in two or more places (else it repeats the key table).
    if not any(len({g[5:].split("/")[0] for g in groups}) > 1 for _, groups in by_scenario):
        return ""
    homes = sorted({g[5:].split("/")[0] for g in home_rows["group"].unique()})
    rows = []
    for home in homes:
        for metric_name, group, label in HOME_MEASURES:
            sel = source[(source["metric"] == metric_name) & (source["group"] == _home_group(home, group))]
            if sel.empty:
                continue
            kind = display_kind(metric_name)
            if not target.is_comparison:
                r = sel.iloc[0]
                rows.append([home, label, mean_ci(r["mean"], r["ci95_low"], r["ci95_high"], kind)])
                continue
            by_index = sel.set_index("scenario_index")
            cells = [mean_ci(by_index.loc[i, "mean"], by_index.loc[i, "ci95_low"], by_index.loc[i, "ci95_high"],
                              kind) if i in by_index.index else "n/a" for i in range(len(target.runs))]
            diffs = [mean_ci(by_index.loc[i, "diff_vs_first"], by_index.loc[i, "diff_ci95_low"],
                              by_index.loc[i, "diff_ci95_high"], "pp" if kind == "share" else kind, signed=True)
                     if i in by_index.index else "n/a" for i in range(1, len(target.runs))]
            if any(c != "n/a" for c in cells):
                rows.append([home, label, *cells, *diffs])
    if not rows:
        return ""
    names = [r.label for r in target.runs]
    headers = ["Home center", "Measure", *[f"{n}: mean (95% CI)" for n in names],
               *[f"{n} − {names[0]} (95% CI)" for n in names[1:]]]
    return ("<h3 id='home-centers'>By home center (where patients first presented)</h3>"
            "<p class='note'>Patients by the center where they first presented, wherever their care ended: does "
            "where you live change your outcome? Differences are paired replication by replication; n/a where a "
            "scenario has no such home center. Shares in %, differences of shares in percentage points.</p>"
            + html_table(headers, rows, numeric_from=2))


def resources_table(target: Target) -> str:
    rows = []
    for run in target.runs:
        res = run.table("resources.csv")
        if res is None:
            continue
        if "sessions_per_week" not in res:  # a run folder from before session-booked resources
            res = res.assign(sessions_per_week=0, mean_list_length=res["mean_queue_length"])
        agg = res.groupby(["center", "resource"], sort=False).agg(
            capacity=("capacity", "first"), sessions=("sessions_per_week", "first"), served=("n_served", "mean"),
            wait=("mean_wait_days", "mean"), p90=("p90_wait_days", "mean"), util=("utilization", "mean"),
            queue=("mean_queue_length", "mean"), listed=("mean_list_length", "mean"))
        for (center, resource), r in agg.iterrows():
            if r["served"] == 0:
                continue
            capacity = (f"{r['sessions']:g} a week x {r['capacity']:g} slots" if r["sessions"] > 0
                        else f"{r['capacity']:g}")
            rows.append([run.label, center, resource, capacity, f"{r['served']:.0f}",
                         fmt_value("count", r["wait"]), fmt_value("count", r["p90"]), fmt_value("share", r["util"]),
                         fmt_value("count", r["queue"]), fmt_value("count", r["listed"])])
    return html_table(["Scenario", "Center", "Resource", "Capacity (servers, or sessions x slots)",
                   "Served per replication", "Mean wait (days)", "90th percentile wait (days)",
                   "Utilization (of every patient group on a session list)", "Mean queue length (patients)",
                   "Mean waiting list, everyone on it (patients)"], rows, numeric_from=3)


def make_figures(target: Target, metrics: pd.DataFrame, headline: Sequence[tuple[str, str, str]],
                 fig_dir: Path, jobs: int = 1) -> list[tuple[Path, str]]:
    """Every figure the data allow, as (PNG path, caption). With `jobs` > 1 the figures are drawn on that many
    forked processes (drawing is most of a report's time, and figures are independent); same files either way."""
    tasks: list[tuple[Callable[..., Path], tuple[Any, ...], str]] = []  # (plot function, its arguments, caption)

    def add(name: str, data: pd.DataFrame, fn: Callable[..., Path], caption: str, *args: object) -> None:
        if len(data):
            tasks.append((fn, (data, *args, fig_dir / name), caption))

    by = "scenario, overall and by etiology" if target.is_comparison else "center and etiology"
    curves = {event: km_curves(target, event) for event in ("diagnosis", "resolution")}
    xmax = max((plots.km_xmax(c) for c in curves.values() if len(c)), default=None)
    add("km_diagnosis", curves["diagnosis"], plots.plot_km,
        f"Share diagnosed by days since onset, by {by} (patients who reached care): the cumulative incidence "
        "(Aalen-Johansen), in which a leak that closed on its own before any diagnosis is a competing event, not "
        "a censored one; censored at the horizon.", "diagnosis", xmax)
    add("km_resolution", curves["resolution"], plots.plot_km,
        f"Time from onset to resolution by {by}, on the same day range.", "resolution", xmax)
    if target.is_comparison:
        assert target.comparison is not None
        add("forest_differences", forest_table(target.comparison, headline), plots.plot_forest,
            "Paired differences of the headline measures from the first scenario, with 95% CIs.")
    add("procedures_per_patient", procedure_table(metrics), plots.plot_procedures,
        "Procedures per patient who reached care, by kind.")
    add("pathway_flow", flow_shares(target), plots.plot_flow,
        "Pathway flow: how patients end up, from resolution before care to each final state.")
    add("rih_persistent", shares_table(metrics), plots.plot_shares,
        "Rebound intracranial hypertension and persistent symptoms by patient group.")
    add("waits", waits_table(target), plots.plot_waits, "Queue waits per resource (distribution).")
    add("utilization", utilization_table(target), plots.plot_utilization,
        "Utilization per resource and month (mean over replications).")
    try:
        # Worker processes of this machine (the figures are files here); forked, they share this process's
        # imports (matplotlib, pandas).
        paths = Backend("processes", jobs).map(_call, [(fn, args) for fn, args, _ in tasks])
    except WorkLost:
        raise RunInterrupted(f"a worker process died while drawing the report's figures; the results in "
                             f"{target.folder} are complete: `csfsim report {target.folder}` draws them "
                             "again") from None
    return [(path, caption) for path, (_, _, caption) in zip(paths, tasks, strict=True)]


def _call(fn: Callable[..., Path], args: tuple[Any, ...]) -> Path:
    return fn(*args)


def build_report(folder: str | os.PathLike[str], jobs: int = 1) -> Path:
    """Write `report.html` and `figures/` into a run or comparison folder (figures drawn on `jobs` processes);
    returns the report path."""

    manifest = _read_manifest(Path(folder), ("csfsim_run", "csfsim_compare", "csfsim_explain", *ANALYSES))
    if manifest.get("csfsim_explain"):
        return explanation.build_explain_report(Path(folder), manifest)
    if any(manifest.get(key) for key in ANALYSES):
        return build_analysis_report(Path(folder), manifest)
    target = load_target(folder)
    fig_dir = target.folder / "figures"
    metrics = series_metrics(target)
    figures = make_figures(target, metrics, HEADLINE, fig_dir, jobs)
    explained = ""
    if target.is_comparison and (target.folder / explanation.EXPLAIN_CSV).exists():
        table = pd.read_csv(target.folder / explanation.EXPLAIN_CSV)
        explained = explanation.section_html(table, explanation.draw_figures(table, fig_dir),
                                             [r.label for r in target.runs], target.manifest.get("explain", {}))
    html_text = render(target, metrics, figures, HEADLINE, explained)
    out = target.folder / "report.html"
    atomic_write_text(out, html_text)
    return out


def render(target: Target, metrics: pd.DataFrame, figures: Sequence[tuple[Path, str]],
           headline: Sequence[tuple[str, str, str]], explained: str = "") -> str:
    """The report as one HTML string (images embedded, styles inline, no scripts, no links out); `explained`: the
    "why they differ" section of a comparison made with --explain."""
    m = target.runs[0].manifest
    title = " vs ".join(r.label for r in target.runs) if target.is_comparison else target.runs[0].label
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>csfsim report: {escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>csfsim report: {escape(title)}</h1>"]
    # What was run
    rows = [[r.label, r.manifest.get("scenario_description", ""), r.manifest.get("scenario_file", ""),
             f"{r.manifest['horizon_days']:g}", f"{r.manifest['warmup_days']:g}",
             f"{r.manifest.get('follow_up_days') or 0:g}", str(r.manifest["replications"]),
             str(r.manifest["seed"]), str(r.manifest.get("patients", ""))] for r in target.runs]
    parts.append("<h2 id='what'>What was run</h2>" + html_table(
        ["Scenario", "Description", "File", "Horizon (days)", "Warm-up (days)", "Follow-up (days)",
         "Replications", "Seed", "Patients simulated (all replications)"], rows))
    if target.is_comparison:
        parts.append("<p>The scenarios were run on <b>common random numbers</b>: replication <i>r</i> of every "
                     "scenario draws the same patients with the same luck, so differences are paired.</p>")
    # Findings
    parts.append("<h2 id='findings'>Headline findings</h2>")
    if target.is_comparison:
        assert target.comparison is not None
        items = "".join(f"<li data-metric='{escape(a['metric'])}' data-group='{escape(a['group'])}' "
                        f"data-scenario='{escape(a['scenario'])}'>{escape(s)}</li>"
                        for a, s in headline_findings(target.comparison))
        parts.append(f"<ul class='findings'>{items}</ul><p class='note'>Computed from comparison.csv: mean of "
                     f"the paired per-replication differences and its t-based 95% CI over {m['replications']} "
                     "replications.</p>")
    else:
        items = "".join(f"<li>{escape(s)}</li>" for s in single_findings(metrics, headline))
        parts.append(f"<ul class='findings'>{items}</ul><p class='note'>Means over {m['replications']} "
                     "replications with 95% CIs (the key results below). A single scenario has no difference to "
                     "state: run <code>csfsim compare</code> for paired differences between scenarios.</p>")
    parts.append("<h2 id='tables'>Key results</h2>" + headline_table(target, metrics, headline))
    parts.append("<h3>Outcomes by patient group</h3>" + outcomes_by_group_table(metrics))
    parts.append(home_centers_table(target))
    parts.append("<h3>Resources</h3>" + resources_table(target))
    parts.append(explained)
    # Figures
    parts.append("<h2 id='figures'>Figures</h2>")
    parts.extend(figure_html(png, caption) for png, caption in figures)
    if not any(p.stem == "waits" for p, _ in figures):
        parts.append("<p class='note'>No resource-use table in this run (run without --no-events for waiting-time "
                     "and utilization figures).</p>")
    # Parameters
    parts.append(_parameters_html(target))
    parts.append("<h2 id='stress'>STRESS-DES items answered by this run</h2>" + html_table(
        ["Item", "Topic", "Answer from the manifest"], stress_des(target)))
    parts.append("<p class='note'>Items on purpose, model logic, assumptions and code access beyond the commit are "
                 "in docs/model.md and docs/parameters.md.</p>")
    parts.append("<h2 id='manifest'>Run manifest</h2>")
    if target.is_comparison:
        parts.append(f"<h3>Comparison</h3><pre>{escape(json.dumps(target.manifest, indent=2))}</pre>")
    for r in target.runs:
        short = {k: v for k, v in r.manifest.items() if k != "scenario"}
        parts.append(f"<h3>{escape(r.label)}</h3><pre>{escape(json.dumps(short, indent=2))}</pre><details><summary>"
                     f"Resolved scenario (every parameter with value, unit, grade and source)</summary><pre>"
                     f"{escape(json.dumps(r.manifest.get('scenario', {}), indent=1))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _param_table(runs: Sequence[RunData], rows: Sequence[tuple[str, list[tuple[str, str, str]]]]) -> str:
    body = []
    for path, cells in rows:
        weak = any("L" in c[1].split("/") for c in cells)
        tds = "".join(f"<td>{escape(v)} <span class='badge{' grade-L' if 'L' in g.split('/') else ''}'>"
                      f"{escape(g)}</span><div class='src'>{escape(s)}</div></td>" for v, g, s in cells)
        flag = " <span class='badge grade-L'>weak evidence</span>" if weak else ""
        body.append(f"<tr><td><code>{escape(path)}</code>{flag}</td>{tds}</tr>")
    head = "".join(f"<th>{escape(r.label)}: value, grade, source</th>" for r in runs)
    return f"<table><thead><tr><th>Parameter</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


FOLD_ROWS = 25  # a parameter table longer than this starts folded


def _parameters_html(target: Target) -> str:
    parts = ["<h2 id='parameters'>Parameters</h2><p>Grades: H = strong evidence, M = moderate, L = weak "
             "(placeholder or proxy: vary it in sensitivity analyses), - = model setting.</p>"]
    if target.is_comparison:
        differing = parameter_rows(target.runs, only_differing=True)
        shown = " open" if len(differing) <= FOLD_ROWS else ""  # a long table is folded, as the weak one below
        parts.append(f"<h3>Parameters that differ between the scenarios ({len(differing)})</h3>"
                     "<p class='note'>Center parameters are listed by role: first-contact centers take a "
                     "catchment share; referral-only centers receive referrals. Values are each center's own: its "
                     "profile's, with the scenario's overrides for that center.</p>"
                     f"<details{shown}><summary>The {len(differing)} parameters that differ, with each scenario's "
                     "value, grade and source</summary>" + _param_table(target.runs, differing) + "</details>")
    weak = [(p, cells) for p, cells in parameter_rows(target.runs, only_differing=False)
            if any("L" in c[1].split("/") for c in cells)]
    total = len(parameter_rows(target.runs, only_differing=False))
    parts.append(f"<h3>Weak-evidence (grade L) parameters: {len(weak)} of {total}</h3><details><summary>The "
                 f"{len(weak)} parameters whose evidence is weak, with their values and sources (the ones to vary "
                 "in a sensitivity analysis)</summary>" + _param_table(target.runs, weak) + "</details>")
    return "".join(parts)
