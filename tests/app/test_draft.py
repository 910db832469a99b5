"""The app's scenario drafts: read from shipped files and uploads, written back as TOML that reads the same, and
an upload cannot reach files outside csfsim's scenarios/ folder."""

from __future__ import annotations

import tomllib

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.app import draft
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.io import toml_document

KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
SCALARS = st.one_of(st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
TABLES = st.recursive(st.dictionaries(KEYS, VALUES, max_size=4),
                      lambda inner: st.dictionaries(KEYS, st.one_of(VALUES, inner), max_size=3), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(TABLES)
def test_any_table_round_trips_through_the_toml_writer(table):
    assert tomllib.loads(toml_document.dumps(table)) == table


@pytest.mark.parametrize("label", list(draft.shipped_scenarios()))
def test_a_shipped_scenario_saved_by_the_app_loads_as_the_original(label, tmp_path):
    raw = draft.read_shipped(label)
    path = draft.save(raw, label, tmp_path)
    assert draft.save(raw, label, tmp_path) == path  # the same content, the same file
    original, saved = load_scenario(draft.shipped_scenarios()[label]), load_scenario(path)
    assert saved.centers == original.centers and saved.clinical == original.clinical
    assert saved.population == original.population and saved.name == original.name
    assert "extends" not in tomllib.loads(path.read_text())


def test_an_upload_may_extend_a_shipped_scenario():
    data = b'extends = "low_volume_center.toml"\n[scenario]\nname = "Mine"\n'
    raw = draft.read_upload(data, "mine.toml")
    assert raw["scenario"]["name"] == "Mine" and raw["centers"]["district"]["refers_to"] == "specialist"


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/hostname", "../README.md"])
def test_an_upload_cannot_read_a_file_outside_the_scenarios_folder(target):
    data = f'extends = "{target}"\n'.encode()
    with pytest.raises(ScenarioError) as err:
        draft.read_upload(data, "evil.toml")
    assert str(err.value).startswith("evil.toml: extends = ") and "scenarios/ folder" in str(err.value)
    assert "root:" not in str(err.value)


def test_an_upload_too_large_or_not_toml_is_refused_in_one_line():
    with pytest.raises(ScenarioError, match="under 1,000,000 bytes"):
        draft.read_upload(b"#" * 1_000_001, "big.toml")
    with pytest.raises(ScenarioError, match=r"^x.toml: \(syntax\)"):
        draft.read_upload(b"[[[", "x.toml")


def test_referral_tables_are_folded_into_their_centers():
    raw = draft.read_shipped("regional_network")
    assert "referral" not in raw
    assert raw["centers"]["district_east"]["referral"]["after_failed_ebp"] == 1


def test_the_centers_table_round_trips_and_edits():
    raw = draft.read_shipped("routes/direct_referral")
    frame = draft.centers_frame(raw)
    assert draft.centers_from_frame(raw, frame) == raw["centers"]
    grown = pd.concat([frame, pd.DataFrame([{"center": "north", "profile": "low_volume", "catchment_share": "0",
                                             "catchment_adults": pd.NA, "refers_to": "specialist"}])],
                      ignore_index=True)
    centers = draft.centers_from_frame(raw, grown)
    assert centers["north"] == {"profile": "low_volume", "catchment_share": 0, "refers_to": "specialist"}
    assert centers["district"] == raw["centers"]["district"]
    blank = grown.assign(refers_to=["", "", ""], center=["district", "specialist", " "])
    assert set(draft.centers_from_frame(raw, blank)) == {"district", "specialist"}
    assert "refers_to" not in draft.centers_from_frame(raw, blank)["district"]


def test_a_renamed_center_keeps_its_settings_and_its_referrals():
    raw = draft.read_shipped("regional_network")
    frame = draft.centers_frame(raw)
    frame.loc[0, "center"] = "hub"  # the specialist, renamed
    frame.loc[2, "center"] = "east"  # district_east, which has referral settings of its own
    centers = draft.centers_from_frame(raw, frame)
    assert list(centers) == ["hub", "district_north", "east", "district_west"]
    assert centers["east"]["referral"]["after_failed_ebp"] == 1 and centers["east"]["refers_to"] == "hub"
    assert all(body.get("refers_to") in ("hub", None) for body in centers.values())
    draft.check({**raw, "centers": centers}, "x")


def test_a_name_cannot_break_the_saved_file(tmp_path):
    raw = draft.with_value(draft.read_shipped("low_volume_center"), "scenario.name", "x\nkey = 1 #")
    text = draft.to_toml(raw, "x\nkey = 1 #")
    assert tomllib.loads(text)["scenario"]["name"] == "x\nkey = 1 #" and "key" not in tomllib.loads(text)


def test_a_bad_cell_is_told_by_the_scenario_check():
    raw = draft.read_shipped("low_volume_center")
    frame = draft.centers_frame(raw).assign(catchment_share=["half", "0.0"])
    raw = {**raw, "centers": draft.centers_from_frame(raw, frame)}
    with pytest.raises(ScenarioError, match=r'centers\.district\.catchment_share = "half"'):
        draft.check(raw, "scenarios/low_volume_center.toml")


def test_with_value_copies_and_makes_the_tables_on_the_way():
    raw = {"a": {"b": 1}}
    out = draft.with_value(raw, "a.c.d", 2)
    assert out == {"a": {"b": 1, "c": {"d": 2}}} and raw == {"a": {"b": 1}}
    # A table may hold a key named "family" (a center of that name) and is not taken for a distribution.
    assert draft.with_value({"centers": {"family": {"profile": "x"}}}, "centers.family.refers_to", "y") == \
        {"centers": {"family": {"profile": "x", "refers_to": "y"}}}
    assert draft.get(out, "a.c.d") == 2 and draft.get(out, "a.z") is None


def test_file_stem_is_a_safe_file_name():
    assert draft.file_stem("Regional network: +1 MRI!") == "regional_network_1_mri"
    assert draft.file_stem("///") == "scenario"
