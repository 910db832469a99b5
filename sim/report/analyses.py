"""report.html of the folders `csfsim sweep`, `psa` and `sensitivity` write, with the run and comparison
reports' styles and rules: every number from the folder's own tables and manifest, figures embedded, nothing
loaded from the network. `csfsim report FOLDER` rebuilds any of them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.metrics import METRICS
from sim.io.outputs import atomic_write_text
from sim.report.markup import CSS, escape, figure_html, html_table

ANALYSES = ("csfsim_sweep", "csfsim_psa", "csfsim_sensitivity")


def _page(title: str, parts: Sequence[str], manifest: dict[str, Any]) -> str:
    short = {k: v for k, v in manifest.items() if k not in ("scenario", "versions")}
    return "\n".join([
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>csfsim report: {escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>csfsim report: {escape(title)}</h1>", *parts,
        f"<h2 id='manifest'>Manifest</h2><pre>{escape(json.dumps(short, indent=2, default=str))}</pre>"
        f"<details><summary>Versions</summary><pre>{escape(json.dumps(manifest.get('versions', {}), indent=2))}"
        "</pre></details></body></html>"])


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return "n/a"
    return f"{value:.{digits}g}"


def _frame_table(frame: pd.DataFrame, numeric_from: int = 1) -> str:
    rows = [[_number(v) if not isinstance(v, str) else v for v in row] for row in frame.itertuples(index=False)]
    return html_table([str(c) for c in frame.columns], rows, numeric_from=numeric_from)


def _figure(folder: Path, stem: str, caption: str) -> str:
    png = folder / f"{stem}.png"
    return figure_html(png, caption, where="") if png.exists() else ""


def sweep_report(folder: Path, manifest: dict[str, Any]) -> str:
    table = pd.read_csv(folder / "sweep.csv")
    settings: dict[str, list[Any]] = manifest["settings"]
    paths = list(settings)
    metric, group = manifest["metric"], manifest["group"]
    label = METRICS[metric].title(group) if metric in METRICS else f"{metric}, {group}"
    what = html_table(["Parameter", "Values"], [[p, ", ".join(str(v) for v in vs)] for p, vs in settings.items()])
    chosen = table[(table["metric"] == metric) & (table["group"] == group)]
    columns = [*paths, "mean", "ci95_low", "ci95_high", "diff_vs_first", "diff_ci95_low", "diff_ci95_high"]
    others = table[~((table["metric"] == metric) & (table["group"] == group))]
    parts = [
        "<h2 id='what'>What was run</h2>",
        f"<p>Scenario <code>{escape(str(manifest['base']))}</code>: {manifest['combinations']} combinations of the "
        f"settings below, {manifest['replications']} replications each, seed {manifest['seed']}, on common random "
        "numbers (every combination draws the same patients), so that differences from the first combination "
        "are paired.</p>" + what,
        f"<h2 id='result'>{escape(label)}</h2>",
        _figure(folder, "sweep", f"{label} over the grid: mean and 95% CI"),
        _frame_table(chosen[columns], numeric_from=len(paths)),
        "<p class='note'>Means over replications with 95% CIs (shares on the logit scale); differences from the "
        "first combination paired replication by replication, in the metric's unit.</p>",
        f"<details><summary>Every other metric and group ({len(others)} rows; sweep.csv)</summary>"
        + _frame_table(others[["metric", "group", *columns]], numeric_from=2 + len(paths)) + "</details>",
    ]
    return _page(f"sweep of {', '.join(paths)}", parts, manifest)


def psa_report(folder: Path, manifest: dict[str, Any]) -> str:
    names = [s["name"] for s in manifest.get("scenarios", [])]
    parts = ["<h2 id='what'>What was run</h2>",
             f"<p>{escape(' against '.join(reversed(names)))}: {manifest['samples']} parameter samples "
             f"({escape(manifest['method'])}) over {manifest['uncertain_inputs']} uncertain inputs, "
             f"{manifest['replications_per_sample']} replication(s) per sample, seed {manifest['seed']}; within a "
             "sample both scenarios draw the same patients.</p>"]
    cea_file = folder / "cea.csv"
    if cea_file.exists():
        s = pd.read_csv(cea_file).iloc[0]
        cur = escape(str(s["currency"]))
        parts += [
            "<h2 id='result'>Cost-effectiveness</h2>",
            f"<p><b>{escape(str(s['scenario_b']))}</b> against <b>{escape(str(s['scenario_a']))}</b>: "
            f"{escape(str(s['verdict']))}. Incremental cost {s['inc_cost']:,.0f} {cur} and QALYs "
            f"{s['inc_qaly']:+.4f} per patient; incremental net monetary benefit {s['inc_nmb']:,.0f} {cur} (95% CI "
            f"{s['inc_nmb_ci95_low']:,.0f} to {s['inc_nmb_ci95_high']:,.0f}) at {s['wtp']:,.0f} {cur} per QALY "
            f"({s['cost_year']} prices); probability B is cost-effective {s['prob_b_cost_effective']:.0%}; expected "
            f"value of perfect information {max(float(s['evpi_per_patient']), 0.0):,.2f} {cur} per patient.</p>",
            _figure(folder, "ce_plane", "Cost-effectiveness plane: one point per parameter sample"),
            _figure(folder, "ceac", "Cost-effectiveness acceptability curves"),
            _figure(folder, "evpi", "Expected value of perfect information by willingness to pay")]
        groups = folder / "evppi_groups.csv"
        if groups.exists():
            parts.append("<h3>Expected value of partial perfect information, by table of parameters</h3>"
                         + _frame_table(pd.read_csv(groups).head(20))
                         + "<p class='note'>Regression on each table's drawn values (linear basis); compare each "
                           "value with its own noise floor. n/a: too few samples for the table's size.</p>")
        evppi = folder / "evppi.csv"
        if evppi.exists():
            parts.append("<h3>Expected value of partial perfect information, by parameter</h3>"
                         + _frame_table(pd.read_csv(evppi).head(20)))
    summary = pd.read_csv(folder / "psa.csv")
    means = summary.drop(columns="sample").agg(["mean", "std"]).T.reset_index()
    means.columns = ["outcome", "mean over samples", "sd over samples"]
    parts += ["<h3>Outcomes over the samples</h3>", _frame_table(means),
              "<details><summary>The uncertain inputs and their distributions (uncertainty.csv)</summary>"
              + _frame_table(pd.read_csv(folder / "uncertainty.csv"), numeric_from=99) + "</details>"]
    return _page("probabilistic sensitivity analysis", parts, manifest)


def sensitivity_report(folder: Path, manifest: dict[str, Any]) -> str:
    oneway = pd.read_csv(folder / "oneway.csv")
    names = [s["name"] for s in manifest.get("scenarios", [])]
    low, high = manifest["quantiles"]
    parts = ["<h2 id='what'>What was run</h2>",
             f"<p>{escape(' against '.join(reversed(names)))}: {escape(manifest['outcome'])} with each of "
             f"{manifest['parameters']} uncertain parameters at its {low:.1%} and {high:.1%} quantiles, the others "
             f"at their values (base {manifest['base_outcome']:,.4g}); {manifest['replications']} replications per "
             f"evaluation, seed {manifest['seed']}, the same for every evaluation.</p>",
             _figure(folder, "tornado", f"One-way sensitivity of {manifest['outcome']} (widest first)"),
             _frame_table(oneway[["parameter", "grade", "low_value", "high_value", "low_outcome", "high_outcome",
                                  "swing"]].head(25), numeric_from=2)]
    sobol = folder / "sobol.csv"
    if sobol.exists():
        table = pd.read_csv(sobol)
        parts += [f"<h2 id='sobol'>Sobol indices (N = {manifest['sobol_n']})</h2>",
                  _frame_table(table[["parameter", "S1", "S1_conf95", "ST", "ST_conf95", "model_runs"]]),
                  "<p class='note'>First-order (S1) and total (ST) indices with their bootstrap 95% CI half-widths "
                  "(SALib). An index whose CI is wider than about 0.1, or that lies outside [0, 1] beyond its CI, "
                  "is noise: rerun with a larger --sobol.</p>"]
    return _page("sensitivity analysis", parts, manifest)


def build_analysis_report(folder: Path, manifest: dict[str, Any]) -> Path:
    """report.html of a sweep, PSA or sensitivity folder."""
    if manifest.get("csfsim_sweep"):
        text = sweep_report(folder, manifest)
    elif manifest.get("csfsim_psa"):
        text = psa_report(folder, manifest)
    else:
        text = sensitivity_report(folder, manifest)
    out = folder / "report.html"
    atomic_write_text(out, text)
    return out
