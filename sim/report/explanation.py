"""The "why they differ" section of a report, from explain.csv (`sim.runs.explain`), and the report of a folder
written by `csfsim explain`.

A comparison folder holds explain.csv when it was made with `csfsim compare --explain` (one block per later
scenario); an explain folder holds it alone. Both render the same section: a figure of the parts of each explained
gap and a table per gap with every part, its 95% CI and its share of the gap."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.metrics import metric
from sim.figures import plots
from sim.io.outputs import atomic_write_text
from sim.report.markup import CSS, display_kind, escape, figure_html, html_table, mean_ci
from sim.runs.explain import EXPLAINED

EXPLAIN_CSV = "explain.csv"


def _gap_kind(metric_name: str) -> str:
    """A difference of shares is in percentage points."""
    kind = display_kind(metric_name)
    return "pp" if kind == "share" else kind


def figure_parts(table: pd.DataFrame, explained: Sequence[tuple[str, str]] = EXPLAINED) -> pd.DataFrame:
    """The rows the figure draws: per explained metric, its groups, the structure part and the total."""
    rows = []
    for name, group in explained:
        sel = table[(table["metric"] == name) & (table["group"] == group) & (table["kind"] != "subtotal")]
        unit = "percentage points" if _gap_kind(name) == "pp" else metric(name).unit
        scale = 100.0 if _gap_kind(name) == "pp" else 1.0
        for row in sel.itertuples(index=False):
            rows.append({"panel": f"{metric(name).label}, {group} ({unit})", "label": row.label, "kind": row.kind,
                         "contribution": row.contribution * scale, "ci95_low": row.ci95_low * scale,
                         "ci95_high": row.ci95_high * scale})
    return pd.DataFrame(rows, columns=["panel", "label", "kind", "contribution", "ci95_low", "ci95_high"])


def _share(row: Any) -> str:
    if pd.isna(row.share_of_gap):
        return "n/a (no gap: its 95% CI includes 0)"
    return mean_ci(round(row.share_of_gap, 9) + 0.0, row.share_ci95_low, row.share_ci95_high, "share")


def tables_html(table: pd.DataFrame, explained: Sequence[tuple[str, str]] = EXPLAINED) -> str:
    """One table per explained gap: each part with its contribution (95% CI) and its share of the gap."""
    parts = []
    for name, group in explained:
        sel = table[(table["metric"] == name) & (table["group"] == group)]
        if sel.empty:
            continue
        kind = _gap_kind(name)
        rows = [[row.label, mean_ci(round(row.contribution, 9) + 0.0, row.ci95_low, row.ci95_high, kind,
                                     signed=True), _share(row)]
                for row in sel.itertuples(index=False)]
        unit = "percentage points" if kind == "pp" else metric(name).unit
        parts.append(f"<h4>{escape(metric(name).label)}, {escape(group)}</h4>"
                     + html_table(["Part", f"Contribution to B - A ({unit}, 95% CI)", "Share of the gap (95% CI)"],
                              rows, numeric_from=1))
    return "".join(parts)


def _blocks(table: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    """(scenario index, its rows) per explained scenario: a comparison's explain.csv has one block per later
    scenario (`scenario_index`), an explain folder's one block (index 1)."""
    if "scenario_index" not in table:
        return [(1, table)]
    return [(int(i), sub) for i, sub in table.groupby("scenario_index", sort=True)]


def section_html(table: pd.DataFrame, figures: dict[int, Path], labels: Sequence[str],
                 manifest: dict[str, Any]) -> str:
    """The section: how the parts were computed, then per explained scenario its figure and tables. `labels`:
    the scenarios' names by index (A first)."""
    method = manifest.get("method", "shapley")
    how = ("each group's Shapley value: the gap its swap closes, averaged over every order of swapping the "
           "groups that differ" if method == "shapley" else
           "the gap its swap closes when the groups are swapped once each in a fixed order (parts then depend on "
           "that order)")
    out = ["<h2 id='explain'>Why the scenarios differ</h2>",
           "<p>Each difference B - A is shared out among groups of parameters by counterfactual scenarios: one of "
           "the two (the one with more centers) with some groups set to the other's values, all on common random "
           f"numbers; a group's part is {how}. The parts and "
           "the <i>structure</i> part (what no group holds: which centers exist, incidence, horizon) add up to "
           "B - A in every replication; the diagnosis layer is the subtotal of the front door and diagnosis at "
           "the center. Intervals: t over replications for the parts, delta method for the shares. A part of the "
           "opposite sign to B - A narrows the gap (its share is negative). Groups equal in both scenarios are "
           "left out. Every metric is in explain.csv; docs/model.md says how it is computed.</p>"]
    for i, sub in _blocks(table):
        a_label, b_label = labels[0], labels[i]
        out.append(f"<h3>{escape(b_label)} (B) against {escape(a_label)} (A)</h3>")
        if i in figures:
            out.append(figure_html(figures[i], f"Parts of the difference {b_label} minus {a_label}."))
        out.append(tables_html(sub))
    return "".join(out)


def draw_figures(table: pd.DataFrame, fig_dir: Path) -> dict[int, Path]:
    """One explanation figure per explained scenario (explain.png, explain_2.png, ... in a comparison)."""
    out = {}
    for i, sub in _blocks(table):
        parts = figure_parts(sub)
        if len(parts):
            out[i] = plots.plot_explanation(parts, fig_dir / ("explain" if i == 1 else f"explain_{i}"))
    return out


def build_explain_report(folder: Path, manifest: dict[str, Any]) -> Path:
    """report.html of a folder written by `csfsim explain`: what was compared, the section, the manifest."""
    table = pd.read_csv(folder / EXPLAIN_CSV)
    a, b = manifest["scenario_a"], manifest["scenario_b"]
    figures = draw_figures(table, folder / "figures")
    rows = [["A", a["name"], a.get("file", "")], ["B", b["name"], b.get("file", "")]]
    equal = ", ".join(manifest.get("groups_equal", [])) or "none"
    body = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>csfsim explain: {escape(b['name'])} "
            f"vs {escape(a['name'])}</title><style>{CSS}</style></head><body>",
            f"<h1>csfsim explain: {escape(b['name'])} against {escape(a['name'])}</h1>",
            "<h2 id='what'>What was run</h2>" + html_table(["", "Scenario", "File"], rows),
            f"<p>{len(manifest.get('groups', []))} parameter groups differ; the same in both: {escape(equal)}. "
            f"{manifest.get('runs')} scenarios ({escape(manifest.get('method'))}), {manifest.get('replications')} "
            f"replications each, seed {manifest.get('seed')}.</p>",
            section_html(table, figures, [a["name"], b["name"]], manifest),
            f"<h2 id='manifest'>Manifest</h2><pre>{escape(json.dumps(manifest, indent=2))}</pre></body></html>"]
    out = folder / "report.html"
    atomic_write_text(out, "\n".join(body))
    return out
