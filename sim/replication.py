"""One replication: draw the cohort, run the pathway (SimPy engine, or the fast path when nothing can queue),
return tidy tables."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.economics import ECONOMICS_COLUMNS, add_economics
from sim.fastpath import CenterTotals, FastPathway, FastRecords, select_engine
from sim.parameters import ETIOLOGIES, LEAK_TYPES, RESOURCES, Scenario
from sim.pathway import CenterState, Pathway, Records
from sim.population import draw_cohort

PATIENT_COLUMNS: tuple[str, ...] = (
    "replication", "patient_id", "home_center", "center", "etiology", "leak_type", "onset_day", "presented_day",
    "diagnosed_day", "first_treatment_day", "resolved_day", "final_state", "resolved_by", "persistent_reason",
    "n_consultations", "n_imaging", "n_brain_mri", "n_spinal_imaging", "n_ebp", "n_targeted_patch",
    "n_fibrin_patch", "n_surgery", "n_embolization", "rih", "rih_misread", "rih_days", "n_acetazolamide_courses",
    "recurred", "n_recurrences", "referred", "n_referrals", "leak_localized", "symptom_days", "waiting_days",
    "in_warmup", *ECONOMICS_COLUMNS,
)
EVENT_COLUMNS: tuple[str, ...] = ("replication", "patient_id", "day", "activity", "center", "resource")
USE_COLUMNS: tuple[str, ...] = ("replication", "patient_id", "center", "resource", "request_day", "start_day",
                                "end_day")


@dataclass(frozen=True)
class ReplicationResult:
    """Immutable result of one replication."""

    replication: int
    patients: pd.DataFrame
    resources: pd.DataFrame
    events: pd.DataFrame | None
    resource_uses: pd.DataFrame | None  # one row per completed resource use (with the event log)
    n_simpy_events: int  # 0 on the fast path
    wall_seconds: float
    engine: str = "simpy"  # the engine that ran: "simpy" or "fast" (events and resource_uses are None on "fast")


def run_replication(scenario: Scenario, root_seed: int, replication: int, log_events: bool = False,
                    engine: str = "auto") -> ReplicationResult:
    """Run one replication. `engine="auto"` takes the fast path (`sim.fastpath`) exactly when it gives the same
    patients as the SimPy engine (no resource capacity below the number of patients) and no event log is asked."""
    started = time.perf_counter()
    cohort = draw_cohort(scenario, root_seed, replication)
    names = np.array(scenario.center_names, dtype=object)
    if select_engine(scenario, cohort.n, engine, log_events) == "fast":
        fast = FastPathway(scenario, cohort)
        fast.run()
        assert fast.records is not None
        patients = _patients_frame(scenario, replication, cohort, fast.records, names)
        patients = add_economics(patients, scenario)
        resources = _resources_frame(scenario, replication, fast.centers)
        return ReplicationResult(replication, patients, resources, None, None, 0, time.perf_counter() - started,
                                 "fast")
    model = Pathway(scenario, cohort, log_events=log_events)
    model.run()
    n_events = next(model.env._eid)  # SimPy's event counter: events scheduled in this replication
    patients = _patients_frame(scenario, replication, cohort, model.records, names)
    patients = add_economics(patients, scenario)  # costs and QALYs: post hoc, from the table
    resources = _resources_frame(scenario, replication, model.centers)
    events = uses = None
    if log_events:
        assert model.events is not None and model.uses is not None
        events = _events_frame(replication, model.events, cohort)
        uses = pd.DataFrame(model.uses, columns=list(USE_COLUMNS[1:]))
        uses.insert(0, "replication", np.int64(replication))
        uses["patient_id"] = uses["patient_id"].astype(np.int64)
    return ReplicationResult(replication, patients, resources, events, uses, n_events,
                             time.perf_counter() - started)


def _patients_frame(scenario: Scenario, replication: int, cohort, rec: Records | FastRecords,
                    names: np.ndarray) -> pd.DataFrame:
    n = cohort.n
    etiology = np.array(ETIOLOGIES, dtype=object)[cohort.etiology] if n else np.array([], dtype=object)
    leak_names = np.array([*LEAK_TYPES, "procedural"], dtype=object)
    n_brain_mri = np.asarray(rec.n_brain_mri, dtype=np.int64)
    n_spinal = np.asarray(rec.n_spinal_imaging, dtype=np.int64)
    n_rec = np.asarray(rec.n_recurrences, dtype=np.int64)
    n_ref = np.asarray(rec.n_referrals, dtype=np.int64)
    df = pd.DataFrame({
        "replication": np.full(n, replication, dtype=np.int64),
        "patient_id": np.arange(n, dtype=np.int64),
        "home_center": names[cohort.home_center] if n else np.array([], dtype=object),
        "center": names[np.asarray(rec.center, dtype=np.int64)] if n else np.array([], dtype=object),
        "etiology": etiology,
        "leak_type": leak_names[cohort.leak_type] if n else np.array([], dtype=object),
        "onset_day": cohort.onset_day,
        "presented_day": np.asarray(rec.presented_day, dtype=np.float64),
        "diagnosed_day": np.asarray(rec.diagnosed_day, dtype=np.float64),
        "first_treatment_day": np.asarray(rec.first_treatment_day, dtype=np.float64),
        "resolved_day": np.asarray(rec.resolved_day, dtype=np.float64),
        "final_state": np.asarray(rec.final_state, dtype=object),
        "resolved_by": np.asarray(rec.resolved_by, dtype=object),
        "persistent_reason": np.asarray(rec.persistent_reason, dtype=object),
        "n_consultations": np.asarray(rec.n_consultations, dtype=np.int64),
        "n_imaging": n_brain_mri + n_spinal,
        "n_brain_mri": n_brain_mri,
        "n_spinal_imaging": n_spinal,
        "n_ebp": np.asarray(rec.n_ebp, dtype=np.int64),
        "n_targeted_patch": np.asarray(rec.n_targeted_patch, dtype=np.int64),
        "n_fibrin_patch": np.asarray(rec.n_fibrin_patch, dtype=np.int64),
        "n_surgery": np.asarray(rec.n_surgery, dtype=np.int64),
        "n_embolization": np.asarray(rec.n_embolization, dtype=np.int64),
        "rih": np.asarray(rec.rih, dtype=bool),
        "rih_misread": np.asarray(rec.rih_misread, dtype=bool),
        "rih_days": np.asarray(rec.rih_days, dtype=np.float64),
        "n_acetazolamide_courses": np.asarray(rec.n_acetazolamide_courses, dtype=np.int64),
        "recurred": n_rec > 0,
        "n_recurrences": n_rec,
        "referred": n_ref > 0,
        "n_referrals": n_ref,
        "leak_localized": np.asarray(rec.leak_localized, dtype=bool),
        "symptom_days": np.asarray(rec.symptom_days, dtype=np.float64),
        "waiting_days": np.asarray(rec.waiting_days, dtype=np.float64),
        "in_warmup": cohort.onset_day < scenario.warmup_days,
    })
    for col in ("resolved_by", "persistent_reason"):
        df[col] = df[col].where(df[col] != "", None)
    return df


def _resources_frame(scenario: Scenario, replication: int, centers: Sequence[CenterState | CenterTotals]
                     ) -> pd.DataFrame:
    horizon = scenario.horizon_days
    rows = []
    for center in centers:
        for r, mon in zip(RESOURCES, center.monitors, strict=True):
            waits = np.asarray(mon.waits)
            rows.append({
                "replication": replication,
                "center": center.name,
                "resource": r,
                "capacity": mon.capacity,
                "n_arrived": mon.n_arrived,
                "n_served": mon.n_served,
                "n_abandoned": mon.n_abandoned,
                "n_waiting_at_horizon": mon.n_waiting,
                "mean_wait_days": float(waits.mean()) if waits.size else np.nan,
                "p90_wait_days": float(np.quantile(waits, 0.9)) if waits.size else np.nan,
                "utilization": mon.area_busy / (mon.capacity * horizon),
                "mean_queue_length": mon.area_waiting / horizon,
                "arrival_rate_per_day": mon.n_arrived / horizon,
            })
    return pd.DataFrame(rows)


def _events_frame(replication: int, events: list, cohort) -> pd.DataFrame:
    onset = pd.DataFrame({
        "patient_id": np.arange(cohort.n, dtype=np.int64),
        "day": cohort.onset_day,
        "activity": "onset",
        "center": "",
        "resource": "",
    })
    logged = pd.DataFrame(events, columns=["patient_id", "day", "activity", "center", "resource"])
    df = pd.concat([onset, logged], ignore_index=True) if len(logged) else onset
    df = df.sort_values(["day", "patient_id"], kind="stable").reset_index(drop=True)
    df.insert(0, "replication", np.int64(replication))
    df["patient_id"] = df["patient_id"].astype(np.int64)
    return df[list(EVENT_COLUMNS)]
