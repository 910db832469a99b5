"""One replication: draw the cohort, run the pathway (SimPy engine, or the fast path when nothing can queue),
return tidy tables."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.config.parameters import BERN_CLASSES, ETIOLOGIES, LEAK_TYPES, RESOURCES, Scenario
from sim.economics.costs import economic_params, economics_columns
from sim.engines.choice import select_engine
from sim.engines.fast_engine import CenterTotals, FastPathway
from sim.engines.session_book import SessionBook
from sim.engines.simpy_engine import CenterState, Pathway
from sim.errors import ScenarioError
from sim.io import outputs
from sim.model.complications import (
    complication_flags,
    leak_complications,
    leak_parameters,
    one_haematoma,
    probabilities,
)
from sim.model.population import Cohort, draw_cohort, draw_cohorts
from sim.model.records import ENGINE_COLUMNS, PATIENT_COLUMNS, TEXT_CODES, Records

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
    # `patients` as an Arrow table (`outputs.arrow_table`), when a fast-path batch made it for all its replications.
    patients_arrow: Any = field(default=None, repr=False, compare=False)


def run_replication(scenario: Scenario, root_seed: int, replication: int, log_events: bool = False,
                    engine: str = "auto") -> ReplicationResult:
    """Run one replication. `engine="auto"` takes the fast engine (`sim.engines.fast_engine`) exactly when it gives
    the same patients as the SimPy engine (no capacity below the number of patients) and no event log is asked."""
    started = time.perf_counter()
    cohort = draw_cohort(scenario, root_seed, replication)
    return _replicate(scenario, root_seed, replication, cohort, log_events, engine, started)


# Patients per batch of fast-path replications: enough to spread the fixed cost of each numpy step, few enough
# that a batch's arrays stay small (a patient carries about 2.4 kB of uniforms).
# Fast-path batch size: larger batches pay each numpy step's fixed cost over more patients (engine 1.03M -> 1.14M
# patients/s from ~20,000 to ~40,000 on the low-volume scenario, about 5% more again at 60,000-80,000 in session 4's
# interleaved runs, nothing more at 160,000), for ~240 MB of uniforms per batch.
BATCH_PATIENTS = 80_000


def expected_patients(scenario: Scenario) -> float:
    """Patients expected in one replication: the Poisson mean over the horizon at the peak arrival rate (an upper
    bound of the mean when demand grows or is seasonal; used to size batches)."""
    pop = scenario.population
    return sum(pop.arrivals_per_year.values()) * scenario.horizon_days / 365.25 * \
        pop.max_rate_multiplier(scenario.horizon_days)


def batch_size(scenario: Scenario, engine: str = "auto", log_events: bool = False) -> int:
    """How many replications `run_replications` should get at once: 1 on the SimPy engine; on the fast path,
    about BATCH_PATIENTS patients' worth."""
    expected = expected_patients(scenario)
    likely_most = int(expected + 10 * math.sqrt(expected) + 10)  # Poisson: practically never exceeded
    try:
        if select_engine(scenario, likely_most, engine, log_events) != "fast":
            return 1
    except ScenarioError:  # "fast" asked for where it cannot run: each replication says so itself
        return 1
    return max(1, int(BATCH_PATIENTS // max(expected, 1.0)))


def run_replications(scenario: Scenario, root_seed: int, replications: Sequence[int], log_events: bool = False,
                     engine: str = "auto") -> list[ReplicationResult]:
    """Run several replications, in order. When they take the fast path they are drawn and advanced as one batch
    (`population.draw_cohorts`): the same results as `run_replication` one at a time (tested), with the fixed
    cost of each numpy step paid once for the batch. A batch's `wall_seconds` is its time shared out in
    proportion to patients."""
    started = time.perf_counter()
    if len(replications) < 2 or select_engine(scenario, 0, engine, log_events) != "fast":
        return [run_replication(scenario, root_seed, rep, log_events, engine) for rep in replications]
    cohort, sizes = draw_cohorts(scenario, root_seed, replications)
    if any(select_engine(scenario, n, engine, log_events) != "fast" for n in sizes):
        return [run_replication(scenario, root_seed, rep, log_events, engine) for rep in replications]
    fast = FastPathway(scenario, cohort, sizes)
    fast.run()
    assert fast.records is not None
    names = np.array(scenario.center_names, dtype=object)
    bounds = np.cumsum([0, *sizes]).tolist()
    # One patient table for the batch, then each replication's rows: every column is computed patient by
    # patient, so the rows are those of a table made per replication (tested), and the batch pays pandas' cost
    # per column once instead of once per replication (1.3 ms per replication of ~1,300 patients).
    first_row = np.repeat(np.asarray(bounds[:-1], dtype=np.int64), sizes)
    joint = _patients_frame(scenario, np.repeat(np.asarray(replications, dtype=np.int64), sizes), cohort,
                            fast.records, names, patient_id=np.arange(cohort.n, dtype=np.int64) - first_row)
    joint_arrow = outputs.arrow_table(joint)  # likewise converted once, each replication's part a slice of it
    tables = []
    for b, rep in enumerate(replications):
        patients = joint.iloc[bounds[b]:bounds[b + 1]].reset_index(drop=True)
        tables.append((rep, patients, _resources_frame(scenario, rep, fast.centers_by_replication[b]),
                       joint_arrow.slice(bounds[b], sizes[b])))
    seconds = time.perf_counter() - started
    weights = [max(n, 1) for n in sizes]  # an empty replication still gets a share, and the shares add up
    return [ReplicationResult(rep, patients, resources, None, None, 0, seconds * w / sum(weights), "fast", arrow)
            for (rep, patients, resources, arrow), w in zip(tables, weights, strict=True)]


def _replicate(scenario: Scenario, root_seed: int, replication: int, cohort: Cohort, log_events: bool, engine: str,
               started: float) -> ReplicationResult:
    """One replication on its drawn cohort, on the engine `select_engine` picks."""
    names = np.array(scenario.center_names, dtype=object)
    if select_engine(scenario, cohort.n, engine, log_events) == "fast":
        fast = FastPathway(scenario, cohort)
        fast.run()
        assert fast.records is not None
        patients = _patients_frame(scenario, replication, cohort, fast.records, names)
        resources = _resources_frame(scenario, replication, fast.centers)
        return ReplicationResult(replication, patients, resources, None, None, 0, time.perf_counter() - started,
                                 "fast")
    model = Pathway(scenario, cohort, log_events=log_events, root_seed=root_seed, replication=replication)
    model.run()
    n_events = next(model.env._eid)  # SimPy's event counter: events scheduled in this replication
    patients = _patients_frame(scenario, replication, cohort, model.records, names)  # with costs and QALYs
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


# The dtype pandas gives a column of Python strings ("str" since pandas 3, object before): text columns are built
# straight into it from integer codes (with pyarrow storage: one `take`, no per-string inference).
TEXT_DTYPE = pd.Series(np.array(["x"], dtype=object)).dtype
_STRING_TEXT = isinstance(TEXT_DTYPE, pd.StringDtype)
_ARROW_TEXT = _STRING_TEXT and TEXT_DTYPE.storage == "pyarrow"


def text_column(categories: Sequence[str | None], codes: np.ndarray) -> Any:
    """The text column `categories[codes]` (None for missing), as `pd.DataFrame` would make it from strings.
    Codes are non-negative (arrow's `take` does not count from the end as numpy does)."""
    if _ARROW_TEXT:
        import pyarrow as pa

        return pd.array(pa.array(list(categories), type=pa.large_string()).take(np.asarray(codes)),
                        dtype=TEXT_DTYPE)
    return _from_strings(np.array(list(categories), dtype=object)[codes])


def _from_strings(values: np.ndarray) -> Any:
    return pd.array(values, dtype=TEXT_DTYPE) if _STRING_TEXT else values


def _patients_frame(scenario: Scenario, replication: int | np.ndarray, cohort, rec: Records,
                    names: np.ndarray, patient_id: np.ndarray | None = None) -> pd.DataFrame:
    """The patient table with its economics columns, built column by column in numpy and made a DataFrame once
    (no intermediate frames: at a few thousand patients per replication their overhead is most of the cost).
    For a batch of replications: `replication` and `patient_id` per row."""
    n = cohort.n
    center_names = list(names)
    engine = {c.name: rec.column(c.name) for c in ENGINE_COLUMNS if c.kind != "text"}
    text = {name: text_column([x or None for x in categories], rec.column(name))
            for name, categories in TEXT_CODES.items()}
    columns: dict[str, Any] = {
        "replication": replication if isinstance(replication, np.ndarray) else np.full(n, replication, dtype=np.int64),
        "patient_id": np.arange(n, dtype=np.int64) if patient_id is None else patient_id,
        "home_center": text_column(center_names, cohort.home_center),
        "center": text_column(center_names, engine["center"]),
        "etiology": text_column(ETIOLOGIES, cohort.etiology),
        "leak_type": text_column([*LEAK_TYPES, "procedural"], cohort.leak_type % (len(LEAK_TYPES) + 1)),  # -1 last
        "severe_headache": cohort.severe,
        "slec": cohort.slec,
        "bern_class": text_column([*BERN_CLASSES, None], cohort.bern_class % (len(BERN_CLASSES) + 1)),  # -1 last
        "onset_day": cohort.onset_day,
        "first_contact_day": cohort.first_contact_day,
        "n_front_door_visits": cohort.front_door_visits,
        **{name: values for name, values in engine.items() if name != "center"},
        **text,
        "n_imaging": engine["n_brain_mri"] + engine["n_spinal_imaging"],
        "recurred": engine["n_recurrences"] > 0,
        "referred": engine["n_referrals"] > 0,
        "in_warmup": cohort.onset_day < scenario.warmup_days,
        "counted": scenario.counted(cohort.onset_day),
    }
    treatment = complication_flags(columns, cohort.etiology == ETIOLOGIES.index("spontaneous"),
                                   cohort.uniforms["complications"], probabilities(scenario.resolved))
    leak = leak_complications(cohort.onset_day, np.asarray(engine["first_resolved_day"], dtype=float),
                              cohort.leak_type, scenario.horizon_days, cohort.uniforms["leak_complications"],
                              leak_parameters(scenario.resolved))
    one_haematoma(treatment, leak)
    columns.update(treatment)
    columns.update(leak)
    columns.update(economics_columns(columns, cohort.etiology == ETIOLOGIES.index("spontaneous"),
                                     np.asarray(columns["final_state"] == "persistent", dtype=bool),
                                     economic_params(scenario), scenario.horizon_days))
    return pd.DataFrame({name: columns[name] for name in PATIENT_COLUMNS})


# The planner's view of a resource (0 sessions: servers, not session-booked). For a session-booked resource,
# `utilization` is the share of `slots_offered` that any patient used, `background_slots_used` those the hospital's
# other patients used, and the list length includes the other patients waiting.
SESSION_COLUMNS = ("sessions_per_week", "slots_per_session", "slots_offered", "background_slots_used",
                   "mean_list_length", "mean_wait_weeks")


def _resources_frame(scenario: Scenario, replication: int, centers: Sequence[CenterState | CenterTotals]
                     ) -> pd.DataFrame:
    """One row per (center, resource), built column-wise (a frame from row dicts costs more than the rest)."""
    horizon = scenario.horizon_days
    cols: dict[str, list] = {name: [] for name in (
        "replication", "center", "resource", "capacity", "n_arrived", "n_served", "n_abandoned",
        "n_waiting_at_horizon", "mean_wait_days", "p90_wait_days", "utilization", "mean_queue_length",
        "arrival_rate_per_day", *SESSION_COLUMNS)}
    for center in centers:
        for r, mon in zip(RESOURCES, center.monitors, strict=True):
            waits = np.asarray(mon.waits)
            if not waits.size:
                mean_wait = p90_wait = np.nan
            elif not waits.any():  # nobody waited (always so on the fast path): both are exactly 0
                mean_wait = p90_wait = 0.0
            else:
                mean_wait, p90_wait = float(waits.mean()), float(np.quantile(waits, 0.9))
            for name, value in (("replication", replication), ("center", center.name), ("resource", r),
                                ("capacity", mon.capacity), ("n_arrived", mon.n_arrived),
                                ("n_served", mon.n_served), ("n_abandoned", mon.n_abandoned),
                                ("n_waiting_at_horizon", mon.n_waiting), ("mean_wait_days", mean_wait),
                                ("p90_wait_days", p90_wait),
                                ("utilization", mon.utilization(horizon)),
                                ("mean_queue_length", mon.area_waiting / horizon),
                                ("arrival_rate_per_day", mon.n_arrived / horizon)):
                cols[name].append(value)
            if isinstance(mon, SessionBook):
                session = (mon.sessions_per_week, mon.slots, mon.slots_offered, mon.slots_used_background,
                           mon.area_list(horizon) / horizon)
            else:  # servers: the list is the queue, and no other patients share it
                session = (0, 0, 0, 0, mon.area_waiting / horizon)
            for name, value in zip(SESSION_COLUMNS, (*session, mean_wait / 7.0), strict=True):
                cols[name].append(value)
    return pd.DataFrame(cols)


def _events_frame(replication: int, events: list, cohort) -> pd.DataFrame:
    """Every patient's onset and the logged events, by day then patient (stable), built column by column: a
    frame made from the list of tuples was about half of the replication's table-making time."""
    n = cohort.n
    logged = list(zip(*events, strict=True)) if events else [(), (), (), (), ()]
    patient = np.concatenate([np.arange(n, dtype=np.int64), np.asarray(logged[0], dtype=np.int64)])
    day = np.concatenate([np.asarray(cohort.onset_day, dtype=float), np.asarray(logged[1], dtype=float)])
    order = np.lexsort((patient, day))  # stable: ties keep onset rows first, then the log's order

    def text(first: str | None, logged_values: tuple) -> np.ndarray:
        values = np.empty(n + len(logged_values), dtype=object)
        values[:n] = first
        values[n:] = logged_values
        values[values == ""] = None  # no center (an onset) or no resource: null, as process-mining tools expect
        return values[order]

    return pd.DataFrame({"replication": np.full(n + len(logged[0]), replication, dtype=np.int64),
                         "patient_id": patient[order], "day": day[order],
                         "activity": text("onset", logged[2]), "center": text(None, logged[3]),
                         "resource": text(None, logged[4])})[list(EVENT_COLUMNS)]
