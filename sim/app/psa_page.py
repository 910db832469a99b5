"""Probabilistic sensitivity analysis of B against A, as `csfsim psa` does: the cost-effectiveness plane, the
acceptability curve and the expected value of perfect information, from the parameters' [uncertainty]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from sim.app import draft, jobs, runner, state
from sim.errors import ScenarioError
from sim.runs.psa import EVPPI_MIN_SAMPLES

DEFAULT_SAMPLES = 20
DEFAULT_REPLICATIONS = 2


def ce_plane(psa: pd.DataFrame, wtp: float, currency: str) -> go.Figure:
    """Incremental QALYs and costs per patient of B over A, one point per parameter sample, with the
    willingness-to-pay line."""
    dq, dc = psa["b-a.qaly_per_patient"], psa["b-a.cost_per_patient"]
    fig = px.scatter(x=dq, y=dc, labels={"x": "incremental QALYs per patient (B − A)",
                                         "y": f"incremental cost per patient ({currency}, B − A)"}, height=440,
                     hover_name=[f"sample {s}" for s in psa["sample"]])
    span = float(np.nanmax(np.abs(dq))) if len(dq) else 1.0
    xs = np.array([-span, span]) * 1.1
    fig.add_trace(go.Scatter(x=xs, y=wtp * xs, mode="lines", name=f"WTP {wtp:,.0f} {currency}/QALY",
                             line={"dash": "dash", "color": "#888"}))
    fig.add_hline(y=0, line_color="#bbb")
    fig.add_vline(x=0, line_color="#bbb")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30}, legend={"orientation": "h", "y": -0.2})
    return fig


def ceac(curve: pd.DataFrame, names: tuple[str, str], wtp: float, currency: str) -> go.Figure:
    """The probability that each arm is cost-effective over willingness to pay."""
    fig = go.Figure([go.Scatter(x=curve["wtp"], y=curve["prob_a"], name=names[0]),
                     go.Scatter(x=curve["wtp"], y=curve["prob_b"], name=names[1])])
    fig.add_vline(x=wtp, line_dash="dash", line_color="#888")
    fig.update_layout(xaxis_title=f"willingness to pay ({currency} per QALY)", yaxis_title="probability "
                      "cost-effective", yaxis_range=[0, 1.02], height=400, margin={"l": 10, "r": 10, "t": 30},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def evpi_curve(curve: pd.DataFrame, wtp: float, currency: str) -> go.Figure:
    """The expected value of perfect information per patient over willingness to pay."""
    fig = go.Figure([go.Scatter(x=curve["wtp"], y=curve["evpi_per_patient"].clip(lower=0.0), name="EVPI")])
    fig.add_vline(x=wtp, line_dash="dash", line_color="#888")
    fig.update_layout(xaxis_title=f"willingness to pay ({currency} per QALY)",
                      yaxis_title=f"EVPI per patient ({currency})", height=360, margin={"l": 10, "r": 10, "t": 30})
    return fig


def show_psa(folder: Path) -> None:
    summary = pd.read_csv(folder / "cea.csv").iloc[0]
    psa = pd.read_csv(folder / "psa.csv")
    curve = pd.read_csv(folder / "ceac.csv")
    currency, wtp = str(summary["currency"]), float(summary["wtp"])
    names = (str(summary["scenario_a"]), str(summary["scenario_b"]))
    st.markdown(f"**{names[1]}** against **{names[0]}** over {int(summary['samples'])} parameter samples: "
                f"{summary['verdict']}. Incremental net monetary benefit {summary['inc_nmb']:,.0f} {currency} per "
                f"patient (95% CI {summary['inc_nmb_ci95_low']:,.0f} to {summary['inc_nmb_ci95_high']:,.0f}) at "
                f"{wtp:,.0f} {currency} per QALY; probability B is cost-effective "
                f"{summary['prob_b_cost_effective']:.0%}; EVPI {max(summary['evpi_per_patient'], 0.0):,.2f} "
                f"{currency} per patient.")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(ce_plane(psa, wtp, currency), width="stretch")
    with right:
        st.plotly_chart(ceac(curve, names, wtp, currency), width="stretch")
    st.plotly_chart(evpi_curve(curve, wtp, currency), width="stretch")
    if int(summary["samples"]) < EVPPI_MIN_SAMPLES:
        st.caption(f"With {int(summary['samples'])} samples the EVPPI tables below are mostly noise: read them "
                   f"beside their noise floor, and use {EVPPI_MIN_SAMPLES} or more samples (the command line) "
                   "before ranking parameters.")
    groups = folder / "evppi_groups.csv"
    if groups.exists():
        st.markdown("**Expected value of partial perfect information, by table of parameters** (regression; "
                    "compare each with its own noise floor)")
        st.dataframe(pd.read_csv(groups), hide_index=True)
    evppi = folder / "evppi.csv"
    if evppi.exists():
        st.markdown("**Expected value of partial perfect information, by parameter**")
        st.dataframe(pd.read_csv(evppi), hide_index=True)
    left, right = st.columns(2)
    left.download_button("Report (report.html)", (folder / "report.html").read_bytes(), file_name="report.html",
                         mime="text/html")
    right.download_button("cea.csv", (folder / "cea.csv").read_bytes(), file_name="cea.csv", mime="text/csv")


def page() -> None:
    st.title("Uncertainty: probabilistic sensitivity analysis")
    st.caption("Parameters drawn from their [uncertainty] distributions (base.toml: by grade, or per parameter); "
               "both scenarios run on each draw with the same seed; costs and QALYs as `csfsim psa`.")
    d = state.current()
    options = runner.scenario_options(d)
    left, right = st.columns(2)
    a = left.selectbox("Scenario A (reference)", options, index=options.index("experienced_center"))
    b = right.selectbox("Scenario B", options, index=options.index("low_volume_center"))
    left, middle, right = st.columns(3)
    samples = int(left.number_input("Parameter samples", min_value=2, max_value=state.MAX_PSA_SAMPLES,
                                    value=DEFAULT_SAMPLES, step=1))
    reps = int(middle.number_input("Replications per sample", min_value=1, max_value=state.MAX_REPLICATIONS,
                                   value=DEFAULT_REPLICATIONS, step=1))
    seed = int(right.number_input("Seed", min_value=0, max_value=2**31 - 1, value=1, step=1))
    if a == b:
        st.info("Choose two different scenarios.")
        return
    try:
        files = [runner.scenario_file(c, d) for c in (a, b)]
        loaded = runner.load_within_cap(files)
    except ScenarioError as err:
        st.error(str(err))
        return
    patients = sum(draft.patients_per_replication(s) for s in loaded) * reps * samples
    job = jobs.Job("psa", tuple(str(f) for f in files), (("samples", samples), ("reps", reps), ("seed", seed)),
                   total=samples, patients=patients)
    if runner.controls(job, "PSA"):
        show_psa(job.folder)
