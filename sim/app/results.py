"""A finished comparison as a planner reads it in the app: the report's own headline sentences and tables (from
`sim.report.html`, so the app and report.html cannot disagree), interactive figures, and the downloads.

The figure builders return Plotly figures and need no Streamlit; `show_comparison` lays them out.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from sim.analysis.headline import HEADLINE
from sim.report.html import (
    Target,
    forest_table,
    headline_findings,
    headline_table,
    home_centers_table,
    km_curves,
    load_target,
    resources_table,
    utilization_table,
    waits_table,
)
from sim.report.workbook import summary_workbook

TABLE_CSS = """<style>
.csf table{border-collapse:collapse;margin:.4em 0;font-size:.85rem}
.csf th,.csf td{border:1px solid #ccc;padding:.2em .45em;vertical-align:top;text-align:left}
.csf th{background:#f0f2f6}.csf td.num{text-align:right;font-variant-numeric:tabular-nums}
.csf p.note{color:#555;font-size:.8rem}
</style>"""
KM_PANELS = ("All patients", "Spontaneous leaks")
MAX_WAIT_POINTS = 20_000  # per series: a box plot of more says the same and slows the browser


def forest_figure(comparison: pd.DataFrame) -> go.Figure:
    """Paired differences of the headline measures with 95% CIs, one panel per unit (days, percentage points,
    per patient), so that no measure is read on another's scale."""
    df = forest_table(comparison, HEADLINE)
    df = df.assign(plus=df["ci95_high"] - df["diff"], minus=df["diff"] - df["ci95_low"])
    fig = px.scatter(df, x="diff", y="label", color="comparison", facet_row="unit", error_x="plus",
                     error_x_minus="minus", labels={"diff": "difference (95% CI)", "label": ""},
                     height=260 + 34 * len(df))
    fig.update_yaxes(matches=None, showticklabels=True)
    fig.update_xaxes(matches=None, zeroline=True, zerolinecolor="#888", showticklabels=True)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(legend={"orientation": "h", "y": -0.12}, margin={"l": 10, "r": 10, "t": 30})
    return fig


def km_figure(target: Target, event: str, title: str) -> go.Figure | None:
    """Kaplan-Meier curves of the share not yet at `event` by days from onset, all patients and spontaneous
    leaks, each scenario a line, on one x-range (the horizon)."""
    km = km_curves(target, event)
    if km.empty:
        return None
    km = km[km["panel"].isin(KM_PANELS)]
    fig = px.line(km, x="days", y="survival", color="label", facet_col="panel", line_shape="hv",
                  labels={"days": "days from onset", "survival": title, "label": ""}, height=380,
                  range_y=[0, 1.02])
    fig.update_xaxes(range=[0, float(target.runs[0].manifest["horizon_days"])])
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(legend={"orientation": "h", "y": -0.2}, margin={"l": 10, "r": 10, "t": 30})
    return fig


def waits_figure(target: Target) -> go.Figure | None:
    """Waits from request to start of service, per resource and scenario (days)."""
    waits = waits_table(target)
    if waits.empty:
        return None
    waits = waits.sample(frac=1.0, random_state=0).groupby(["series", "resource"], sort=False).head(MAX_WAIT_POINTS)
    fig = px.box(waits, x="resource", y="wait_days", color="series", points=False, height=380,
                 labels={"wait_days": "wait from request to service (days)", "resource": "", "series": ""})
    fig.update_layout(legend={"orientation": "h", "y": -0.2}, margin={"l": 10, "r": 10, "t": 30})
    return fig


def utilization_figure(target: Target) -> go.Figure | None:
    """Monthly utilization of each resource that serves patients in turn (not session-booked), per series."""
    util = utilization_table(target)
    if util.empty:
        return None
    fig = px.line(util, x="month", y="utilization", color="resource", facet_col="series", facet_col_wrap=2,
                  labels={"utilization": "utilization", "month": "month of the run"}, height=420)
    fig.update_yaxes(tickformat=".0%")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40})
    return fig


def csv_archive(folder: Path) -> bytes:
    """Every CSV table of the comparison folder (and its run folders) in one zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*.csv")):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _html(fragment: str) -> None:
    if fragment:
        st.html(f"{TABLE_CSS}<div class='csf'>{fragment}</div>")


def show_comparison(folder: Path) -> None:
    """The results of a finished comparison folder."""
    target = load_target(folder)
    comparison = target.comparison
    assert comparison is not None
    reps = target.runs[0].manifest["replications"]
    st.subheader("Headline findings")
    st.markdown("\n".join(f"- {sentence}" for _, sentence in headline_findings(comparison))
                or "No headline measure could be estimated.")
    st.caption(f"Paired differences over {reps} replications on common random numbers, against "
               f"{target.runs[0].label}; 95% confidence intervals.")
    st.subheader("Key results")
    _html(headline_table(target, pd.DataFrame(), HEADLINE))
    _html(home_centers_table(target))
    st.subheader("Resources: waits and utilization")
    _html(resources_table(target))
    st.subheader("Figures")
    tabs = st.tabs(["Differences", "Time to resolution", "Time to diagnosis", "Waits", "Utilization"])
    figures = [lambda: forest_figure(comparison),
               lambda: km_figure(target, "resolution", "share not yet resolved"),
               lambda: km_figure(target, "diagnosis", "share not yet diagnosed"),
               lambda: waits_figure(target), lambda: utilization_figure(target)]
    for tab, make in zip(tabs, figures, strict=True):
        with tab:
            fig = make()
            if fig is None:
                st.caption("Not in this run.")
            else:
                st.plotly_chart(fig, width="stretch")
    st.subheader("Downloads")
    left, middle, right = st.columns(3)
    left.download_button("Report (report.html)", (folder / "report.html").read_bytes(), file_name="report.html",
                         mime="text/html", help="The self-contained report: what was run, findings, tables, "
                                                "figures, parameters with sources")
    middle.download_button("Tables (CSV, zip)", csv_archive(folder), file_name="csfsim_tables.zip",
                           mime="application/zip")
    right.download_button("Summary workbook (Excel)", summary_workbook(folder), file_name="csfsim_summary.xlsx",
                          mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    st.caption(f"Run folder: `{folder}`")
