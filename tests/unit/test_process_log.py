"""The process-mining log: a case per patient, each resource activity scheduled, started and completed at its
use's times, instants completed, timestamps from the start date; every activity the engine logs documented."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.io.process_log import ACTIVITIES, PROCESS_LOG_COLUMNS, in_layout, markdown_table, process_log
from sim.runs.replication import run_replication
from tests.helpers import LOW_VOLUME, ROOT

EVENTS = pd.DataFrame({"replication": [0, 0, 0, 0, 1], "patient_id": [0, 0, 0, 1, 0],
                       "day": [1.0, 2.0, 5.0, 1.5, 0.5],
                       "activity": ["onset", "consultation", "diagnosed", "onset", "onset"],
                       "center": [None, "c", "c", None, None], "resource": [None, "clinic", None, None, None]})
USES = pd.DataFrame({"replication": [0], "patient_id": [0], "center": ["c"], "resource": ["clinic"],
                     "request_day": [1.5], "start_day": [2.0], "end_day": [2.25]})


def test_a_resource_activity_is_scheduled_started_and_completed():
    log = process_log(EVENTS, USES, "2025-03-01")
    assert list(log.columns) == list(PROCESS_LOG_COLUMNS)
    case = log[log["case_id"] == "r0-p0"]
    assert list(zip(case["activity"], case["lifecycle"], case["day"], strict=True)) == [
        ("onset", "complete", 1.0), ("consultation", "schedule", 1.5), ("consultation", "start", 2.0),
        ("consultation", "complete", 2.25), ("diagnosed", "complete", 5.0)]
    visit = case[case["activity"] == "consultation"]
    assert visit["activity_instance_id"].nunique() == 1 and set(visit["resource"]) == {"clinic"}
    assert case.iloc[3]["timestamp"] == pd.Timestamp("2025-03-03 06:00")
    assert case.iloc[0]["center"] is None or pd.isna(case.iloc[0]["center"])
    assert set(log["case_id"]) == {"r0-p0", "r0-p1", "r1-p0"}  # a case per patient and replication


def test_layouts_rename_for_pm4py_and_bupar_and_refuse_others():
    log = process_log(EVENTS, USES)
    pm = in_layout(log, "pm4py")
    assert {"case:concept:name", "concept:name", "time:timestamp", "lifecycle:transition", "org:resource"} <= set(pm)
    bupar = in_layout(log, "bupar")
    assert {"case_id", "activity_id", "activity_instance_id", "lifecycle_id", "timestamp", "resource_id"} <= set(bupar)
    with pytest.raises(ScenarioError, match="--layout"):
        in_layout(log, "xes")
    with pytest.raises(ScenarioError, match="--start-date"):
        process_log(EVENTS, USES, "the first of May")


def test_every_logged_activity_is_documented_and_every_use_found():
    result = run_replication(load_scenario(LOW_VOLUME), root_seed=3, replication=0, log_events=True)
    events, uses = result.events, result.resource_uses
    assert set(events["activity"]) <= set(ACTIVITIES)
    timed = events[events["resource"].notna()]
    assert all(ACTIVITIES[a][1] == r for a, r in zip(timed["activity"], timed["resource"], strict=True))
    assert events.loc[events["activity"] == "onset", "center"].isna().all()  # null, not ""
    log = process_log(events, uses)
    per_instance = log[log["resource"].notna()].groupby("activity_instance_id")["lifecycle"].agg(set)
    assert all({"start", "complete"} <= s for s in per_instance)
    assert (log.groupby("case_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing)).all()


def test_the_readme_lists_the_activities():
    assert markdown_table() in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "README.md's activity table differs from sim/io/process_log.py: copy `process_log.markdown_table()` into it"
