"""The run controls every results page shares: the estimate before a run, the Run button, a progress bar that
follows the job's process without blocking the page, Stop, and the job's one-line error."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from sim.app import draft, jobs, state
from sim.config.parameters import Scenario
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError

YOURS = "Your scenario"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} seconds"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def scenario_options(d: state.Draft) -> list[str]:
    return [f"{YOURS}: {d.name}", *draft.shipped_scenarios()]


def scenario_file(choice: str, d: state.Draft) -> Path:
    """The file a chosen scenario runs from: a shipped one, or the draft saved under its content's name."""
    if choice.startswith(YOURS):
        if d.error is not None:
            raise d.error
        raw = d.raw
        if d.edited and draft.get(raw, "scenario.name") == draft.get(d.original, "scenario.name"):
            # Beside the scenario it was edited from, it needs a name of its own in the tables and figures.
            raw = draft.with_value(raw, "scenario.name", f"{d.name} (edited)")
        return draft.save(raw, d.name, jobs.app_home() / "scenarios")
    return draft.shipped_scenarios()[choice]


def within_cap(scenario: Scenario, shown: str) -> float:
    """The patients per replication of `scenario`, if within the app's cap (a ScenarioError naming `shown`)."""
    n = draft.patients_per_replication(scenario)
    if n > state.MAX_PATIENTS_PER_REPLICATION:
        raise ScenarioError(shown, "population.catchment.adults", scenario.population.catchment_adults,
                            f"a region the app runs in minutes: at most {state.MAX_PATIENTS_PER_REPLICATION:,} "
                            f"patients per replication (this one draws about {n:,.0f}; run it with the command "
                            "line)")
    return n


def load_within_cap(files: list[Path]) -> list[Scenario]:
    """The scenarios loaded, each within the app's per-replication size cap."""
    loaded = [load_scenario(f) for f in files]
    for f, s in zip(files, loaded, strict=True):
        within_cap(s, str(f))
    return loaded


@st.fragment(run_every=1.0)
def _follow(job: jobs.Job, what: str) -> None:
    if job.done() or job.error() is not None or not job.running():
        st.rerun()
    st.progress(job.progress(), text=f"Running the {what}… {job.progress():.0%}")
    if st.button("Stop the run"):
        jobs.stop(job)
        st.rerun()


def controls(job: jobs.Job, what: str, ready: bool = True) -> bool:
    """The estimate, Run button and progress of `job`; True when its results are there to show."""
    started = st.session_state.setdefault("started_jobs", set())
    if job.done():
        st.success(f"The {what} has finished." if job.folder in started else
                   f"Results of this {what}: the same scenarios, seed and settings were run before, so they are "
                   "shown from the app's run folder.")
        return True
    measured = "from this machine's last one" if jobs.measured(job.kind) else "a first guess, until this " \
        "machine has timed one"
    st.caption(f"About {job.patients:,.0f} simulated patients in all: expected run time about "
               f"{duration(job.expected_seconds)} ({measured}).")
    if job.running():
        _follow(job, what)
        return False
    error = job.error()
    if error is not None:
        st.error(error)
    if st.button(f"Run the {what}", type="primary", disabled=not ready):
        jobs.start(job)
        started.add(job.folder)
        st.rerun()
    return False
