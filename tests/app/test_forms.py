"""The app's forms come from the schema: every parameter has a field, a field's own value writes back unchanged,
and any value a widget can hold is either accepted or refused with the command line's one-line message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.app import draft, forms
from sim.config.schema import base_tree, flatten
from sim.errors import ScenarioError

SHIPPED = list(draft.shipped_scenarios())
NETWORK = draft.read_shipped("regional_network")
NETWORK_SCENARIO = draft.check(NETWORK, "network")
ALL_FIELDS = forms.scenario_fields(NETWORK_SCENARIO) + [
    f for c in NETWORK_SCENARIO.resolved["centers"] for f in forms.center_fields(NETWORK_SCENARIO, c)]


def test_every_parameter_of_the_schema_has_a_field():
    tree = base_tree()
    wide = {p for p in flatten({k: v for k, v in tree.items() if k != "profiles"})}
    profile = {p for p in flatten(tree["profiles"]["experienced"])}
    fields = {f.path for f in ALL_FIELDS}
    assert wide <= fields
    for center in NETWORK_SCENARIO.resolved["centers"]:
        assert {f"centers.{center}.{p}" for p in profile} <= fields


def test_a_field_carries_the_schemas_unit_grade_and_source():
    leaves = flatten(base_tree())
    f = next(f for f in ALL_FIELDS if f.path == "population.incidence_per_100k_per_year.spontaneous")
    leaf = leaves["population.incidence_per_100k_per_year.spontaneous"]
    assert (f.unit, f.grade) == (leaf.unit, leaf.grade) and f.kind == "float"
    assert leaf.source in f.help and f.minimum == 0.0
    cap = next(f for f in ALL_FIELDS if f.path == "centers.district_east.resources.myelography.capacity")
    assert cap.kind == "int" and forms.center_part(cap) == "capacity"
    groups = next(f for f in ALL_FIELDS if f.path.endswith("referral.at_diagnosis_for"))
    assert groups.kind == "groups" and "spontaneous" in groups.choices and forms.center_part(groups) == "referral"


def test_a_center_field_shows_what_the_center_sets_apart_from_its_profile():
    """district_west's profile uses refined imaging; district_north's (low_volume) conventional."""
    by_path = {f.path: f for f in ALL_FIELDS}
    assert by_path["centers.district_west.imaging_technique"].value == "refined"
    assert by_path["centers.district_north.imaging_technique"].value == "conventional"
    raw = draft.with_value(NETWORK, "centers.district_north.resources.mri.capacity", 3)
    s = draft.check(raw, "x")
    assert next(f for f in forms.center_fields(s, "district_north") if f.name == "capacity"
                and "mri" in f.path).value == 3


@pytest.mark.parametrize("label", SHIPPED)
def test_writing_every_fields_own_value_back_changes_nothing(label):
    raw = draft.read_shipped(label)
    scenario = draft.check(raw, label)
    fields = forms.scenario_fields(scenario) + [f for c in scenario.resolved["centers"]
                                                for f in forms.center_fields(scenario, c)]
    for f in fields:
        raw = draft.with_value(raw, f.path, f.to_toml_value(f.value))
    again = draft.check(raw, label)
    assert again.clinical == scenario.clinical and again.population == scenario.population
    assert again.centers == scenario.centers


def _value_for(f: forms.Field) -> st.SearchStrategy:
    """Values of the field's own widget type (what a planner can type), within the widget's bounds."""
    if f.kind == "float":
        return st.floats(min_value=f.minimum, max_value=f.maximum if f.maximum is not None else 1e7,
                         allow_nan=False)
    if f.kind == "int":
        return st.integers(min_value=int(f.minimum or 0), max_value=int(f.maximum or 10**7))
    if f.kind == "bool":
        return st.booleans()
    if f.kind in ("choice",):
        return st.sampled_from(f.choices)
    if f.kind == "groups":
        return st.lists(st.sampled_from(f.choices), max_size=3)
    if f.kind == "windows":
        return st.lists(st.tuples(st.floats(-5, 400), st.floats(-5, 400)).map(list), max_size=3)
    family = st.sampled_from(sorted(forms.FAMILIES))
    return family.flatmap(lambda fam: st.fixed_dictionaries(
        {name: st.floats(0, 1e5, allow_nan=False) for name in forms.FAMILIES[fam]}).map(
        lambda p, fam=fam: {"family": fam, **p}))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_widget_value_is_accepted_or_refused_in_one_line(data):
    f = data.draw(st.sampled_from(ALL_FIELDS))
    value = data.draw(_value_for(f))
    raw = draft.with_value(NETWORK, f.path, value if f.kind in ("windows", "distribution") else
                           f.to_toml_value(value))
    try:
        draft.check(raw, "scenarios/regional_network.toml")
    except ScenarioError as err:
        assert "\n" not in str(err) and str(err).startswith("scenarios/regional_network.toml: ")


def test_family_parameters_start_a_new_family_at_the_same_mean():
    from sim.config.distributions import Distribution

    for family in forms.FAMILIES:
        params = forms.family_parameters(family, 10.0)
        assert set(params) == set(forms.FAMILIES[family])
        if family in ("fixed", "exponential", "gamma", "uniform"):
            assert Distribution(family, tuple(params.items())).mean == pytest.approx(10.0)


def test_the_region_fields_are_the_planners_first_ones():
    region = [f.path for f in ALL_FIELDS if forms.is_region(f)]
    assert "population.catchment.adults" in region and "population.demand.growth_per_year" in region
    assert not any(p.startswith("clinical.") for p in region)


def test_csfsim_app_refuses_a_bad_port_and_a_missing_streamlit_in_one_line(capsys, monkeypatch):
    import importlib.util

    from sim.cli import main

    assert main(["app", "--port", "70000"]) == 2
    assert capsys.readouterr().err.strip() == ("csfsim: error: (command line): --port = 70000: expected a port from "
                                               "1 to 65535")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "streamlit" else real(name, *a))
    assert main(["app"]) == 2
    assert "pip install -e '.[app]'" in capsys.readouterr().err
