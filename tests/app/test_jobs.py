"""The app's jobs: a run in a process of its own, named by what it runs, stopped on request, and a failure told
in one line beside its folder."""

from __future__ import annotations

import json
import time

import pytest

from sim.app import jobs
from sim.app.draft import read_shipped, save, with_value
from tests.helpers import ROOT


@pytest.fixture(autouse=True)
def app_home(tmp_path, monkeypatch):
    monkeypatch.setenv(jobs.APP_HOME_VARIABLE, str(tmp_path / "app"))
    return tmp_path / "app"


def _job(files, reps=2, seed=1) -> jobs.Job:
    return jobs.Job("compare", tuple(str(f) for f in files), (("reps", reps), ("seed", seed)), total=2 * reps,
                    patients=1000.0)


def test_the_folder_is_named_by_what_runs(app_home, tmp_path):
    a, b = ROOT / "scenarios" / "experienced_center.toml", ROOT / "scenarios" / "low_volume_center.toml"
    assert _job([a, b]).folder == _job([a, b]).folder
    assert _job([a, b]).folder != _job([a, b], seed=2).folder != _job([b, a]).folder
    copy = save(read_shipped("low_volume_center"), "x", tmp_path)
    edited = save(with_value(read_shipped("low_volume_center"), "population.demand.growth_per_year", 0.01), "x",
                  tmp_path)
    assert _job([a, copy]).folder != _job([a, edited]).folder
    assert _job([a, b]).folder.parent == app_home / "runs"


def test_a_running_job_is_stopped_on_request(tmp_path):
    big = save(with_value(read_shipped("low_volume_center"), "population.catchment.adults", 20_000_000), "big",
               tmp_path)
    job = _job([ROOT / "scenarios" / "experienced_center.toml", big], reps=20)
    jobs.start(job)
    assert job.running() and not job.done() and job.progress() < 1.0
    jobs.start(job)  # a second request joins the first rather than starting another process
    time.sleep(2.0)
    jobs._RUNNING.clear()  # as after a restart of the app: the job is found by its pid file
    assert job.running()
    jobs.stop(job)
    assert not job.running() and not job.done()
    assert job.error() == "stopped by the user"


def test_a_failing_request_leaves_its_reason_in_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nhorizon_days = -1\nfollow_up_days = 0\n")
    job = _job([bad, bad])
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"kind": "compare", "files": [str(bad), str(bad)], "options": {"reps": 2},
                                   "folder": str(job.folder)}))
    assert jobs.main(str(request)) == 2
    assert job.error().startswith(f"{bad}: run.horizon_days = -1") and "\n" not in job.error()
    assert not job.done()


def test_speed_is_remembered_per_kind_of_job(app_home):
    assert jobs.patients_per_second("sweep") == jobs.DEFAULT_PATIENTS_PER_SECOND["sweep"]
    jobs._record_speed("sweep", 10_000.0, 2.0)
    jobs._record_speed("psa", 100.0, 0.5)  # too short to time: not recorded
    assert jobs.patients_per_second("sweep") == 5000.0
    assert jobs.patients_per_second("psa") == jobs.DEFAULT_PATIENTS_PER_SECOND["psa"]
    (app_home / "speed.json").write_text("not json")
    assert jobs.patients_per_second("sweep") == jobs.DEFAULT_PATIENTS_PER_SECOND["sweep"]
