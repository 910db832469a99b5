"""Sweep one or two parameters over a grid on common random numbers, as `csfsim sweep` does: a line with its
confidence band for one parameter, a heat map for two."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from sim.analysis.headline import HEADLINE
from sim.analysis.metrics import METRICS, metric
from sim.app import draft, forms, jobs, runner, state
from sim.config.parameters import ETIOLOGIES, Scenario
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.runs.sweep import parse_set

DEFAULT_REPLICATIONS = 3
GROUPS = ("all", *ETIOLOGIES)


def numeric_fields(scenario: Scenario) -> list[forms.Field]:
    """The parameters a sweep can vary: every number of the scenario and of each of its centers."""
    fields = forms.scenario_fields(scenario)
    for center in scenario.resolved["centers"]:
        fields += forms.center_fields(scenario, center)
    return [f for f in fields if f.kind in ("int", "float")]


def default_values(f: forms.Field) -> str:
    """A first grid around the current value, for the planner to edit."""
    v = f.value
    if f.kind == "int":
        return ", ".join(str(max(int(v) + k, 0)) for k in (0, 1, 2))
    if f.unit in ("probability", "share"):
        return ", ".join(f"{min(max(v + k, 0.0), 1.0):g}" for k in (-0.1, 0.0, 0.1))
    return ", ".join(f"{v * k:g}" for k in (0.5, 1.0, 1.5))


def sweep_figure(table: pd.DataFrame, paths: list[str], metric_name: str, group: str) -> go.Figure:
    """The metric's mean over the grid: a line with its 95% CI band (one parameter) or a heat map (two)."""
    sel = table[(table["metric"] == metric_name) & (table["group"] == group)]
    m = metric(metric_name)
    title = m.title(group)
    if len(paths) == 1:
        x = paths[0]
        fig = go.Figure([
            go.Scatter(x=list(sel[x]) + list(sel[x])[::-1], y=list(sel["ci95_high"]) + list(sel["ci95_low"])[::-1],
                       fill="toself", fillcolor="rgba(31,119,180,0.2)", line={"width": 0}, mode="lines",
                       name="95% CI", hoverinfo="skip"),
            go.Scatter(x=sel[x], y=sel["mean"], mode="lines+markers", name="mean", line={"color": "#1f77b4"})])
        fig.update_layout(xaxis_title=x, yaxis_title=title, height=420, margin={"l": 10, "r": 10, "t": 30})
        if pd.api.types.is_integer_dtype(sel[x]):
            fig.update_xaxes(tickmode="array", tickvals=sorted(sel[x].unique()))
        return fig
    cell = sel.assign(text=[f"{v:.3g}<br>({lo:.3g} to {hi:.3g})" for v, lo, hi in
                            zip(sel["mean"], sel["ci95_low"], sel["ci95_high"], strict=True)])
    mean = cell.pivot_table(index=paths[1], columns=paths[0], values="mean", sort=True)
    text = cell.pivot_table(index=paths[1], columns=paths[0], values="text", aggfunc="first", sort=True)
    fig = go.Figure(go.Heatmap(z=mean.to_numpy(), x=[str(v) for v in mean.columns], y=[str(v) for v in mean.index],
                               text=text.to_numpy(), texttemplate="%{text}", colorscale="Viridis",
                               colorbar={"title": {"text": m.unit}},
                               hovertemplate=f"{paths[0]} %{{x}}<br>{paths[1]} %{{y}}<br>%{{text}}<extra></extra>"))
    fig.update_layout(title=f"{title}: mean (95% CI)", xaxis_title=paths[0], yaxis_title=paths[1], height=460,
                      margin={"l": 10, "r": 10, "t": 50})
    return fig


def show_sweep(folder: Path, paths: list[str], metric_name: str, group: str) -> None:
    table = pd.read_csv(folder / "sweep.csv")
    metrics = list(dict.fromkeys(table["metric"]))
    left, right = st.columns(2)
    shown = left.selectbox("Metric shown", metrics, index=metrics.index(metric_name), key="sweep:shown",
                           format_func=lambda name: metric(name).label if name in METRICS else name)
    groups = list(dict.fromkeys(table.loc[table["metric"] == shown, "group"]))
    group_shown = right.selectbox("Patient group", groups, index=groups.index(group) if group in groups else 0,
                                  key="sweep:group_shown")
    st.plotly_chart(sweep_figure(table, paths, shown, group_shown), width="stretch")
    sel = table[(table["metric"] == shown) & (table["group"] == group_shown)]
    columns = ["mean", "ci95_low", "ci95_high", "diff_vs_first", "diff_ci95_low", "diff_ci95_high"]
    st.dataframe(sel[[*paths, *columns]].round(dict.fromkeys(columns, 4)), hide_index=True)
    st.caption("Every combination on the same seed (common random numbers); differences are paired against the "
               "first combination.")
    left, right = st.columns(2)
    left.download_button("Report (report.html)", (folder / "report.html").read_bytes(), file_name="report.html",
                         mime="text/html")
    right.download_button("sweep.csv", (folder / "sweep.csv").read_bytes(), file_name="sweep.csv", mime="text/csv")


def page() -> None:
    st.title("Sweep a parameter")
    st.caption("Run a grid of values of one or two parameters on common random numbers (as `csfsim sweep`).")
    d = state.current()
    options = runner.scenario_options(d)
    choice = st.selectbox("Scenario", options, index=options.index("low_volume_center"))
    try:
        base = runner.scenario_file(choice, d)
        scenario = runner.load_within_cap([base])[0]
    except ScenarioError as err:
        st.error(str(err))
        return
    fields = {f.path: f for f in numeric_fields(scenario)}
    paths_all = list(fields)
    settings: list[tuple[str, list]] = []
    two = st.checkbox("Sweep a second parameter (a heat map)")
    for i in range(2 if two else 1):
        left, right = st.columns([2, 1])
        default = next((p for p in paths_all if p.endswith("resources.myelography.capacity")), paths_all[0])
        path = left.selectbox(f"Parameter {i + 1}", paths_all, index=paths_all.index(default) if i == 0 else 0,
                              key=f"sweep:path{i}")
        values = right.text_input("Values (comma-separated)", value=default_values(fields[path]),
                                  key=f"sweep:values{i}:{path}", help=fields[path].help)
        try:
            settings.append(parse_set(f"{path}={values}"))
        except ScenarioError as err:
            st.error(str(err))
            return
    left, middle, right = st.columns(3)
    labels = {f"{t}": (m, g) for m, g, t in HEADLINE}
    title = left.selectbox("Metric", list(labels), index=1)
    metric_name, group = labels[title]
    reps = int(middle.number_input("Replications per combination", min_value=1, max_value=state.MAX_REPLICATIONS,
                                   value=DEFAULT_REPLICATIONS, step=1))
    seed = int(right.number_input("Seed", min_value=0, max_value=2**31 - 1, value=1, step=1))
    combos = 1
    for _, values in settings:
        combos *= len(values)
    if combos > state.MAX_COMBINATIONS:
        st.error(f"(app): --set = {combos} combinations: expected at most {state.MAX_COMBINATIONS} in the app "
                 "(csfsim sweep runs larger grids)")
        return
    if len({p for p, _ in settings}) < len(settings):
        st.error("(app): --set: expected two different parameters")
        return
    largest = draft.patients_per_replication(scenario)
    try:
        for p, values in settings:
            for v in values:
                one = load_scenario(base, overrides={p: v}, overrides_from="(app) sweep value")
                largest = max(largest, runner.within_cap(one, f"(app) sweep value {p}"))
    except ScenarioError as err:
        st.error(str(err))
        return
    job = jobs.Job("sweep", (str(base),), (("settings", [[p, v] for p, v in settings]), ("reps", reps),
                                           ("seed", seed), ("metric", metric_name), ("group", group)),
                   total=combos, patients=largest * reps * combos)
    if runner.controls(job, "sweep"):
        show_sweep(job.folder, [p for p, _ in settings], metric_name, group)
