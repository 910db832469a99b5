"""Streamlit widgets for schema fields (`sim.app.forms.Field`): one widget per parameter, its range from the
unit, its grade in its label and its source on hover. A value the widget cannot hold in its own type (a
windows list that is not TOML) is passed on as typed, for the scenario check to name."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import Any

import streamlit as st

from sim.app.draft import get
from sim.app.forms import Field, family_parameters
from sim.config.distributions import FAMILIES, Distribution
from sim.errors import toml_text

GRADE_MARKS = {"H": " · grade H", "M": " · grade M", "L": " · grade L", "-": ""}  # plain text, read aloud as is
_STEPS = {"probability": 0.01, "share": 0.01, "fraction": 0.01, "utility": 0.01, "ratio": 0.1, "days": 1.0,
          "cost": 10.0, "per_year": 1.0, "per_100k_per_year": 0.1, "per_week": 1.0}


def _label(f: Field) -> str:
    return f.label + GRADE_MARKS.get(f.grade, "")


def _initial(f: Field) -> Any:
    if f.kind == "groups":
        return list(f.value)
    if f.kind == "windows":
        return toml_text([list(w) for w in f.value])
    return f.value


def _parse_windows(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # told by the scenario check, in the command line's words


def _distribution(f: Field, key: str) -> tuple[str, dict[str, float]]:
    family0, params0 = f.value
    fkey = f"{key}.family"
    if fkey not in st.session_state:
        st.session_state[fkey] = family0
    family = st.selectbox(f"{_label(f)}: distribution", tuple(FAMILIES), key=fkey, help=f.help)
    start = params0 if family == family0 else family_parameters(family, Distribution(family0, tuple(
        params0.items())).mean)
    cols = st.columns(len(FAMILIES[family]))
    params = {}
    for col, name in zip(cols, FAMILIES[family], strict=True):
        pkey = f"{key}.{family}.{name}"
        if pkey not in st.session_state:
            st.session_state[pkey] = float(start[name])
        params[name] = col.number_input(name, min_value=0.0, step=_STEPS["days"], format="%g", key=pkey)
    return family, params


def _state(f: Field, key: str) -> Any:
    """What the widget of `f` holds in the session (None before it is first drawn)."""
    ss = st.session_state
    if f.kind != "distribution":
        return ss.get(key)
    family = ss.get(f"{key}.family")
    if family is None:
        return None
    return family, {name: ss.get(f"{key}.{family}.{name}") for name in FAMILIES[family]}


def _set_state(f: Field, key: str, shown: Any) -> None:
    ss = st.session_state
    if f.kind != "distribution":
        ss[key] = shown
        return
    family, params = shown
    ss[f"{key}.family"] = family
    for name, value in params.items():
        ss[f"{key}.{family}.{name}"] = float(value)


def follow(f: Field, key: str) -> None:
    """Before the widget is drawn: when the field's value changed elsewhere (a center's profile or adults, a new
    start) and the planner has not touched this widget since it last showed the field, it shows the new value,
    rather than writing its old one back as an edit."""
    ss = st.session_state
    base_key = f"{key}:shown"
    current = _initial(f)
    if base_key in ss and ss[base_key] != current and _state(f, key) == ss[base_key]:
        _set_state(f, key, current)
    ss[base_key] = current


def field_widget(f: Field, key: str) -> Any:
    """Show the widget of `f` and return its value as a scenario file writes it."""
    follow(f, key)
    if f.kind == "distribution":
        return f.to_toml_value(_distribution(f, key))
    if key not in st.session_state:
        st.session_state[key] = _initial(f)
    label = _label(f)
    if f.kind == "bool":
        return st.checkbox(label, key=key, help=f.help)
    if f.kind == "choice":
        return st.selectbox(label, f.choices, key=key, help=f.help)
    if f.kind == "groups":
        return f.to_toml_value(st.multiselect(label, f.choices, key=key, help=f.help))
    if f.kind == "windows":
        return _parse_windows(st.text_input(label, key=key, help=f.help + " · e.g. [[0, 1], [3, 4]]"))
    if f.kind == "int":
        return int(st.number_input(label, min_value=None if f.minimum is None else int(f.minimum),
                                   max_value=None if f.maximum is None else int(f.maximum), step=1, key=key,
                                   help=f.help))
    return float(st.number_input(label, min_value=f.minimum, max_value=f.maximum, step=_STEPS.get(f.unit, 0.1),
                                 format="%g", key=key, help=f.help))


def edit_fields(fields: Sequence[Field], prefix: str, raw: dict[str, Any], columns: int = 2
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Widgets for `fields` in `columns` columns. Returns (the values that differ from the draft `raw`, by path; a
    message slot by path, where the scenario check's error for that field is shown, under its widget). A value is
    compared with what the draft sets at its path, or else with the field's value: a value put back after a
    refused one is an edit too."""
    changed: dict[str, Any] = {}
    slots: dict[str, Any] = {}
    cols = st.columns(columns)
    for i, f in enumerate(fields):
        with cols[i % columns]:
            value = field_widget(f, f"{prefix}:{f.path}")
            slots[f.path] = st.empty()
        written = get(raw, f.path)
        if value != (f.to_toml_value(f.value) if written is None else written):
            changed[f.path] = value
    return changed, slots
