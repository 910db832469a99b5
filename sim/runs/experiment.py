"""Many replications of a scenario: in-process or on worker processes, written per replication, resumable.

Replication r of a run depends only on (scenario, root seed, r), never on which worker ran it or when, so the
tables are identical bit for bit for any number of jobs. Each finished replication is written atomically to a
`parts/` folder inside `OUT.partial/`; the run is finalized (tables concatenated on disk, manifest written) and
the folder renamed to OUT only when every replication is there. `resume=True` picks up an interrupted run.

What would be serial is kept small, so that two workers run nearly twice as fast as one: with --jobs N, N - 1
worker processes and this one share the work (`Crew`), and the workers live for the whole run; the patient (and
event) tables are appended to the final file as replications finish, in replication order (on a thread of this
process when there are workers, so that the appends use a core's idle time); each worker also
writes a compact summary of its replication's outcomes (`sim.analysis.summaries`), and km.csv and distributions.csv are
merged from those on the workers, exactly, instead of reading every patient back into this process (which also
held ~600 MB per million patients).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sim.analysis.planning import resource_timeseries
from sim.analysis.stats import (
    LOOK_AHEAD,
    MIN_REPS,
    PRIMARY_METRICS,
    relative_half_widths,
    replication_metrics,
    replications_needed,
    summarize,
    summary_table,
)
from sim.analysis.summaries import merged_distribution_table, merged_km_table, replication_outcomes, write_outcomes
from sim.analysis.survival import EVENTS
from sim.config.parameters import Scenario
from sim.config.scenario import expected_patients, load_scenario
from sim.config.schema import to_jsonable
from sim.engines.choice import ENGINES
from sim.errors import RunInterrupted, ScenarioError
from sim.io import outputs
from sim.io.runfolder import RunFolder
from sim.runs import replication
from sim.runs.backends import Backend, WorkLost, dask_client, dask_results, dask_workers, handled, result_of
from sim.runs.crew import Crew, WorkerDied
from sim.runs.replication import ReplicationResult

PARTS = "parts"


class _TemporaryFolder:
    """The folder of a run kept in memory (no `out`), removed once no result refers to it any more (copies made
    with `dataclasses.replace` share it), or at exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._remove = weakref.finalize(self, shutil.rmtree, path, True)

    def remove(self) -> None:
        self._remove()


@dataclass
class RunResult:
    """A finished run: tables as pandas DataFrames, plus where they were written.

    The patient, event and resource-use tables are read from disk on first use: from the run folder, or for a
    run kept in memory (no `out`) from a temporary folder that lives as long as this result. Most in-memory runs
    (sensitivity samples, benchmarks) want only the summaries, and reading ~200,000 patients back cost 0.2 s."""

    scenario: Scenario
    seed: int
    reps: int
    per_replication: pd.DataFrame
    summary: pd.DataFrame
    resources: pd.DataFrame
    manifest: dict[str, Any]
    out_dir: Path | None = None
    _patients: pd.DataFrame | None = field(default=None, repr=False)
    _events: pd.DataFrame | None = field(default=None, repr=False)
    _uses: pd.DataFrame | None = field(default=None, repr=False)
    _temporary: _TemporaryFolder | None = field(default=None, repr=False)

    def _read(self, name: str) -> pd.DataFrame | None:
        """A table of the run's folder; None when the run did not write it (no event log)."""
        folder = self.out_dir if self.out_dir is not None else (self._temporary.path if self._temporary else None)
        if folder is None:
            return None
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: the run's folder is gone, so its {name} cannot be read")
        return pd.read_parquet(folder / name) if (folder / name).exists() else None

    @property
    def patients(self) -> pd.DataFrame:
        """The patient-level table (one row per patient, with its replication)."""
        if self._patients is None:
            self._patients = self._read("patients.parquet")
        return self._patients if self._patients is not None else pd.DataFrame()

    @property
    def resource_uses(self) -> pd.DataFrame:
        """Every resource use started by the horizon (request, start and end day; a use in progress at the
        horizon has its scheduled end, beyond it); empty when run with log_events=False."""
        if self._uses is None:
            self._uses = self._read("resource_uses.parquet")
        return self._uses if self._uses is not None else pd.DataFrame()

    @property
    def events(self) -> pd.DataFrame:
        """The event log; empty when run with log_events=False."""
        if self._events is None:
            self._events = self._read("events.parquet")
        return self._events if self._events is not None else pd.DataFrame()

    def __repr__(self) -> str:
        """One line (the default printed every table: a notebook cell of tens of thousands of characters)."""
        where = f", out_dir={str(self.out_dir)!r}" if self.out_dir is not None else ""
        return (f"RunResult(scenario={self.scenario.name!r}, seed={self.seed}, reps={self.reps}, "
                f"metrics={len(self.summary)} summary rows{where})")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its tables read in: a copy must not depend on the temporary folder of this one."""
        if self._temporary is not None:
            _ = self.patients, self.events, self.resource_uses
        return {**self.__dict__, "_temporary": None}

    def metric(self, metric: str, group: str = "all") -> pd.Series:
        """One summary row (mean, sd, ci95_low, ci95_high, n_replications) by metric name and group."""
        s = self.summary
        row = s[(s["metric"] == metric) & (s["group"] == group)]
        if row.empty:
            raise KeyError(f"{metric} / {group}")
        return row.iloc[0]


def compute_replication(scenario: Scenario, seed: int, rep: int, log_events: bool,
                        engine: str = "auto") -> dict[str, Any]:
    """Run one replication and return its tables."""
    return compute_replications(scenario, seed, [rep], log_events, engine)[0]


def compute_replications(scenario: Scenario, seed: int, reps: Sequence[int], log_events: bool,
                         engine: str = "auto") -> list[dict[str, Any]]:
    """Run replications (as one batch on the fast path: `replication.run_replications`) and return each one's
    tables (what Dask workers send back: they need not share our file system)."""
    return [_tables(scenario, result) for result in
            replication.run_replications(scenario, seed, reps, log_events=log_events, engine=engine)]


def _compute_for_transfer(scenario: Scenario, seed: int, reps: Sequence[int], log_events: bool,
                          engine: str = "auto") -> list[dict[str, Any]]:
    """compute_replications for a Dask worker: without the Arrow slices of a fast-path batch, which would be
    pickled with the whole batch's buffers (this process converts the patients itself)."""
    tables = compute_replications(scenario, seed, reps, log_events, engine)
    for t in tables:
        t["patients_arrow"] = None
    return tables


def _tables(scenario: Scenario, result: ReplicationResult) -> dict[str, Any]:
    rep = result.replication
    tables: dict[str, Any] = {
        "patients": result.patients,
        "resources": result.resources,
        "metrics": replication_metrics(result.patients, result.resources, scenario.horizon_days),
        # What km.csv and distributions.csv need, summarized here in parallel rather than at the end (summaries).
        "outcomes": replication_outcomes(result.patients, scenario.horizon_days),
        "patients_arrow": result.patients_arrow,  # or None: write_parts converts the patients then
        "info": {"replication": rep, "n_patients": len(result.patients), "n_simpy_events": result.n_simpy_events,
                 "wall_seconds": result.wall_seconds, "engine": result.engine},
    }
    if result.events is not None and result.resource_uses is not None:
        tables["events"] = result.events
        tables["uses"] = result.resource_uses
        tables["timeseries"] = resource_timeseries(result.resource_uses, result.resources, scenario.horizon_days)
    return tables


def write_parts(parts: Path, rep: int, tables: dict[str, Any], keep: dict[int, dict[str, Any]] | None = None
                ) -> dict[str, float]:
    """Write one replication's tables atomically; the metrics file goes last and marks the replication done.
    `keep`: where to leave the Arrow tables just written (keyed by replication), when this process will append
    them to the run's files, so that they are not read back from disk."""
    written = {"patients": outputs.atomic_write_arrow(parts / f"patients-{rep:05d}.arrow", tables["patients"],
                                                      tables.get("patients_arrow"))}
    if "events" in tables:
        written["events"] = outputs.atomic_write_arrow(parts / f"events-{rep:05d}.arrow", tables["events"])
        written["uses"] = outputs.atomic_write_arrow(parts / f"uses-{rep:05d}.arrow", tables["uses"])
        outputs.atomic_write_csv(parts / f"timeseries-{rep:05d}.csv", tables["timeseries"])
    if keep is not None:
        keep[rep] = written
    resources = parts / f"resources-{rep:05d}.csv"
    outputs.atomic_write_csv(resources, tables["resources"])
    write_outcomes(parts / f"outcomes-{rep:05d}.bin", tables["outcomes"])
    metrics = parts / f"metrics-{rep:05d}.csv"
    outputs.atomic_write_csv(metrics, tables["metrics"])
    # The metrics and resources as the run reads them back (through CSV), read here: in parallel on a worker,
    # and not at the end of the run, in this process alone.
    return {**tables["info"], "metrics": pd.read_csv(metrics), "resources": pd.read_csv(resources)}


def _task(scenario: Scenario, seed: int, reps: list[int], log_events: bool, parts: str,
          engine: str = "auto", keep: dict[int, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Compute and write a batch of replications (in a worker process, or in this one with `keep`: see
    write_parts); return only their small info records."""
    return [write_parts(Path(parts), tables["info"]["replication"], tables, keep)
            for tables in compute_replications(scenario, seed, reps, log_events, engine)]


def _batches(scenario: Scenario, todo: list[int], workers: int, log_events: bool, engine: str) -> list[list[int]]:
    """Replications grouped for the workers: one at a time on the SimPy engine; on the fast path batches of about
    `replication.BATCH_PATIENTS` patients, but at least two per worker so that none is left idle at the end."""
    size = replication.batch_size(scenario, engine, log_events)
    if workers > 1:
        size = min(size, max(1, math.ceil(len(todo) / (2 * workers))))
    return [todo[i:i + size] for i in range(0, len(todo), size)]


def _done_reps(parts: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in parts.glob("metrics-*.csv")}


# Peak memory of one replication per patient it draws, measured on replications of ~100,000 patients (SimPy,
# 5.2 KB without the event log, 5.5 KB with it; session 6), with a margin for writing its tables.
BYTES_PER_PATIENT = 8_000
MEMORY_SHARE = 0.8  # of the memory the system says is available, for all the processes of a run together


def _available_memory() -> float | None:
    """Bytes the system can give without swapping (MemAvailable, Linux), or None where it does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(scenario: Scenario, backend: Backend, available: float | None = None) -> None:
    """Refuse a run whose replications, one per process at a time, would not fit in memory (a process killed for
    memory mid-run helps no one), with the estimate in the message."""
    if backend.kind == "dask" and backend.scheduler:  # the workers' memory is elsewhere
        return
    available = _available_memory() if available is None else available
    if available is None:
        return
    patients = expected_patients(scenario.population, scenario.horizon_days)
    per_replication = patients * BYTES_PER_PATIENT
    processes = 1 if backend.kind == "serial" else max(1, backend.jobs)
    budget = available * MEMORY_SHARE
    if per_replication * processes <= budget:
        return
    estimate = (f"a replication of ~{patients:,.0f} patients needs ~{per_replication / 1e9:.1f} GB and this "
                f"machine has {available / 1e9:.1f} GB available")
    if per_replication <= budget:
        fits = int(budget // per_replication)
        raise ScenarioError("(command line)", "--jobs", processes, f"at most {fits} processes here: {estimate}")
    raise ScenarioError(scenario.source_file or "(scenario)", "population.catchment.adults",
                        scenario.population.catchment_adults,
                        "fewer patients per replication (a smaller catchment or incidence, or a shorter "
                        f"run.horizon_days): {estimate}")


def run_replications(scenario: Scenario, seed: int, reps: Sequence[int], parts: Path, backend: Backend | int,
                     log_events: bool, on_done: Callable[[dict[str, Any]], None] | None = None,
                     engine: str = "auto", crew: Crew | None = None,
                     keep: dict[int, dict[str, Any]] | None = None) -> None:
    """Run the given replications (skipping those already in `parts`) on the backend; each finished replication
    is written before the next is reported, so an interruption loses at most the ones in flight. `keep`: where
    replications run in this process leave the Arrow tables they wrote (see write_parts).

    `crew`: worker processes to share the `processes` backend's work with (`run` keeps one for the whole run, so
    that batches of `--reps auto` and the final merging reuse the same workers); one is started here when None."""
    if isinstance(backend, int):
        backend = Backend("processes", backend)
    todo = sorted(set(reps) - _done_reps(parts))
    if not todo:
        return
    if backend.kind == "dask":
        _run_dask(scenario, seed, todo, parts, backend, log_events, on_done, engine)
        return
    if backend.kind == "serial" or backend.jobs <= 1 or len(todo) == 1:
        for batch in _batches(scenario, todo, 1, log_events, engine):
            for info in _task(scenario, seed, batch, log_events, str(parts), engine, keep):
                if on_done:
                    on_done(info)
        return
    own = crew is None
    crew = crew or Crew(min(backend.jobs, len(todo)) - 1)
    try:
        _run_on_crew(crew, scenario, seed, todo, parts, log_events, on_done, engine, backend.jobs, keep)
    finally:
        if own:
            crew.shutdown()


def _run_on_crew(crew: Crew, scenario: Scenario, seed: int, todo: list[int], parts: Path, log_events: bool,
                 on_done: Callable[[dict[str, Any]], None] | None, engine: str, jobs: int,
                 keep: dict[int, dict[str, Any]] | None) -> None:
    batches = _batches(scenario, todo, jobs, log_events, engine)
    crew.start([(_task, (scenario, seed, batch, log_events, str(parts), engine)) for batch in batches])

    def report(_: int, infos: list[dict[str, Any]]) -> None:
        for info in infos:
            if on_done:
                on_done(info)

    try:
        crew.finish(lambda i: _task(scenario, seed, batches[i], log_events, str(parts), engine, keep), report)
    except WorkerDied:
        raise _worker_died(parts) from None


def _worker_died(parts: Path) -> RunInterrupted:
    return RunInterrupted(f"a worker process died; {len(_done_reps(parts))} finished replications "
                          f"are kept in {parts.parent}; rerun with --resume to finish")


def _start_crew(backend: Backend, max_tasks: int) -> Crew | None:
    """Worker processes for the whole run, `jobs - 1` of them since this process works too (None when
    replications run in this process alone or on Dask)."""
    if backend.kind != "processes" or backend.jobs <= 1 or max_tasks <= 1:
        return None
    return Crew(min(backend.jobs, max_tasks) - 1)


class _Concatenation:
    """The run's Parquet tables (patients, and with the event log events and resource uses), appended
    replication by replication in order while the run goes on: each part is appended as soon as it and all
    before it are written. With worker processes this overlaps the simulation; before, the whole concatenation
    came after the last replication, in this process alone.

    `background`: append on a thread of this process (with worker processes). Encoding Parquet runs in pyarrow
    without the GIL, so this process goes on simulating meanwhile, and the appends fill the time a core would
    otherwise idle (a worker done with its last replication while this process finishes its own). Measured with
    8 replications of ~26,000 patients on 2 cores: this process's appends were ~0.17 s of its ~3.2 s, and the
    worker waited for it at the end. Appends stay in replication order (one thread, tasks in order)."""

    def __init__(self, parts: Path, work: Path, n: int, log_events: bool, background: bool = False) -> None:
        names = {"patients": "patients.parquet"}
        if log_events:
            names |= {"events": "events.parquet", "uses": "resource_uses.parquet"}
        # Written inside parts/ (removed once the run is finished), so an interrupted run leaves no stray file.
        self.outs = {kind: outputs.ParquetConcat(work / name, parts / f".concat-{name}") for kind, name in
                     names.items()}
        self.parts, self.n, self.next = parts, n, 0
        self.done = _done_reps(parts)
        # Arrow tables of replications run in this process (serial runs), filled by write_parts: appended
        # without reading their parts back.
        self.held: dict[int, dict[str, Any]] = {}
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="csfsim-append") if background else None
        self.pending: list[Future[None]] = []

    def add(self, rep: int) -> None:
        self.done.add(rep)
        while self.next < self.n and self.next in self.done:
            held = self.held.pop(self.next, {})  # tables this process wrote and still holds, else read back
            if self.thread is None:
                self._append(self.next, held)
            else:
                self.pending.append(self.thread.submit(self._append, self.next, held))
            self.next += 1
        for r in [r for r in self.held if r < self.next]:  # in place: run() handed this very dict to the writers
            del self.held[r]
        self._raise_failed()

    def _append(self, rep: int, held: dict[str, Any]) -> None:
        for kind, out in self.outs.items():
            table = held.get(kind)
            out.add(self.parts, table if table is not None else outputs.read_part(self.parts / f"{kind}-{rep:05d}"))

    def _raise_failed(self) -> None:
        """An append that failed on the thread (disk full, ...) stops the run as it would have in this one."""
        done, pending = [], []
        for f in self.pending:  # one look at each (a future finishing between two looks would be in neither list)
            (done if f.done() else pending).append(f)
        self.pending = pending
        for f in done:
            f.result()

    def finish(self) -> int:
        """Append what is left and put the files in place; returns the number of patients."""
        for rep in range(self.next, self.n):
            self.add(rep)
        for f in self.pending:
            f.result()
        self.pending = []
        self._stop_thread()
        rows = {kind: out.close() for kind, out in self.outs.items()}
        return rows["patients"]

    def _stop_thread(self) -> None:
        if self.thread is not None:
            self.thread.shutdown(wait=True, cancel_futures=True)
            self.thread = None

    def abort(self) -> None:
        self._stop_thread()  # the append in flight ends before the files it writes are removed
        for out in self.outs.values():
            out.abort()


def _run_dask(scenario: Scenario, seed: int, todo: list[int], parts: Path, backend: Backend, log_events: bool,
              on_done: Callable[[dict[str, Any]], None] | None, engine: str = "auto") -> None:
    """Replications as Dask tasks, batched by the cluster's size; tables come back to this process, which writes
    them (workers on other machines need not see our disk)."""
    try:
        with dask_client(backend) as client:
            workers = dask_workers(client, backend.jobs)
            futures = [client.submit(_compute_for_transfer, scenario, seed, batch, log_events, engine, pure=False)
                       for batch in _batches(scenario, todo, workers, log_events, engine)]
            for fut in dask_results(client, futures):
                batch = result_of(fut)
                fut.release()
                for tables in batch:
                    info = handled(write_parts, parts, tables["info"]["replication"], tables)
                    if on_done:
                        handled(on_done, info)
    except WorkLost as lost:
        # What came back is kept, as after a dead worker process.
        raise RunInterrupted(f"{lost}; {len(_done_reps(parts))} finished replications are kept in "
                             f"{parts.parent}; rerun with --resume to finish") from None


def progress_bar(total: int, initial: int, label: str, enabled: bool | None, unit: str = "rep"):
    from tqdm import tqdm

    class Bar(tqdm):
        # No monitor thread: tqdm starts one with its first bar (even a disabled one) and keeps it, so from a
        # process's second run on it was alive when the crew forked its workers. It only adjusts how often a
        # bar whose updates slow down redraws itself.
        monitor_interval = 0

    show = sys.stderr.isatty() if enabled is None else enabled
    return Bar(total=total, initial=initial, desc=label, unit=unit, disable=not show, leave=False)


def run(scenario: Scenario | str | os.PathLike[str], reps: int | str = 10, seed: int = 1, jobs: int = 1,
        out: str | os.PathLike[str] | None = None, log_events: bool = True, resume: bool = False,
        progress: bool | None = None, command: str | None = None, backend: Backend | None = None,
        precision: float = 0.05, max_reps: int = 200, engine: str = "auto", overwrite: bool = False) -> RunResult:
    """Run replications of a scenario. With `out`, writes the run folder; without, keeps it in memory.

    `out` must be new or empty, or a finished run that csfsim wrote alone and `overwrite` is set
    (sim/io/runfolder.py); a second run into the same `out` while one is going is refused.

    `engine`: "auto" (the fast path for replications where nothing can queue and no event log is wanted, else
    SimPy), "simpy", or "fast" (an error where it does not apply). The engines used go in the manifest.

    `reps="auto"` adds replications until the 95% CI half-width of every primary metric is within `precision`
    of its mean (Hoad, Robinson & Davies 2010, with their look-ahead), up to `max_reps`.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    auto = reps == "auto"
    if not auto and (isinstance(reps, bool) or not isinstance(reps, int) or not 1 <= reps <= 100_000):
        raise ScenarioError("(command line)", "--reps", reps, "a whole number of replications from 1 to 100000, "
                                                             "or auto")
    if auto and not 0 < precision < 1:
        raise ScenarioError("(command line)", "--precision", precision, "a relative half-width between 0 and 1")
    if auto and not 3 <= max_reps <= 100_000:
        raise ScenarioError("(command line)", "--max-reps", max_reps, "a whole number from 3 to 100000")
    if engine not in ENGINES:
        raise ScenarioError("(command line)", "--engine", engine, f"one of {', '.join(ENGINES)}")
    if engine == "fast" and log_events:
        raise ScenarioError("(command line)", "--engine", engine,
                            "no event log with the fast path (outcome-only: log_events=False, --no-events)")
    backend = backend or Backend("processes", jobs)
    check_memory(scenario, backend)
    if out is None:
        temporary = _TemporaryFolder(Path(tempfile.mkdtemp(prefix="csfsim-")))
        try:
            result = _run_in(temporary.path, scenario, reps, seed, backend, log_events, progress, command,
                             precision, max_reps, engine)
        except BaseException:
            temporary.remove()
            raise
        result._temporary = temporary  # its tables stay there until no result refers to the folder
        return result
    with RunFolder(out, "run", overwrite=overwrite, keep_on_error=True) as folder:
        work = folder.open(resume)
        if resume:
            _check_resume(work, scenario, seed, log_events)
        result = _run_in(work, scenario, reps, seed, backend, log_events, progress, command, precision, max_reps,
                         engine)
        folder.publish(result.manifest)
    result.out_dir = Path(out)
    return result


def _run_in(work: Path, scenario: Scenario, reps: int | str, seed: int, backend: Backend, log_events: bool,
            progress: bool | None, command: str | None, precision: float, max_reps: int,
            engine: str) -> RunResult:
    """Run the replications into `work` (a locked OUT.partial, or a temporary folder) and finalize them there."""
    started = time.time()
    auto = reps == "auto"
    parts = work / PARTS
    infos: list[dict[str, Any]] = []
    target = max_reps if auto else int(reps)
    stopping: dict[str, Any] | None = None
    crew: Crew | None = None
    concat: _Concatenation | None = None
    try:
        parts.mkdir(parents=True, exist_ok=True)
        outputs.write_json(work / "run.json", {"scenario_file": scenario.source_file, "seed": seed, "reps": reps,
                                               "log_events": log_events,
                                               "scenario": to_jsonable(scenario.resolved)})
        # The workers first: they are forked before this process starts a thread (the appends' below), so that
        # no lock a thread holds is copied into them.
        crew = _start_crew(backend, target)
        # With a fixed number of replications the tables are concatenated as replications finish; with --reps
        # auto the number kept is known only at the end, so they are concatenated then.
        if not auto:
            concat = _Concatenation(parts, work, target, log_events, background=crew is not None)
        bar = progress_bar(target, len(_done_reps(parts) & set(range(target))), scenario.name[:30], progress)

        def done(info: dict[str, Any]) -> None:
            infos.append(info)
            bar.update(1)
            if concat is not None:
                concat.add(info["replication"])

        try:
            if auto:
                n_final, stopping = _run_until_precise(scenario, seed, parts, backend, log_events, done, precision,
                                                       max_reps, engine, crew)
                bar.total = n_final
                bar.refresh()
            else:
                n_final = int(reps)
                run_replications(scenario, seed, range(n_final), parts, backend, log_events, done, engine, crew,
                                 concat.held if concat is not None else None)
        finally:
            bar.close()
        for extra in sorted(r for r in _done_reps(parts) if r >= n_final):  # look-ahead replications are not kept
            for f in parts.glob(f"*-{extra:05d}.*"):
                f.unlink()
        return _finalize(scenario, seed, n_final, work, backend, infos, started, command, log_events, stopping,
                         engine, crew, concat)
    except BaseException:
        if concat is not None:
            concat.abort()
        raise
    finally:
        if crew is not None:
            crew.shutdown()


def _primary_values(parts: Path, n: int) -> dict[str, np.ndarray]:
    frames = [pd.read_csv(parts / f"metrics-{r:05d}.csv") for r in range(n)]
    per_rep = pd.concat(frames, ignore_index=True)
    sel = per_rep[(per_rep["group"] == "all") & per_rep["metric"].isin(PRIMARY_METRICS)]
    return {m: g.sort_values("replication")["value"].to_numpy(dtype=float) for m, g in sel.groupby("metric")}


def _run_until_precise(scenario: Scenario, seed: int, parts: Path, backend: Backend, log_events: bool,
                       done: Callable[[dict[str, Any]], None], precision: float,
                       max_reps: int, engine: str = "auto",
                       crew: Crew | None = None) -> tuple[int, dict[str, Any]]:
    """Add replications in batches until `replications_needed` finds a solution or the cap is reached."""
    batch = max(backend.jobs if backend.kind != "serial" else 1, LOOK_AHEAD)
    n = 0
    while True:
        n = min(max_reps, max(n + batch, MIN_REPS + LOOK_AHEAD))
        run_replications(scenario, seed, range(n), parts, backend, log_events, done, engine, crew)
        values = _primary_values(parts, n)
        solution = replications_needed(values, precision)
        if solution is not None:
            return solution, {"rule": "auto", "precision": precision, "replications": solution, "cap_reached": False,
                              "relative_half_width": relative_half_widths(values, solution)}
        if n >= max_reps:
            widths = relative_half_widths(values, n)
            worst = max(widths, key=lambda m: widths[m] if np.isfinite(widths[m]) else np.inf)
            width = (f"{widths[worst]:.1%}" if np.isfinite(widths[worst])
                     else "not measurable: no patients, or a mean of zero")
            warnings.warn(f"--reps auto: cap of {max_reps} replications reached before every primary metric was "
                          f"within {precision:.0%} of its mean (worst: {worst}, {width})", stacklevel=2)
            return n, {"rule": "auto", "precision": precision, "replications": n, "cap_reached": True,
                       "relative_half_width": widths}


def _check_resume(work: Path, scenario: Scenario, seed: int, log_events: bool) -> None:
    info_file = work / "run.json"
    if not info_file.exists():
        return
    try:
        info = json.loads(info_file.read_text())
    except ValueError:
        raise ScenarioError(str(info_file), "run.json", "unreadable", "the record of an interrupted run (it is "
                            "damaged: rerun without --resume to start again)") from None
    current = json.loads(json.dumps(to_jsonable(scenario.resolved), default=str))
    if info.get("seed") != seed or info.get("scenario") != current:
        raise ScenarioError(str(info_file), "seed/scenario", info.get("seed"),
                            "the same scenario and seed as the interrupted run")
    if info.get("log_events", log_events) != log_events:
        was = "without --no-events" if info["log_events"] else "with --no-events"
        raise ScenarioError(str(info_file), "--no-events", not log_events,
                            f"the event-log setting of the interrupted run (resume it {was})")


def _write_km(outcome_files: list[Path], horizon_days: float, event: str, dest: Path) -> None:
    """km.csv rows of one event, to a piece that `_join_csv` puts after the other's (writing the CSV text is
    most of the time of km.csv, so each event is merged and written on its own worker)."""
    outputs.atomic_write_csv(dest, merged_km_table(outcome_files, horizon_days, (event,)))


def _join_csv(pieces: list[Path], dest: Path) -> None:
    """Concatenate CSV files with the same columns, keeping the first header: the bytes pandas would have
    written for the whole table, since each row is formatted on its own."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as out:
        for i, piece in enumerate(pieces):
            with open(piece, "rb") as f:
                if i:
                    f.readline()
                shutil.copyfileobj(f, out)
    os.replace(tmp, dest)


def _write_distributions(outcome_files: list[Path], per_rep: pd.DataFrame, dest: Path) -> None:
    outputs.atomic_write_csv(dest, merged_distribution_table(outcome_files, per_rep))


def _finalize(scenario: Scenario, seed: int, reps: int, work: Path, backend: Backend,
              infos: list[dict[str, Any]], started: float, command: str | None, log_events: bool,
              stopping: dict[str, Any] | None, engine: str = "auto", crew: Crew | None = None,
              concat: _Concatenation | None = None) -> RunResult:
    """Merge the parts into the run's tables. With worker processes, km.csv and distributions.csv are merged on
    the workers while this process finishes the concatenation and writes the other tables, then joins them."""
    parts = work / PARTS
    rep_ids = range(reps)
    per_rep = _from_infos(infos, "metrics", parts, rep_ids)
    has_patients = any(i["n_patients"] for i in infos if i["replication"] < reps) or \
        any(outputs.part_rows(parts / f"patients-{r:05d}") for r in rep_ids)
    tasks: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    if has_patients:
        # Merged from the workers' per-replication summaries: exact, and one quantity in memory at a time.
        outcome_files = [_outcomes_part(parts, r, scenario.horizon_days) for r in rep_ids]
        km_pieces = [parts / f"km-{event}.csv" for event in EVENTS]
        tasks = [(_write_km, (outcome_files, scenario.horizon_days, event, piece))
                 for event, piece in zip(EVENTS, km_pieces, strict=True)]
        tasks.append((_write_distributions, (outcome_files, per_rep, work / "distributions.csv")))
    if crew is not None:
        crew.start(tasks)
    if concat is None:  # --reps auto: concatenated now (run() aborts only a concatenation it made)
        own = _Concatenation(parts, work, reps, log_events)
        try:
            n_rows = own.finish()
        except BaseException:
            own.abort()
            raise
    else:
        n_rows = concat.finish()
    if log_events:
        series = pd.concat([pd.read_csv(parts / f"timeseries-{r:05d}.csv") for r in rep_ids], ignore_index=True)
        outputs.atomic_write_csv(work / "resource_timeseries.csv", series)
    resources = _from_infos(infos, "resources", parts, rep_ids)
    across = summarize(per_rep)
    outputs.atomic_write_csv(work / "summary.csv", summary_table(per_rep, across))
    if crew is None:
        for fn, args in tasks:
            fn(*args)
    else:
        try:
            crew.finish(lambda i: tasks[i][0](*tasks[i][1]), lambda i, result: None)
        except WorkerDied:
            raise _worker_died(parts) from None
        crew.release()  # the workers exit while this process writes the rest
    if has_patients:
        _join_csv(km_pieces, work / "km.csv")
    outputs.atomic_write_csv(work / "resources.csv", resources)
    wall = time.time() - started
    sim_seconds = sum(i["wall_seconds"] for i in infos)
    manifest = {
        "csfsim_run": True,
        "scenario_name": scenario.name,
        "scenario_description": scenario.description,
        "scenario_file": scenario.source_file,
        "seed": seed,
        "replications": reps,
        "replication_seeds": "numpy SeedSequence(seed, spawn_key=(replication, purpose, sub)) per stream",
        "backend": backend.describe(),
        "replication_rule": stopping or {"rule": "fixed", "replications": reps},
        # The engine(s) that ran this session's replications ("fast", "simpy", or "fast+simpy" if it varied).
        "engine": "+".join(sorted({i["engine"] for i in infos})) or None,
        "engine_requested": engine,
        "horizon_days": scenario.horizon_days,
        "warmup_days": scenario.warmup_days,
        "arrivals_until_days": scenario.arrivals_until_days,  # None: period mode
        "follow_up_days": scenario.follow_up_days,
        "counted_until_day": scenario.counted_until_day,  # the last onset day the patient statistics count
        "patients": n_rows,
        "patients_per_second_per_core": (sum(i["n_patients"] for i in infos) / sim_seconds) if sim_seconds else None,
        "wall_seconds": round(wall, 3),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        **outputs.provenance(command),
        "scenario": to_jsonable(scenario.resolved),
    }
    shutil.rmtree(parts, ignore_errors=True)
    (work / "run.json").unlink(missing_ok=True)
    return RunResult(scenario=scenario, seed=seed, reps=reps, per_replication=per_rep, summary=across,
                     resources=resources, manifest=manifest)


def _from_infos(infos: list[dict[str, Any]], kind: str, parts: Path, reps: range) -> pd.DataFrame:
    """A per-replication table (`metrics` or `resources`) of every replication, in order: those run in this
    session came with their info, those of an interrupted run are read from their parts."""
    given = {i["replication"]: i[kind] for i in infos if kind in i}
    return pd.concat([given[r] if r in given else pd.read_csv(parts / f"{kind}-{r:05d}.csv") for r in reps],
                     ignore_index=True)


def _outcomes_part(parts: Path, rep: int, horizon_days: float) -> Path:
    """A replication's outcome summary file; made from its patients part when missing (a run interrupted by an
    older csfsim version and resumed with this one)."""
    path = parts / f"outcomes-{rep:05d}.bin"
    if not path.exists():
        arrow = parts / f"patients-{rep:05d}.arrow"
        patients = pd.read_feather(arrow) if arrow.exists() else pd.read_parquet(arrow.with_suffix(".parquet"))
        write_outcomes(path, replication_outcomes(patients, horizon_days))
    return path


def read_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a finished run folder (raises ScenarioError if it is not one)."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise ScenarioError(str(folder), "manifest.json", None, "a finished csfsim run folder")
    return json.loads(path.read_text())


def patients_rows(folder: Path) -> int:
    return pq.ParquetFile(folder / "patients.parquet").metadata.num_rows
