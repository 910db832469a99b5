"""Dask clusters that fail: a bad scheduler address, a scheduler killed mid-run, every worker gone. Each stops the
run in one line (exit 2 for bad input, 3 for a lost cluster) with its finished replications kept for --resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.runs import backends
from sim.runs.backends import Backend
from tests.helpers import LOW_VOLUME, ROOT

DASK = Path(sys.executable).with_name("dask")


def test_a_scheduler_address_that_is_not_one_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(LOW_VOLUME), "--scheduler", "foo", "--reps", "1",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--scheduler" in proc.stderr and "tcp://HOST:8786" in proc.stderr
    assert not out.exists() and not (tmp_path / "run.partial").exists()
    with pytest.raises(ScenarioError):
        Backend("dask", 1, "tcp://nohost")


def test_a_cluster_with_no_worker_stops_waiting(monkeypatch):
    """With every worker killed, a scheduler keeps the tasks for a worker that never comes: the run stops once
    the cluster has had none for DASK_NO_WORKER_SECONDS."""

    class NoWorkers:
        def scheduler_info(self):
            return {"workers": {}}

    def never_done(pending, timeout, return_when):
        time.sleep(0.01)
        raise TimeoutError

    monkeypatch.setattr(backends, "DASK_NO_WORKER_SECONDS", 0.05)
    with pytest.raises(TimeoutError, match="no worker left"):
        list(backends.dask_results(NoWorkers(), ["a future"], never_done))


@pytest.mark.skipif(not DASK.exists(), reason="the dask command is not installed")
def test_a_scheduler_killed_mid_run_stops_the_run_in_one_line_and_resume_finishes_it(tmp_path):
    env = dict(os.environ)
    address_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(address_file)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=env)
    worker = None
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not address_file.exists():
            time.sleep(0.1)
        time.sleep(0.5)
        worker = subprocess.Popen([str(DASK), "worker", "--scheduler-file", str(address_file), "--nthreads", "1",
                                   "--no-nanny", "--no-dashboard", "--local-directory", str(tmp_path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
        address = json.loads(address_file.read_text())["address"]
        out = tmp_path / "run"
        run = subprocess.Popen([sys.executable, "-m", "sim", "run", str(LOW_VOLUME), "--scheduler", address,
                                "--reps", "400", "--seed", "4", "--out", str(out), "--quiet", "--no-events",
                                "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env=env)
        parts = tmp_path / "run.partial" / "parts"
        deadline = time.time() + 90
        while time.time() < deadline and len(list(parts.glob("metrics-*.csv"))) < 3:
            time.sleep(0.1)
        scheduler.send_signal(signal.SIGKILL)
        _, stderr = run.communicate(timeout=120)
        if run.returncode == 0:
            pytest.skip("the run finished before the scheduler could be killed")
        assert run.returncode == 3, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "Dask cluster was lost" in lines[0] and "--resume" in lines[0], stderr
        assert list(parts.glob("metrics-*.csv"))
        resumed = subprocess.run([sys.executable, "-m", "sim", "run", str(LOW_VOLUME), "--reps", "4", "--seed", "4",
                                  "--out", str(out), "--quiet", "--no-events", "--no-report", "--resume",
                                  "--jobs", "1"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
    finally:
        for proc in (worker, scheduler):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp_path / "dask-scratch-space", ignore_errors=True)


def _fails(i: int) -> int:
    if i == 1:
        raise OSError("No space left on device")
    return i


def test_a_failing_task_or_callback_on_dask_raises_its_own_error_not_a_lost_cluster():
    """An OSError of a task (or of writing its result here, e.g. a full disk) used to read as "the Dask cluster
    was lost": it is raised as itself; the results of the other tasks come back in order."""
    backend = Backend("dask", 1)
    assert backend.map(_fails, [(0,), (2,)]) == [0, 2]
    with pytest.raises(OSError, match="No space left"):
        backend.map(_fails, [(0,), (1,)])

    def full_disk(i: int, result: int) -> None:
        raise OSError("No space left on device (writing a part)")

    with pytest.raises(OSError, match="writing a part"):
        backend.map(_fails, [(0,)], full_disk)
