"""Replications, common random numbers, automatic replication counts, backends and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sim.analysis.stats import relative_half_widths, replications_needed
from sim.config.scenario import load_scenario
from sim.config.schema import to_jsonable
from sim.runs.backends import Backend
from sim.runs.compare import compare
from sim.runs.experiment import run, run_replications
from tests.helpers import EXPERIENCED, LOW_VOLUME, PERIOD, ROOT, group_outlives

SMALL = {**PERIOD, "run.horizon_days": 730}


def small(path):
    return load_scenario(path, overrides=SMALL)


def test_paired_difference_of_a_scenario_with_itself_is_exactly_zero():
    s = small(LOW_VOLUME)
    result = compare([s, s], reps=3, seed=5, log_events=False, progress=False)
    diffs = result.comparison[result.comparison["scenario_index"] == 1]
    assert (diffs["diff_vs_first"].dropna() == 0).all()
    assert (diffs["diff_ci95_low"].dropna() == 0).all() and (diffs["diff_ci95_high"].dropna() == 0).all()


def test_a_comparison_refuses_scenarios_that_follow_patients_over_different_periods():
    """Paired differences need the same patients over the same period: a different horizon, warm-up, follow-up
    window or cohort end is a clear error naming the field, before anything runs."""
    from sim.errors import ScenarioError

    for field, value in (("run.horizon_days", 1000), ("run.warmup_days", 30), ("run.follow_up_days", 90),
                         ("run.arrivals_until_days", 365)):
        other = load_scenario(LOW_VOLUME, overrides={**SMALL, field: value})
        with pytest.raises(ScenarioError) as caught:
            compare([small(EXPERIENCED), other], reps=2, seed=1, progress=False)
        assert field in str(caught.value) and "same period" in str(caught.value)


def test_crn_measurement_reports_variance_reduction():
    result = compare([small(EXPERIENCED), small(LOW_VOLUME)], reps=6, seed=2, log_events=False, progress=False)
    # Differences of shares also in percentage points; other metrics have none.
    c = result.comparison[result.comparison["scenario_index"] == 1].set_index(["metric", "group"])
    share = c.loc[("share_persistent", "all")]
    assert np.isfinite(share["diff_vs_first"]) and share["diff_pp"] == pytest.approx(100 * share["diff_vs_first"])
    assert share["diff_pp_ci95_low"] == pytest.approx(100 * share["diff_ci95_low"])
    assert share["diff_pp_ci95_high"] == pytest.approx(100 * share["diff_ci95_high"])
    assert np.isnan(c.loc[("symptom_days_mean", "all"), "diff_pp"])
    crn = result.crn
    assert crn is not None and len(crn) > 20
    # the population is common: counts of patients do not differ at all under CRN, but do independently
    n = crn[(crn["metric"] == "n_patients") & (crn["group"] == "all")].iloc[0]
    assert n["var_paired_common"] == 0 and n["var_paired_independent"] > 0
    assert np.isfinite(result.crn_factor) and result.crn_factor > 0


def test_stopping_rule_on_known_variance():
    rng = np.random.default_rng(3)
    mean, sd, precision = 100.0, 20.0, 0.05
    values = {"m": rng.normal(mean, sd, 400)}
    n = replications_needed(values, precision)
    expected = (1.96 * sd / (precision * mean)) ** 2  # about 61
    assert n is not None and 0.6 * expected <= n <= 1.5 * expected
    # at the solution, the criterion holds for the look-ahead window
    assert relative_half_widths(values, n)["m"] <= precision
    # constant metrics stop at the minimum; too few values cannot settle it
    assert replications_needed({"m": np.full(20, 3.0)}, precision) == 3
    assert replications_needed({"m": rng.normal(mean, sd, 10)}, precision) is None


def test_auto_replications_stop_and_equal_a_fixed_run():
    s = small(EXPERIENCED)
    auto = run(s, reps="auto", precision=0.2, seed=4, log_events=False, progress=False)
    rule = auto.manifest["replication_rule"]
    assert rule["rule"] == "auto" and not rule["cap_reached"] and auto.reps == rule["replications"] >= 3
    fixed = run(s, reps=auto.reps, seed=4, log_events=False, progress=False)
    pd.testing.assert_frame_equal(auto.patients, fixed.patients)


def test_auto_replications_cap_is_reported():
    with pytest.warns(UserWarning, match="cap of 8 replications"):
        r = run(small(LOW_VOLUME), reps="auto", precision=0.001, max_reps=8, seed=1, log_events=False,
                progress=False)
    assert r.reps == 8 and r.manifest["replication_rule"]["cap_reached"]


def test_dask_backend_gives_identical_tables(tmp_path):
    pytest.importorskip("distributed")
    s = small(LOW_VOLUME)
    run(s, reps=3, seed=9, out=tmp_path / "serial", backend=Backend("serial"), progress=False)
    dask = run(s, reps=3, seed=9, out=tmp_path / "dask", backend=Backend("dask", jobs=2), progress=False)
    for name in ("patients.parquet", "events.parquet", "resource_uses.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "serial" / name),
                                      pd.read_parquet(tmp_path / "dask" / name))
    for name in ("summary.csv", "km.csv", "distributions.csv", "resources.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "serial" / name), pd.read_csv(tmp_path / "dask" / name))
    assert "dask" in dask.manifest["backend"]


def test_resume_after_kill_equals_a_clean_run(tmp_path):
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "sim", "run", str(LOW_VOLUME), "--reps", "16", "--seed", "6", "--jobs", "1",
            "--quiet", "--out", str(out)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out.with_name("killed.partial") / "parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("metrics-*.csv"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("metrics-*.csv")))
    assert 3 <= done_before < 16, "the run was not interrupted midway"
    assert not out.exists()  # nothing half-written where results are expected
    resumed = subprocess.run([*proc.args, "--resume"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    clean = tmp_path / "clean"
    subprocess.run([*args[:-1], str(clean)], cwd=ROOT, check=True, capture_output=True)
    for name in ("patients.parquet", "events.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(clean / name))
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), pd.read_csv(clean / "summary.csv"))


def test_run_folder_has_distributions_and_km(tmp_path):
    r = run(small(EXPERIENCED), reps=2, seed=1, out=tmp_path / "r", progress=False)
    dist = pd.read_csv(tmp_path / "r" / "distributions.csv")
    row = dist[(dist["across"] == "patients") & (dist["quantity"] == "diagnosis_delay_days")
               & (dist["group"] == "all")].iloc[0]
    assert row["p5"] <= row["p50"] <= row["p95"]
    km = pd.read_csv(tmp_path / "r" / "km.csv")
    assert set(km["event"]) == {"diagnosis", "resolution"}
    assert {"center", "etiology", "all"} <= set(km["group_by"])
    assert r.manifest["replication_rule"] == {"rule": "fixed", "replications": 2}


def _run_with_workers(args: list[str], out: Path, parts_done: int,
                      **popen: Any) -> tuple[subprocess.Popen, list[str]]:
    """Start `csfsim run ARGS --jobs 2 --out OUT`, wait until `parts_done` replications are written, and return
    the process with its worker processes' ids."""
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", *args, "--jobs", "2", "--quiet", "--no-report",
                             "--out", str(out)], cwd=ROOT, **popen)
    parts = out.with_name(f"{out.name}.partial") / "parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("metrics-*.csv"))) < parts_done:
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert workers, "no worker process found"
    return proc, workers


def test_killed_worker_stops_the_run_cleanly_and_resume_finishes_it(tmp_path):
    out = tmp_path / "run"
    proc, workers = _run_with_workers([str(LOW_VOLUME), "--reps", "24", "--seed", "2"], out, 2,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.kill(int(workers[0]), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the worker could be killed")
    assert proc.returncode == 3, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "worker process died" in lines[0] and "Traceback" not in stderr
    assert not out.exists()
    resumed = subprocess.run([*proc.args, "--resume"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    clean = run(load_scenario(LOW_VOLUME), reps=24, seed=2, log_events=True, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "patients.parquet"), clean.patients)


def test_disk_full_is_one_clear_line(tmp_path, monkeypatch, capsys):
    import errno

    from sim.cli import main
    from sim.io import outputs

    def full(path, df, table=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(outputs, "atomic_write_arrow", full)  # the per-replication parts
    code = main(["run", str(EXPERIENCED), "--reps", "1", "--jobs", "1", "--quiet", "--no-report",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "No space left on device" in err[0]
    assert not (tmp_path / "r").exists()


def test_disk_full_while_appending_on_the_thread_stops_a_run_with_workers(tmp_path, monkeypatch, capsys):
    """With workers, this process appends the Parquet tables on a thread: an error there stops the run with
    its one clear line, and nothing half-written is left (in the run folder or in its .partial)."""
    import errno

    from sim.cli import main
    from sim.io import outputs

    def full(self, part, table=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.tmp))

    monkeypatch.setattr(outputs.ParquetConcat, "add", full)
    code = main(["run", str(EXPERIENCED), "--reps", "4", "--jobs", "2", "--quiet", "--no-report",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "No space left on device" in err[0]
    assert not (tmp_path / "r").exists()
    assert not list(tmp_path.glob("r.partial/*.parquet")) and not list(tmp_path.glob("r.partial/parts/.concat-*"))


def _interrupted_run(partial: Path, s, seed: int, reps: int, done: int, log_events: bool) -> Path:
    """The folder a run of `reps` replications leaves when interrupted after `done` of them; its parts folder."""
    parts = partial / "parts"
    parts.mkdir(parents=True)
    (partial / "run.json").write_text(json.dumps(
        {"seed": seed, "reps": reps, "scenario": to_jsonable(s.resolved)}, default=str))
    run_replications(s, seed, range(done), parts, Backend("serial"), log_events=log_events)
    return parts


def test_resume_of_parts_without_outcome_summaries_gives_the_same_tables(tmp_path):
    """A run interrupted by a csfsim that wrote no outcomes-*.bin parts still finalizes to the same tables."""
    s = small(LOW_VOLUME)
    clean = run(s, reps=2, seed=4, out=tmp_path / "clean", log_events=False, progress=False)
    parts = _interrupted_run(tmp_path / "old.partial", s, seed=4, reps=2, done=2, log_events=False)
    for f in parts.glob("outcomes-*.bin"):
        f.unlink()
    run(s, reps=2, seed=4, out=tmp_path / "old", log_events=False, progress=False, resume=True)
    for name in ("km.csv", "distributions.csv", "summary.csv"):
        assert (tmp_path / "old" / name).read_bytes() == (clean.out_dir / name).read_bytes()


def test_this_process_working_with_the_workers_gives_the_tables_of_a_serial_run(tmp_path):
    """--jobs 2 and 3 run replications (and the km/distributions merges) both in this process and on workers,
    each taking the next one when free: every file is the bytes of a serial run's, whoever ran what."""
    s = small(LOW_VOLUME)
    run(s, reps=5, seed=3, out=tmp_path / "serial", backend=Backend("serial"), log_events=False, progress=False)
    for jobs in (2, 3):
        r = run(s, reps=5, seed=3, jobs=jobs, out=tmp_path / f"jobs{jobs}", log_events=False, progress=False)
        assert r.manifest["backend"] == f"{jobs} worker processes"
        for name in ("patients.parquet", "summary.csv", "km.csv", "distributions.csv", "resources.csv"):
            assert (tmp_path / f"jobs{jobs}" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes(), name


def test_an_error_on_a_worker_stops_the_run_with_that_error(tmp_path):
    """A task that fails on a worker (here: every replication fails) raises its own error in this process, and
    the workers are told to stop taking tasks."""
    from sim.runs.crew import Crew

    crew = Crew(1)
    try:
        crew.start([(_fail, (i,)) for i in range(4)])
        with pytest.raises(ValueError, match="task"):
            crew.finish(lambda i: time.sleep(0.2), lambda i, result: None)
        assert crew.claimed.value == 4
    finally:
        crew.shutdown()


def _fail(i: int) -> None:
    raise ValueError(f"task {i} failed")


def test_resume_of_parquet_parts_of_an_older_csfsim_gives_the_same_tables(tmp_path):
    """Parts are Arrow files now; a run interrupted by a csfsim that wrote Parquet parts (and no outcome
    summaries) still resumes to the same tables."""
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    s = small(LOW_VOLUME)
    clean = run(s, reps=3, seed=4, out=tmp_path / "clean", progress=False)
    parts = _interrupted_run(tmp_path / "old.partial", s, seed=4, reps=3, done=2, log_events=True)
    for f in parts.glob("*.arrow"):
        pq.write_table(feather.read_table(f), f.with_suffix(".parquet"))
        f.unlink()
    for f in parts.glob("outcomes-*.bin"):
        f.unlink()
    run(s, reps=3, seed=4, out=tmp_path / "old", progress=False, resume=True, jobs=2)
    for name in ("patients.parquet", "events.parquet", "resource_uses.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "old" / name), pd.read_parquet(clean.out_dir / name))
    for name in ("km.csv", "distributions.csv", "summary.csv", "resources.csv", "resource_timeseries.csv"):
        assert (tmp_path / "old" / name).read_bytes() == (clean.out_dir / name).read_bytes(), name


_CREW_SCRIPT = """
import sys, time
from sim.runs.crew import Crew
from tests.helpers import big_result as _big_result

def here(i):
    time.sleep(2)
    if sys.argv[1] == "raise":
        raise ValueError("failed in this process")
    return "here", time.time()

crew = Crew(1)
ends = {}
try:
    crew.start([(_big_result, (i,)) for i in range(3)])
    crew.finish(here, lambda i, result: ends.setdefault(result[0] == "here", []).append(result[1]))
except ValueError as err:
    print("error:", err)
finally:
    crew.shutdown()
print("ends", ends[True][0] - max(ends[False]) if len(ends) == 2 else None)
"""


@pytest.mark.parametrize("mode", ["raise", "ok"])
def test_results_larger_than_a_pipe_neither_stall_the_workers_nor_hang_the_shutdown(mode):
    """A worker's result larger than the pipe's buffer must not wait for this process to finish its own task
    (the worker goes on with the next one), and when this process's task fails meanwhile, shutting the crew down
    must not hang on the worker still sending its result."""
    proc = subprocess.Popen([sys.executable, "-c", _CREW_SCRIPT, mode], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the crew hung")
    assert proc.returncode == 0, err
    if mode == "raise":
        assert "error: failed in this process" in out
    else:
        # The worker ran the two other tasks while this process was on its own (2 s), not after it.
        assert float(out.split("ends")[1]) > 1.0, out


def test_workers_do_not_outlive_a_killed_main_process(tmp_path):
    """When the main process is killed (SIGKILL: no shutdown), its workers exit too, whether simulating, sending
    a result or idle between lists of tasks, instead of waiting for work for ever."""
    proc, _ = _run_with_workers([str(LOW_VOLUME), "--reps", "400"], tmp_path / "run", 4,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not group_outlives(proc.pid), "worker processes outlived the main process"


def test_a_run_with_workers_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """The crew freezes this process's objects while its workers live: nothing stays frozen after the run, and
    objects the caller had frozen (gc.freeze) stay frozen."""
    import gc

    s = small(LOW_VOLUME)
    assert gc.get_freeze_count() == 0
    run(s, reps=3, seed=1, jobs=2, log_events=False, progress=False)
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        run(s, reps=3, seed=1, jobs=2, log_events=False, progress=False)
        # Frozen objects that die during the run leave the count (a few hundred, by test order); an unfreeze
        # would empty it.
        assert gc.get_freeze_count() > frozen * 0.9
    finally:
        gc.unfreeze()


def test_a_run_kept_in_memory_reads_its_tables_on_first_use_and_cleans_up_after_itself(tmp_path):
    """No `out`: the tables wait in a temporary folder, read on first use, equal to those of a run folder; the
    folder goes when the last result referring to it does (a `dataclasses.replace` copy shares it), and a
    pickled copy carries its tables with it."""
    import dataclasses
    import gc
    import pickle

    s = small(LOW_VOLUME)
    kept = run(s, reps=2, seed=4, log_events=True, out=tmp_path / "run", progress=False)
    memory = run(s, reps=2, seed=4, log_events=True, progress=False)
    assert memory._temporary is not None and memory._patients is None
    folder = memory._temporary.path
    assert folder.is_dir()
    pickled = pickle.loads(pickle.dumps(memory))
    replaced = dataclasses.replace(memory)
    for name in ("patients", "events", "resource_uses"):
        pd.testing.assert_frame_equal(getattr(memory, name), getattr(kept, name))
        pd.testing.assert_frame_equal(getattr(pickled, name), getattr(kept, name))
    del memory
    gc.collect()
    assert folder.is_dir()  # `replaced` still refers to it
    pd.testing.assert_frame_equal(replaced.patients, kept.patients)
    del replaced
    gc.collect()
    assert not folder.exists()
    assert pickled._temporary is None and len(pickled.patients) == len(kept.patients)


def test_a_result_whose_folder_is_gone_says_so_instead_of_giving_empty_tables(tmp_path):
    import shutil

    r = run(small(LOW_VOLUME), reps=1, seed=4, log_events=False, out=tmp_path / "run", progress=False)
    assert r.events.empty  # not logged: empty, as before
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="folder is gone"):
        r.patients  # noqa: B018


@pytest.mark.filterwarnings("ignore:--reps auto. cap")
def test_auto_replications_whose_concatenation_fails_leave_nothing_half_written(tmp_path, monkeypatch):
    """With --reps auto the tables are concatenated at the end of the run; an error there removes the file
    being written (as it does during a run with a fixed number of replications)."""
    import errno

    from sim.io import outputs

    calls = {"n": 0}
    add = outputs.ParquetConcat.add

    def fail_on_third(self, part, table=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.tmp))
        add(self, part, table)

    monkeypatch.setattr(outputs.ParquetConcat, "add", fail_on_third)
    with pytest.raises(OSError, match="No space"):
        run(small(LOW_VOLUME), reps="auto", max_reps=6, seed=1, log_events=False, out=tmp_path / "r",
            progress=False)
    assert calls["n"] == 3
    assert not list(tmp_path.glob("r.partial/parts/.concat-*"))


_FAILED_FORK = r"""
import gc, multiprocessing.context, sys
from sim.runs.crew import Crew

start, calls = multiprocessing.context.ForkProcess.start, []

def second_fails(self):
    calls.append(1)
    if len(calls) == 2:
        raise OSError(11, "Resource temporarily unavailable")
    start(self)

multiprocessing.context.ForkProcess.start = second_fails
try:
    Crew(3)
except OSError as err:
    print("raised", err.errno, gc.get_freeze_count(), len(multiprocessing.active_children()))
"""


def test_a_crew_whose_workers_cannot_all_be_forked_leaves_nothing_behind():
    """The second of three forks fails: the error comes through, the worker already forked is gone (this
    process would otherwise wait for it for ever at exit) and the collector is as it was."""
    done = subprocess.run([sys.executable, "-c", _FAILED_FORK], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["raised", "11", "0", "0"], done.stdout


_FORKED_WITH: list[list[str]] = []


def _note_threads_at_fork() -> None:
    import threading

    _FORKED_WITH.append([t.name for t in threading.enumerate()])


def test_workers_are_forked_before_this_process_starts_its_append_thread(tmp_path):
    """A resumed run with one replication left runs it here (its append on the thread when there are workers)
    and forks for the merges after: the workers must be forked before that thread exists."""
    s = small(LOW_VOLUME)
    _interrupted_run(tmp_path / "r.partial", s, seed=3, reps=4, done=3, log_events=False)
    if not _FORKED_WITH:  # registered once per test session (there is no unregistering)
        os.register_at_fork(before=_note_threads_at_fork)
        _FORKED_WITH.append([])
    run(s, reps=1, seed=3, log_events=False, progress=True)  # a progress bar before (tqdm's monitor thread)
    del _FORKED_WITH[1:]
    run(s, reps=4, seed=3, jobs=2, log_events=False, out=tmp_path / "r", resume=True, progress=False)
    forks = _FORKED_WITH[1:]
    assert forks, "the run forked no worker"
    assert not any(name.startswith(("csfsim-append", "tqdm_monitor")) for names in forks for name in names), forks


def test_a_failed_run_kept_in_memory_leaves_no_temporary_folder(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("sim.runs.experiment._finalize", fail)
    with pytest.raises(RuntimeError, match="boom"):
        run(small(LOW_VOLUME), reps=1, seed=1, log_events=False, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_run_result_prints_in_one_short_line():
    r = run(load_scenario(EXPERIENCED, overrides={**PERIOD, "run.horizon_days": 60}), reps=1, seed=1, log_events=False,
            progress=False)
    text = repr(r)
    assert len(text) < 200 and "\n" not in text and "reps=1" in text
