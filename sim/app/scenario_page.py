"""The web app's first page: build a scenario without writing TOML. Start from a shipped scenario or an upload,
edit the region (catchment, demand, centers, capacities, referral rules) and any other parameter in forms made
from the schema, see the command line's own message under a value it refuses, and download the result."""

from __future__ import annotations

from typing import Any

import streamlit as st

from sim.app import draft, forms, state
from sim.app.widgets import edit_fields
from sim.errors import ScenarioError

PARTS = (("capacity", "Capacity and booking"), ("referral", "Referral rules"), ("practice", "Clinical practice"))


def _start_from() -> None:
    left, right = st.columns(2)
    with left:
        shipped = list(draft.shipped_scenarios())
        label = st.selectbox("Start from a shipped scenario", shipped, index=shipped.index(state.DEFAULT_SCENARIO),
                             help="scenarios/ of csfsim: the two default arms, the regional network, routes and "
                                  "worked examples")
        if st.button("Start from this scenario"):
            state.start(draft.read_shipped(label), f"scenarios/{label}.toml")
    with right:
        upload = st.file_uploader("…or upload a scenario file", type=["toml"],
                                  help="A csfsim scenario (TOML). Its `extends` may name only the shipped scenarios.")
        if upload is not None and st.button("Start from the upload"):
            try:
                state.start(draft.read_upload(upload.getvalue(), upload.name), upload.name)
            except ScenarioError as err:
                st.error(str(err))


def _section_title(section: str, strip: int = 0) -> str:
    parts = section.split(".")[strip:]
    return " · ".join(p.replace("_", " ") for p in parts) or "general"


def _fields(fields: list[forms.Field], prefix: str, strip: int, changes: dict[str, Any],
            slots: dict[str, Any], raw: dict[str, Any], columns: int = 3) -> None:
    for section, group in forms.sections(fields).items():
        st.markdown(f"**{_section_title(section, strip)}**")
        ch, sl = edit_fields(group, prefix, raw, columns)
        changes.update(ch)
        slots.update(sl)


def _centers(d: state.Draft, prefix: str) -> dict[str, Any] | None:
    """The centers as an editable table; the new centers table when the planner changed it."""
    frame = draft.centers_frame(d.raw)
    profiles = sorted(d.scenario.resolved["profiles"])
    names = ["", *list(frame["center"])]
    edited = st.data_editor(
        frame, key=f"{prefix}:centers", num_rows="dynamic", hide_index=True, width="stretch",
        column_config={
            "center": st.column_config.TextColumn("center", help="Its name (letters, digits, _ and -)"),
            "profile": st.column_config.SelectboxColumn("profile", options=profiles,
                                                        help="The practice it starts from: experienced or "
                                                             "low-volume (and any the scenario defines)"),
            "catchment_share": st.column_config.TextColumn(
                "catchment share", help="Share of the catchment's arrivals that first present here, 0-1, or one "
                                        "per etiology as { spontaneous = 1.0, post_lp = 0.0, ... } (give either "
                                        "this or adults)"),
            "catchment_adults": st.column_config.NumberColumn(
                "catchment adults", min_value=0, step=1000, format="%d",
                help="Adults living in its catchment (the scenario's catchment is then their sum)"),
            "refers_to": st.column_config.SelectboxColumn("refers to", options=names,
                                                          help="Where it sends what it cannot do (empty: nowhere)"),
        })
    if edited.equals(frame):
        return None
    return draft.centers_from_frame(d.raw, edited)


def page() -> None:
    st.title("Build a scenario")
    st.caption("Every field comes from the parameter schema (scenarios/base.toml): its unit and range, its grade "
               "of evidence (grade H high, M moderate, L low: a placeholder or weak source, vary it) and its source "
               "on hover.")
    _start_from()
    d = state.current()
    prefix = f"r{d.revision}"
    editing = st.empty()
    top = st.empty()
    changes: dict[str, Any] = {}
    slots: dict[str, Any] = {}

    meta = d.raw.get("scenario", {}) if isinstance(d.raw.get("scenario"), dict) else {}
    left, right = st.columns([1, 2])
    name = left.text_input("Scenario name", value=str(meta.get("name", d.scenario.name)), key=f"{prefix}:name")
    description = right.text_input("Description", value=str(meta.get("description", "")), key=f"{prefix}:desc")
    if name != meta.get("name", d.scenario.name):
        changes["scenario.name"] = name
    if description != meta.get("description", ""):
        changes["scenario.description"] = description

    scenario = d.scenario
    everything = forms.scenario_fields(scenario)
    st.header("Region")
    st.subheader("Catchment, incidence and demand")
    _fields([f for f in everything if forms.is_region(f)], prefix, 0, changes, slots, d.raw)
    st.subheader("Centers")
    st.caption("Add a row for a center, delete one with the row's checkbox. Shares of the catchment must sum to 1, "
               "or give each center its adults.")
    new_centers = _centers(d, prefix)
    slots["centers"] = st.empty()
    centers = list(scenario.resolved["centers"])
    st.subheader("One center's capacity, referral rules and practice")
    center = st.selectbox("Center", centers, key=f"{prefix}:center")
    tabs = st.tabs([title for _, title in PARTS])
    own = forms.center_fields(scenario, center)
    for tab, (part, _) in zip(tabs, PARTS, strict=True):
        with tab:
            _fields([f for f in own if forms.center_part(f) == part], prefix, 2, changes, slots, d.raw)

    st.header("Every other parameter")
    rest = [f for f in everything if not forms.is_region(f)]
    tables = list(dict.fromkeys(f.path.split(".")[0] for f in rest))
    table = st.selectbox("Parameter table", tables, key=f"{prefix}:table",
                         help="The tables of scenarios/base.toml; docs/parameters.md lists them all with sources")
    _fields([f for f in rest if f.path.split(".")[0] == table], prefix, 1, changes, slots, d.raw)

    if new_centers is not None:
        changes["centers"] = new_centers
    if changes or d.error is not None:
        state.apply(d, changes)
    editing.info(f"Editing **{d.name}**, from `{d.origin}`" + (" (changed)" if d.edited else ""))
    if d.error is not None:
        top.error(f"{d.error}", icon="⚠️")
        slot = slots.get(d.error.field) or (slots["centers"] if d.error.field.startswith("centers") else None)
        if slot is not None:
            slot.error(str(d.error))
    else:
        top.success(f"The scenario is valid: {len(d.scenario.centers)} center(s), about "
                    f"{draft.patients_per_replication(d.scenario):,.0f} patients per replication.")
    st.download_button("Download the scenario (TOML)", draft.to_toml(d.raw, d.name),
                       file_name=f"{draft.file_stem(d.name)}.toml", mime="application/toml",
                       disabled=d.error is not None, help="A file `csfsim validate` and `csfsim run` read as it is")
