"""Runs started from the web app: each in a process of its own (`python -m sim.app.jobs REQUEST`), so that the
page stays responsive, writing an ordinary run folder that the page reads when it is done.

A job's folder is named by what it runs (the scenario files' text, the options, csfsim's code), so the same
scenario, seed and replications run once: a second request finds the folder and shows it (the cache). Progress
is read from the files the run writes as it goes (finished replications, combinations or samples).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.config.scenario import read_scenario_raw
from sim.config.schema import REPO_ROOT
from sim.io import toml_document
from sim.io.outputs import atomic_write_text, write_json

APP_HOME_VARIABLE = "CSFSIM_APP_HOME"
KINDS = ("compare", "sweep", "psa")
# Patients simulated a second by each kind of job, until this machine has timed its own (speed.json in the app's
# folder): measured on the project's 2-core machine, the two default scenarios at 2 replications (compare: the
# SimPy engine with the event log; sweep and PSA: the fast path, no event log).
DEFAULT_PATIENTS_PER_SECOND = {"compare": 1300.0, "sweep": 3000.0, "psa": 3000.0}
_RUNNING: dict[Path, subprocess.Popen[bytes]] = {}  # this server's jobs, shared by its browser sessions
_STARTING = threading.Lock()


def app_home() -> Path:
    """Where the app keeps its drafts and runs: $CSFSIM_APP_HOME, else results/app of the working folder."""
    return Path(os.environ.get(APP_HOME_VARIABLE) or Path("results") / "app").absolute()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of csfsim's code and schema: a run made by other code is not taken from the cache."""
    digest = hashlib.sha256()
    for path in [*sorted((REPO_ROOT / "sim").rglob("*.py")), REPO_ROOT / "scenarios" / "base.toml"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """One requested run: its kind, its inputs (`files`, `options`) and the folder its results go to."""

    kind: str
    files: tuple[str, ...]
    options: tuple[tuple[str, Any], ...]
    total: int  # units of progress: replications (compare), combinations (sweep) or samples (psa)
    patients: float  # patients it simulates in all, expected: its run-time estimate

    @property
    def expected_seconds(self) -> float:
        return self.patients / patients_per_second(self.kind)

    @property
    def key(self) -> str:
        """What the run depends on: each scenario as it resolves (the files it extends merged in), the options,
        csfsim's code."""
        texts = [toml_document.dumps(read_scenario_raw(f)) for f in self.files]
        request = json.dumps([self.kind, texts, list(self.options), code_fingerprint()], default=str)
        return hashlib.sha256(request.encode("utf-8")).hexdigest()[:20]

    @property
    def folder(self) -> Path:
        return app_home() / "runs" / f"{self.kind}-{self.key}"

    @property
    def error_file(self) -> Path:
        return self.folder.with_name(self.folder.name + ".error")

    def done(self) -> bool:
        """Finished: published, and its report written (the last file every kind of job writes)."""
        return (self.folder / "manifest.json").exists() and (self.folder / "report.html").exists()

    def error(self) -> str | None:
        try:
            return self.error_file.read_text(encoding="utf-8").strip() or "the run stopped"
        except FileNotFoundError:
            return None

    @property
    def pid_file(self) -> Path:
        return self.folder.with_name(self.folder.name + ".pid")

    def running(self) -> bool:
        """Its process is alive: one this server started, or one an earlier server left (its pid file)."""
        process = _RUNNING.get(self.folder)
        if process is not None:
            return process.poll() is None
        return _job_process(self.pid_file) is not None

    def progress(self) -> float:
        """The share of the work done, from the files the run has written so far."""
        if self.done():
            return 1.0
        work = self.folder.with_name(self.folder.name + ".partial")
        if self.kind == "compare":
            reps = dict(self.options)["reps"]
            count = reps * len(list(work.glob("*/manifest.json"))) + len(list(work.glob("*.partial/parts/metrics-*")))
        elif self.kind == "sweep":
            count = len(list(work.glob("combinations/combination-*")))
        else:
            count = len(list(work.glob("samples/sample-*")))
        return min(count / max(self.total, 1), 1.0)


def _job_process(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process is alive and is a job of this app (not a reused pid)."""
    try:
        pid = int(pid_file.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"sim.app.jobs" in command else None


def start(job: Job) -> None:
    """Start the job in a process of its own unless it is done or already running (two sessions asking at once
    start it once)."""
    with _STARTING:
        if job.done() or job.running():
            return
        job.error_file.unlink(missing_ok=True)
        request = job.folder.with_name(job.folder.name + ".request.json")
        request.parent.mkdir(parents=True, exist_ok=True)
        write_json(request, {"kind": job.kind, "files": list(job.files), "options": dict(job.options),
                             "folder": str(job.folder), "patients": job.patients})
        log = open(job.folder.with_name(job.folder.name + ".log"), "wb")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen([sys.executable, "-m", "sim.app.jobs", str(request)], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True,
                                   env={**os.environ, APP_HOME_VARIABLE: str(app_home())})
        log.close()
        _RUNNING[job.folder] = process
        atomic_write_text(job.pid_file, f"{process.pid}\n")


def stop(job: Job) -> None:
    """Stop the job's process and its workers (its process group): SIGTERM, then SIGKILL after 30 s."""
    process = _RUNNING.pop(job.folder, None)
    pid = process.pid if process is not None and process.poll() is None else _job_process(job.pid_file)
    if pid is None:
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid, process) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid, process):
        _signal_group(pid, signal.SIGKILL)
    if process is not None:
        process.wait()
    atomic_write_text(job.error_file, "stopped by the user\n")


def _alive(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None:
        return process.poll() is None
    return Path(f"/proc/{pid}").exists()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the job leads its own session and group (start_new_session)


@atexit.register
def _stop_all() -> None:
    """When the app's server stops (Ctrl-C), its jobs stop with it."""
    for process in list(_RUNNING.values()):
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)


def _speeds() -> dict[str, float]:
    try:
        data = json.loads((app_home() / "speed.json").read_text())
        return {k: float(v) for k, v in data.items() if k in KINDS}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def measured(kind: str) -> bool:
    """Whether this machine has timed a job of this kind (else estimates use the default speed)."""
    return kind in _speeds()


def patients_per_second(kind: str) -> float:
    """This machine's speed for a kind of job in the app's last such run (patients a second), or the default."""
    return _speeds().get(kind, DEFAULT_PATIENTS_PER_SECOND[kind])


def _record_speed(kind: str, patients: float, seconds: float) -> None:
    if patients > 0 and seconds > 1.0:
        app_home().mkdir(parents=True, exist_ok=True)
        write_json(app_home() / "speed.json", {**_speeds(), kind: patients / seconds})


def _execute(kind: str, files: list[str], options: dict[str, Any], folder: Path) -> None:
    """Run the request with the command line's own functions (the app adds no model logic), then its report."""
    from sim.report.html import build_report

    if kind == "compare":
        from sim.runs.compare import compare

        compare(files, out=folder, overwrite=True, progress=False, measure_crn=False, command="csfsim app",
                **options)
    elif kind == "sweep":
        from sim.runs.sweep import sweep

        settings = [(path, values) for path, values in options.pop("settings")]
        sweep(files[0], settings, out=folder, overwrite=True, progress=False, command="csfsim app", **options)
    else:
        from sim.runs.psa import psa

        psa(files, out=folder, overwrite=True, command="csfsim app", **options)
    build_report(folder)


def main(request_file: str) -> int:
    """The job process: run the request, and on failure leave its one-line reason beside the folder."""
    from sim.errors import RunInterrupted, ScenarioError

    request = json.loads(Path(request_file).read_text(encoding="utf-8"))
    folder = Path(request["folder"])
    folder.parent.mkdir(parents=True, exist_ok=True)
    error = folder.with_name(folder.name + ".error")
    started = time.monotonic()
    try:
        _execute(request["kind"], request["files"], request["options"], folder)
    except (ScenarioError, RunInterrupted) as err:
        atomic_write_text(error, f"{err}\n")
        return 2
    except BaseException as err:
        atomic_write_text(error, f"the run failed: {type(err).__name__}: {err}\n")
        raise
    _record_speed(request["kind"], float(request.get("patients", 0.0)), time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
