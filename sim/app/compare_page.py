"""Run and compare scenarios on common random numbers, as `csfsim compare` does, and read the results."""

from __future__ import annotations

import streamlit as st

from sim.app import draft, jobs, runner, state
from sim.app.results import show_comparison
from sim.errors import ScenarioError

DEFAULT_REPLICATIONS = 5
DEFAULT_SEED = 20261124


def page() -> None:
    st.title("Run and compare")
    st.caption("Scenarios run on common random numbers (replication r of each draws the same patients), so the "
               "differences are paired, as in `csfsim compare`. The first scenario is the reference.")
    d = state.current()
    options = runner.scenario_options(d)
    origin = d.origin.removeprefix("scenarios/").removesuffix(".toml")
    edited = d.edited and origin in options
    default = [origin, options[0]] if edited else ["experienced_center", "low_volume_center"]
    chosen = st.multiselect("Scenarios to compare (the first is the reference)", options, default=default,
                            max_selections=state.MAX_SCENARIOS)
    left, right = st.columns(2)
    reps = int(left.number_input("Replications", min_value=2, max_value=state.MAX_REPLICATIONS,
                                 value=DEFAULT_REPLICATIONS, step=1,
                                 help=f"At most {state.MAX_REPLICATIONS} in the app; more with `csfsim compare`"))
    seed = int(right.number_input("Seed", min_value=0, max_value=2**31 - 1, value=DEFAULT_SEED, step=1))
    if len(chosen) < 2:
        st.info("Choose at least two scenarios.")
        return
    try:
        files = [runner.scenario_file(c, d) for c in chosen]
        loaded = runner.load_within_cap(files)
    except ScenarioError as err:
        st.error(str(err))
        return
    patients = sum(draft.patients_per_replication(s) for s in loaded) * reps
    job = jobs.Job("compare", tuple(str(f) for f in files), (("reps", reps), ("seed", seed)),
                   total=reps * len(files), patients=patients)
    if runner.controls(job, "comparison"):
        show_comparison(job.folder)
