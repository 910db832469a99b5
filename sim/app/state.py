"""What one browser session of the web app holds: the scenario being edited (a `Draft`), and the limits that
keep a shared app from being asked for a run the machine cannot give."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from sim.app import draft
from sim.config.parameters import Scenario
from sim.errors import ScenarioError

DEFAULT_SCENARIO = "regional_network"
# Caps on what one request may ask for, told with the reason when exceeded (the app may be shared).
MAX_REPLICATIONS = 50
MAX_PATIENTS_PER_REPLICATION = 250_000
MAX_SCENARIOS = 4
MAX_COMBINATIONS = 30
MAX_PSA_SAMPLES = 200


@dataclass
class Draft:
    """The scenario being edited: its raw table, where it came from, its last valid compilation and the error of
    its current content (None when it is valid). `revision` changes with every new start, renewing the widgets."""

    raw: dict[str, Any]
    origin: str
    original: dict[str, Any]
    revision: int
    scenario: Scenario
    error: ScenarioError | None = None
    uploads: dict[str, bytes] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return self.origin

    @property
    def edited(self) -> bool:
        return self.raw != self.original

    @property
    def name(self) -> str:
        meta = self.raw.get("scenario", {})
        return str(meta.get("name", self.scenario.name)) if isinstance(meta, dict) else self.scenario.name


def current() -> Draft:
    """This session's draft (the default shipped scenario until the planner picks another)."""
    if "draft" not in st.session_state:
        start(draft.read_shipped(DEFAULT_SCENARIO), f"scenarios/{DEFAULT_SCENARIO}.toml")
    return st.session_state["draft"]


def start(raw: dict[str, Any], origin: str) -> Draft:
    """Begin editing `raw` (raises the ScenarioError of a scenario that does not load)."""
    scenario = draft.check(raw, origin)
    old = st.session_state.get("draft")
    new = Draft(raw=raw, origin=origin, original=copy.deepcopy(raw), revision=(old.revision + 1) if old else 0,
                scenario=scenario)
    st.session_state["draft"] = new
    return new


def apply(d: Draft, changes: dict[str, Any]) -> None:
    """Set the changed values and check the result with the command line's rules."""
    raw = d.raw
    for path, value in changes.items():
        raw = draft.with_value(raw, path, value)
    d.raw = raw
    try:
        d.scenario = draft.check(raw, d.shown)
        d.error = None
    except ScenarioError as err:
        d.error = err
