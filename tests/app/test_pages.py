"""Each page of the web app in Streamlit's AppTest: forms render from the schema, a bad value shows the command
line's message, and a run completes in its own process and shows its results."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sim.app import draft, jobs, state
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError

PAGES = Path(__file__).resolve().parents[2] / "sim" / "app" / "pages"


@pytest.fixture(autouse=True)
def app_home(tmp_path, monkeypatch):
    monkeypatch.setenv(jobs.APP_HOME_VARIABLE, str(tmp_path / "app"))
    return tmp_path / "app"


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _wait_for(at: AppTest, done, seconds: float = 240.0) -> None:
    """Rerun the page (as its progress fragment does in a browser) until `done(at)` or the time is up."""
    deadline = time.monotonic() + seconds
    while not done(at):
        assert time.monotonic() < deadline, [e.value for e in at.error]
        assert not at.exception, at.exception
        time.sleep(1.0)
        at.run()


def test_the_main_script_builds_the_navigation():
    at = AppTest.from_file(str(PAGES.parent / "main.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Build a scenario"


def test_the_scenario_page_renders_its_forms_from_the_schema():
    at = _page("scenario")
    keys = {w.key for w in at.number_input}
    assert "r0:population.catchment.adults" in keys
    assert "r0:centers.specialist.resources.myelography.capacity" in keys
    assert at.success[0].value.startswith("The scenario is valid: 4 center(s)")
    adults = next(w for w in at.number_input if w.key == "r0:population.catchment.adults")
    assert "grade" in adults.help and adults.value == 1_000_000
    assert any(s.key == "r0:table" for s in at.selectbox)


def test_a_bad_value_shows_the_command_lines_message(tmp_path):
    at = _page("scenario")
    cap = next(w for w in at.number_input if w.key == "r0:centers.specialist.resources.myelography.capacity")
    cap.set_value(0).run()
    # What `csfsim validate` says of the same file.
    bad = draft.with_value(draft.read_shipped("regional_network"),
                           "centers.specialist.resources.myelography.capacity", 0)
    path = tmp_path / "regional_network.toml"
    path.write_text(draft.to_toml(bad, "x"))
    with pytest.raises(ScenarioError) as cli:
        load_scenario(path)
    expected = str(cli.value).replace(str(path), "scenarios/regional_network.toml")
    assert expected in [e.value for e in at.error]
    assert not at.success
    cap.set_value(1).run()  # back to the value it had: the draft is valid again
    assert not at.error and at.success
    assert draft.get(at.session_state["draft"].raw, "centers.specialist.resources.myelography.capacity") == 1


def test_a_value_changed_elsewhere_is_followed_not_written_back():
    """A center's new profile (from the centers table) changes the values its forms show; untouched widgets
    follow them instead of writing the old profile's values back as edits."""
    at = _page("scenario")
    d = at.session_state["draft"]
    d.raw = draft.with_value(d.raw, "centers.district_north.profile", "experienced")
    d.scenario = draft.check(d.raw, d.origin)
    at.selectbox(key="r0:center").set_value("district_north").run()
    at.run()
    assert at.session_state["draft"].raw["centers"]["district_north"] == {
        "profile": "experienced", "catchment_adults": 250_000, "refers_to": "specialist"}
    technique = next(w for w in at.selectbox if w.key == "r0:centers.district_north.imaging_technique")
    assert technique.value == "refined"


def test_an_edited_scenario_downloads_as_a_file_that_loads(tmp_path):
    at = _page("scenario")
    next(w for w in at.number_input if w.key == "r0:population.demand.growth_per_year").set_value(0.03).run()
    d = at.session_state["draft"]
    assert d.edited and d.raw["population"]["demand"]["growth_per_year"] == 0.03
    path = tmp_path / "down.toml"
    path.write_text(draft.to_toml(d.raw, d.name))
    assert load_scenario(path).population.growth_per_year == 0.03


def test_starting_from_another_shipped_scenario_renews_the_forms():
    at = _page("scenario")
    at.selectbox[0].set_value("low_volume_center")
    at.button[0].click().run()
    assert at.session_state["draft"].origin == "scenarios/low_volume_center.toml"
    assert "r1:centers.district.resources.mri.capacity" in {w.key for w in at.number_input}


def test_a_comparison_runs_in_its_own_process_and_shows_the_headline(app_home):
    at = _page("compare")
    at.number_input[0].set_value(2).run()
    assert "expected run time" in " ".join(c.value for c in at.caption)
    run = next(b for b in at.button if b.label.startswith("Run the comparison"))
    run.click().run()
    _wait_for(at, lambda a: any(s.value == "Headline findings" for s in a.subheader))
    sentences = next(m.value for m in at.markdown if m.value.startswith("- "))
    assert "Experienced high-volume center" in sentences and "Low-volume center" in sentences
    folders = list((app_home / "runs").glob("compare-*"))
    assert any((f / "report.html").exists() for f in folders)
    assert (app_home / "speed.json").exists()
    again = _page("compare")  # the same request: shown from the cache, not run again
    again.number_input[0].set_value(2).run()
    assert any("run before" in s.value for s in again.success)


def test_a_scenario_too_large_for_the_app_is_refused_with_its_reason():
    raw = draft.with_value(draft.read_shipped("low_volume_center"), "population.catchment.adults", 300_000_000)
    raw = draft.with_value(raw, "run.max_expected_patients", 3_000_000)
    at = AppTest.from_file(str(PAGES / "compare.py"), default_timeout=120)
    at.session_state["draft"] = state.Draft(raw=raw, origin="big.toml", original={}, revision=0,
                                            scenario=draft.check(raw, "big.toml"))
    at.run()
    at.multiselect[0].set_value([at.multiselect[0].options[0], "low_volume_center"]).run()
    assert any("at most 250,000 patients per replication" in e.value for e in at.error)


def test_a_sweep_runs_and_draws_its_grid(app_home):
    at = _page("sweep")
    at.text_input[0].set_value("1, 2").run()
    at.number_input[0].set_value(1).run()
    next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
    _wait_for(at, lambda a: any(s.key == "sweep:shown" for s in a.selectbox))
    assert len(at.dataframe[0].value) == 2


def test_a_sweep_value_the_scenario_refuses_is_told_before_the_run():
    at = _page("sweep")
    at.text_input[0].set_value("1, 0").run()
    assert any("capacity = 0: expected a whole number of servers" in e.value for e in at.error)
    assert not any(b.label.startswith("Run the sweep") for b in at.button)


def test_a_psa_runs_and_shows_the_cost_effectiveness(app_home):
    at = _page("psa")
    at.number_input[0].set_value(3).run()
    at.number_input[1].set_value(1).run()
    next(b for b in at.button if b.label.startswith("Run the PSA")).click().run()
    _wait_for(at, lambda a: any("parameter samples" in m.value for m in a.markdown))
    assert any("probability B is cost-effective" in m.value for m in at.markdown)
