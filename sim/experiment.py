"""Many replications of a scenario: in-process or on worker processes, written per replication, resumable.

Replication r of a run depends only on (scenario, root seed, r), never on which worker ran it or when, so the
tables are identical bit for bit for any number of jobs. Each finished replication is written atomically to a
`parts/` folder inside `OUT.partial/`; the run is finalized (tables concatenated on disk, manifest written) and
the folder renamed to OUT only when every replication is there. `resume=True` picks up an interrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from sim import outputs
from sim.errors import ScenarioError
from sim.fastpath import ENGINES
from sim.parameters import Scenario
from sim.replication import run_replication
from sim.scenario import load_scenario, to_jsonable
from sim.stats import replication_metrics, summarize, summary_table
from sim.survival import km_table

PARTS = "parts"


@dataclass
class RunResult:
    """A finished run: tables as pandas DataFrames, plus where they were written."""

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

    @property
    def patients(self) -> pd.DataFrame:
        """The patient-level table (read from disk on first use when the run was written to a folder)."""
        if self._patients is None and self.out_dir is not None:
            self._patients = pd.read_parquet(self.out_dir / "patients.parquet")
        return self._patients if self._patients is not None else pd.DataFrame()

    @property
    def resource_uses(self) -> pd.DataFrame:
        """Every completed resource use (request, start and end day); empty when run with log_events=False."""
        if self.out_dir is not None and (self.out_dir / "resource_uses.parquet").exists():
            return pd.read_parquet(self.out_dir / "resource_uses.parquet")
        return self._uses if self._uses is not None else pd.DataFrame()

    @property
    def events(self) -> pd.DataFrame:
        if self._events is None and self.out_dir is not None and (self.out_dir / "events.parquet").exists():
            self._events = pd.read_parquet(self.out_dir / "events.parquet")
        return self._events if self._events is not None else pd.DataFrame()

    def metric(self, metric: str, group: str = "all") -> pd.Series:
        """One summary row (mean, sd, ci95_low, ci95_high, n_replications) by metric name and group."""
        s = self.summary
        row = s[(s["metric"] == metric) & (s["group"] == group)]
        if row.empty:
            raise KeyError(f"{metric} / {group}")
        return row.iloc[0]


def _task(scenario: Scenario, seed: int, rep: int, log_events: bool, parts: str,
          engine: str = "auto") -> dict[str, Any]:
    """Run one replication and write its parts atomically; the metrics file is written last (done marker)."""
    result = run_replication(scenario, seed, rep, log_events=log_events, engine=engine)
    folder = Path(parts)
    outputs.atomic_write_parquet(folder / f"patients-{rep:05d}.parquet", result.patients)
    if result.events is not None and result.resource_uses is not None:
        outputs.atomic_write_parquet(folder / f"events-{rep:05d}.parquet", result.events)
        outputs.atomic_write_parquet(folder / f"uses-{rep:05d}.parquet", result.resource_uses)
    outputs.atomic_write_csv(folder / f"resources-{rep:05d}.csv", result.resources)
    metrics = replication_metrics(result.patients, result.resources, scenario.horizon_days)
    outputs.atomic_write_csv(folder / f"metrics-{rep:05d}.csv", metrics)
    return {"replication": rep, "n_patients": len(result.patients), "n_simpy_events": result.n_simpy_events,
            "wall_seconds": result.wall_seconds, "engine": result.engine}


def _done_reps(parts: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in parts.glob("metrics-*.csv")}


def default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


def run_replications(scenario: Scenario, seed: int, reps: Sequence[int], parts: Path, jobs: int,
                     log_events: bool, on_done: Callable[[dict[str, Any]], None] | None = None,
                     engine: str = "auto") -> None:
    """Run the given replications (skipping those already in `parts`), serially or on `jobs` processes."""
    todo = sorted(set(reps) - _done_reps(parts))
    if not todo:
        return
    if jobs <= 1 or len(todo) == 1:
        for rep in todo:
            info = _task(scenario, seed, rep, log_events, str(parts), engine)
            if on_done:
                on_done(info)
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
        pending: set[Future] = {pool.submit(_task, scenario, seed, rep, log_events, str(parts), engine)
                                for rep in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                info = fut.result()
                if on_done:
                    on_done(info)


def _progress(total: int, initial: int, label: str, enabled: bool | None):
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, initial=initial, desc=label, unit="rep", disable=not show, leave=False)


def run(scenario: Scenario | str | os.PathLike[str], reps: int = 10, seed: int = 1, jobs: int = 1,
        out: str | os.PathLike[str] | None = None, log_events: bool = True, resume: bool = False,
        progress: bool | None = None, command: str | None = None, engine: str = "auto") -> RunResult:
    """Run `reps` replications of a scenario. With `out`, writes the run folder; without, keeps it in memory.
    `engine`: "auto" (the fast path for replications where nothing can queue and no event log is wanted, else
    SimPy), "simpy", or "fast" (an error where it does not apply). The engines used go in the manifest."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ScenarioError("(command line)", "--reps", reps, "a whole number of replications >= 1")
    if reps > 100_000:
        raise ScenarioError("(command line)", "--reps", reps, "at most 100000 replications")
    if engine not in ENGINES:
        raise ScenarioError("(command line)", "--engine", engine, f"one of {', '.join(ENGINES)}")
    if engine == "fast" and log_events:
        raise ScenarioError("(command line)", "--engine", engine,
                            "no event log with the fast path (outcome-only: log_events=False, --no-events)")
    started = time.time()
    keep = out is not None
    if keep:
        out_path = Path(out)  # type: ignore[arg-type]
        outputs.prepare_output_dir(out_path)
        work = out_path.with_name(out_path.name + ".partial")
        if resume:
            _check_resume(work, scenario, seed, reps)
        elif work.exists():
            shutil.rmtree(work)
    else:
        work = Path(tempfile.mkdtemp(prefix="csfsim-"))
    parts = work / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    outputs.write_json(work / "run.json", {"scenario_file": scenario.source_file, "seed": seed, "reps": reps,
                                           "scenario": to_jsonable(scenario.resolved)})
    infos: list[dict[str, Any]] = []
    already = len(_done_reps(parts) & set(range(reps)))
    bar = _progress(reps, already, scenario.name[:30], progress)
    try:
        def done(info: dict[str, Any]) -> None:
            infos.append(info)
            bar.update(1)

        run_replications(scenario, seed, range(reps), parts, jobs, log_events, done, engine)
    finally:
        bar.close()
    result = _finalize(scenario, seed, reps, work, jobs, infos, started, command, log_events, engine)
    if keep:
        outputs.publish_dir(work, out_path)
        result.out_dir = out_path
    else:
        result._patients = pd.read_parquet(work / "patients.parquet")
        if (work / "events.parquet").exists():
            result._events = pd.read_parquet(work / "events.parquet")
            result._uses = pd.read_parquet(work / "resource_uses.parquet")
        shutil.rmtree(work, ignore_errors=True)
    return result


def _check_resume(work: Path, scenario: Scenario, seed: int, reps: int) -> None:
    info_file = work / "run.json"
    if not info_file.exists():
        return
    info = json.loads(info_file.read_text())
    if info.get("seed") != seed or info.get("scenario") != to_jsonable(scenario.resolved):
        raise ScenarioError(str(info_file), "seed/scenario", info.get("seed"),
                            "the same scenario and seed as the interrupted run")


def _finalize(scenario: Scenario, seed: int, reps: int, work: Path, jobs: int, infos: list[dict[str, Any]],
              started: float, command: str | None, log_events: bool, engine: str = "auto") -> RunResult:
    parts = work / PARTS
    rep_ids = range(reps)
    n_rows = outputs.concat_parquet((parts / f"patients-{r:05d}.parquet" for r in rep_ids),
                                    work / "patients.parquet")
    if log_events:
        outputs.concat_parquet((parts / f"events-{r:05d}.parquet" for r in rep_ids), work / "events.parquet")
        outputs.concat_parquet((parts / f"uses-{r:05d}.parquet" for r in rep_ids), work / "resource_uses.parquet")
    per_rep = pd.concat([pd.read_csv(parts / f"metrics-{r:05d}.csv") for r in rep_ids], ignore_index=True)
    resources = pd.concat([pd.read_csv(parts / f"resources-{r:05d}.csv") for r in rep_ids], ignore_index=True)
    outputs.atomic_write_csv(work / "summary.csv", summary_table(per_rep))
    km_columns = ["onset_day", "presented_day", "diagnosed_day", "resolved_day", "center", "etiology", "in_warmup"]
    if n_rows:
        outcome_times = pd.read_parquet(work / "patients.parquet", columns=km_columns)
        outputs.atomic_write_csv(work / "km.csv", km_table(outcome_times, scenario.horizon_days))
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
        "jobs": jobs,
        # The engine(s) that ran this session's replications ("fast", "simpy", or "fast+simpy" if it varied).
        "engine": "+".join(sorted({i["engine"] for i in infos})) or None,
        "engine_requested": engine,
        "horizon_days": scenario.horizon_days,
        "warmup_days": scenario.warmup_days,
        "patients": n_rows,
        "patients_per_second_per_core": (sum(i["n_patients"] for i in infos) / sim_seconds) if sim_seconds else None,
        "wall_seconds": round(wall, 3),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "command": command or outputs.command_line(),
        "git_commit": outputs.git_commit(),
        "versions": outputs.versions(),
        "files": sorted(p.name for p in work.iterdir() if p.is_file() and not p.name.startswith(".")),
        "scenario": to_jsonable(scenario.resolved),
    }
    outputs.write_json(work / "manifest.json", manifest)
    shutil.rmtree(parts, ignore_errors=True)
    (work / "run.json").unlink(missing_ok=True)
    return RunResult(scenario=scenario, seed=seed, reps=reps, per_replication=per_rep, summary=summarize(per_rep),
                     resources=resources, manifest=manifest)


def read_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a finished run folder (raises ScenarioError if it is not one)."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise ScenarioError(str(folder), "manifest.json", None, "a finished csfsim run folder")
    return json.loads(path.read_text())


def patients_rows(folder: Path) -> int:
    return pq.ParquetFile(folder / "patients.parquet").metadata.num_rows
