"""The event log as process-mining tools read it (pm4py, bupaR, ProM, Disco): one case per patient and
replication, each activity with its lifecycle (a resource's booking `schedule`, `start`, `complete`), timestamps
as datetimes from a start date beside the model's float days.

A run's `events.parquet` holds one row per activity at the day it started, and `resource_uses.parquet` the
request, start and end of every resource use; `process_log` joins them. `csfsim events RUN_DIR` writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import ScenarioError

DEFAULT_START_DATE = "2025-01-01"
# Every activity of the event log, what it records, and the resource it uses (None: an instant, no resource).
ACTIVITIES: dict[str, tuple[str, str | None]] = {
    "onset": ("symptoms begin: the leak opens (no center yet)", None),
    "presented": ("the patient asks a center's clinic for care, at first or after a misdiagnosis", None),
    "consultation": ("a clinic consultation", "clinic"),
    "misdiagnosed": ("a consultation ends without the diagnosis: the patient is sent home and may return", None),
    "brain_mri": ("brain MRI for signs of intracranial hypotension", "mri"),
    "diagnosed": ("the leak is diagnosed", None),
    "referred": ("the center refers the patient to the center it refers to", None),
    "ebp": ("a non-targeted (blind) epidural blood patch", "procedure_room"),
    "spinal_imaging": ("spinal imaging with the center's own technique (conventional, or a refined one: "
                       "decubitus DSM or dynamic CTM, decubitus CT myelography, photon-counting CT)", "myelography"),
    "refined_spinal_imaging": ("refined spinal imaging with the center's technique after a negative conventional "
                               "study", "myelography"),
    "repeat_spinal_imaging": ("another refined study after a negative one, with the center's repeat technique "
                              "(or the same technique on the other side or in another phase)", "myelography"),
    "control_spinal_imaging": ("the site found before imaged again after a failed operation or embolization, or "
                               "their recurrence, before the next definitive treatment", "myelography"),
    "targeted_patch": ("an epidural patch at the leak site found on imaging", "procedure_room"),
    "fibrin_patch": ("a fibrin sealant patch at the leak site", "procedure_room"),
    "surgery": ("open repair of a spontaneous leak, or surgical ligation of a venous fistula", "theatre"),
    "durotomy_repair": ("open repair of a procedure-related dural tear", "theatre"),
    "embolization": ("transvenous embolization of a CSF-venous fistula", "angiography"),
    "rih_start": ("rebound intracranial hypertension begins after a seal", None),
    "ebp_for_misread_rih": ("a blood patch given for rebound hypertension mistaken for a leak", "procedure_room"),
    "recurrence": ("a sealed leak recurs", None),
    "relapse": ("the relief a blind patch gave without sealing wears off: the symptoms are back", None),
    "resolved": ("symptoms end: the leak is sealed or closed on its own", None),
    "persistent": ("the patient leaves the pathway with symptoms (no further step offered)", None),
}
LIFECYCLES = ("schedule", "start", "complete")  # XES lifecycle transitions used
PROCESS_LOG_COLUMNS = ("case_id", "replication", "patient_id", "activity", "activity_instance_id", "lifecycle",
                       "day", "timestamp", "center", "resource")
LAYOUTS = ("csfsim", "pm4py", "bupar")
# pm4py reads XES attribute names; bupaR's eventlog() asks for these columns.
_RENAMES = {"pm4py": {"case_id": "case:concept:name", "activity": "concept:name", "timestamp": "time:timestamp",
                      "lifecycle": "lifecycle:transition", "resource": "org:resource",
                      "activity_instance_id": "concept:instance"},
            "bupar": {"activity": "activity_id", "lifecycle": "lifecycle_id", "resource": "resource_id"}}


def _start(start_date: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(start_date)
    except (ValueError, TypeError):
        raise ScenarioError("(command line)", "--start-date", start_date, "a date such as 2025-01-01") from None


def process_log(events: pd.DataFrame, uses: pd.DataFrame, start_date: str = DEFAULT_START_DATE) -> pd.DataFrame:
    """The log with a row per lifecycle transition: an instant activity `complete` at its day; an activity that
    uses a resource `schedule` at its request (when it waited), `start` and `complete` at its use's start and end.
    `center` and `resource` are null where there is none; rows by case, then time, then instance."""
    day0 = _start(start_date)
    ev = events.reset_index(drop=True).copy()
    ev["center"] = ev["center"].replace("", None)
    ev["resource"] = ev["resource"].replace("", None)
    ev["activity_instance_id"] = np.arange(len(ev), dtype=np.int64)
    keys = ["replication", "patient_id", "center", "resource"]
    timed = ev[ev["resource"].notna()].merge(
        uses.rename(columns={"start_day": "day"})[[*keys, "day", "request_day", "end_day"]], on=[*keys, "day"],
        how="left", validate="many_to_one")
    instants = ev[ev["resource"].isna()].assign(lifecycle="complete")
    scheduled = timed[timed["request_day"] < timed["day"]].assign(lifecycle="schedule")
    scheduled["day"] = scheduled["request_day"]
    complete = timed[timed["end_day"].notna()].assign(lifecycle="complete")
    complete["day"] = complete["end_day"]
    rows = pd.concat([instants, scheduled, timed.assign(lifecycle="start"), complete], ignore_index=True)
    order = {name: i for i, name in enumerate(LIFECYCLES)}
    rows = rows.assign(order=rows["lifecycle"].map(order)).sort_values(
        ["replication", "patient_id", "day", "activity_instance_id", "order"], kind="stable")
    rows["case_id"] = "r" + rows["replication"].astype(str) + "-p" + rows["patient_id"].astype(str)
    rows["timestamp"] = day0 + pd.to_timedelta(rows["day"], unit="D")
    return rows[list(PROCESS_LOG_COLUMNS)].reset_index(drop=True)


def in_layout(log: pd.DataFrame, layout: str) -> pd.DataFrame:
    """The log with the column names a tool expects: csfsim's own, pm4py's (XES attributes) or bupaR's."""
    if layout not in LAYOUTS:
        raise ScenarioError("(command line)", "--layout", layout, f"one of {', '.join(LAYOUTS)}")
    return log.rename(columns=_RENAMES.get(layout, {}))


def read_process_log(folder: Path, start_date: str = DEFAULT_START_DATE) -> pd.DataFrame:
    """The process log of a finished run folder written with its event log."""
    events, uses = folder / "events.parquet", folder / "resource_uses.parquet"
    if not (folder / "manifest.json").exists() or not events.exists() or not uses.exists():
        raise ScenarioError(str(folder), "events.parquet", None, "a finished run folder with its event log (run "
                                                                 "without --no-events; for a comparison, name one "
                                                                 "of its run folders)")
    return process_log(pd.read_parquet(events), pd.read_parquet(uses), start_date)


def markdown_table() -> str:
    """The activities as a Markdown table (README)."""
    lines = ["| activity | what it records | resource |", "|---|---|---|"]
    lines += [f"| `{name}` | {what} | {resource or '-'} |" for name, (what, resource) in ACTIVITIES.items()]
    return "\n".join(lines) + "\n"
