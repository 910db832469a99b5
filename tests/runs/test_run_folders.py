"""The run-folder protocol (sim/io/runfolder.py), where users meet it: the command line never removes a file csfsim did
not write, replaces a finished output only with --overwrite, refuses a second run into the same folder, and
leaves nothing half-written behind a refused command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.io.runfolder import RunFolder, check_replaceable
from sim.runs.backends import default_jobs
from sim.runs.crew import Crew, WorkerDied
from tests.helpers import ARRIVALS_PER_YEAR, EXPERIENCED, LOW_VOLUME, ONE_CENTER, ROOT, group_outlives

QUICK = ["--reps", "1", "--quiet", "--no-report", "--no-events", "--jobs", "1"]


def cli(*args: str, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False)


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def small_scenario(tmp_path: Path, name: str = "small.toml", extra: str = "") -> Path:
    path = tmp_path / name
    path.write_text(f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 200\n'
                    f'follow_up_days = 0\n{extra}', encoding="utf-8")
    return path


def wait_for_parts(parts: Path, n: int = 1, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and len(list(parts.glob("metrics-*.csv"))) < n:
        time.sleep(0.05)
    assert len(list(parts.glob("metrics-*.csv"))) >= n, "the run wrote no replication in time"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_holding_the_users_files_is_refused_and_left_as_it_was(tmp_path):
    """The reported case: `run DIR/scenario.toml --out DIR` removed the scenario and the user's notes."""
    user = tmp_path / "study"
    user.mkdir()
    scenario = small_scenario(user, "experienced_center.toml")
    (user / "notes.txt").write_text("my notes")
    before = snapshot(user)
    line = one_line_error(cli("run", str(scenario), "--out", str(user), *QUICK))
    assert "--out" in line and "notes.txt" in line and "did not write" in line
    assert snapshot(user) == before
    assert not (tmp_path / "study.partial").exists()


@pytest.mark.parametrize("command", ["run", "compare", "sweep", "warmup", "psa", "sensitivity"])
def test_every_command_refuses_a_folder_of_the_users(tmp_path, command):
    scenario = small_scenario(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.csv").write_text("a,b\n")
    args = {"run": ["run", str(scenario), *QUICK],
            "compare": ["compare", str(scenario), str(scenario), *QUICK],
            "sweep": ["sweep", str(scenario), "--set", "run.horizon_days=100,200", *QUICK],
            "warmup": ["warmup", str(scenario), "--reps", "1"],
            "psa": ["psa", str(scenario), "--samples", "2", "--reps", "1", "--jobs", "1"],
            "sensitivity": ["sensitivity", str(scenario), "--reps", "1", "--jobs", "1"]}[command]
    line = one_line_error(cli(*args, "--out", str(out)))
    assert "keep.csv" in line
    assert [p.name for p in out.iterdir()] == ["keep.csv"] and not (tmp_path / "out.partial").exists()


def test_a_finished_run_is_replaced_only_with_overwrite_and_only_if_csfsim_wrote_all_of_it(tmp_path):
    scenario = small_scenario(tmp_path)
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out), *QUICK, "--seed", "1").returncode == 0
    first = snapshot(out)
    line = one_line_error(cli("run", str(scenario), "--out", str(out), *QUICK, "--seed", "2"))
    assert "--overwrite" in line
    assert snapshot(out) == first
    assert cli("run", str(scenario), "--out", str(out), *QUICK, "--seed", "2", "--overwrite").returncode == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    (out / "mine.txt").write_text("added by the user")
    line = one_line_error(cli("run", str(scenario), "--out", str(out), *QUICK, "--seed", "3", "--overwrite"))
    assert "mine.txt" in line
    assert (out / "mine.txt").read_text() == "added by the user"
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2


def test_a_folder_of_another_kind_is_not_replaced_even_with_overwrite(tmp_path):
    scenario = small_scenario(tmp_path)
    out = tmp_path / "out"
    assert cli("run", str(scenario), "--out", str(out), *QUICK).returncode == 0
    line = one_line_error(cli("warmup", str(scenario), "--reps", "1", "--out", str(out), "--overwrite"))
    assert "finished csfsim run" in line
    assert (out / "patients.parquet").exists()


def test_the_manifest_lists_exactly_the_files_of_the_folder(tmp_path):
    scenario = small_scenario(tmp_path)
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out), "--reps", "1", "--quiet", "--no-report").returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"] == sorted(p.name for p in out.iterdir())
    assert "run.json" not in manifest["files"]


def test_a_second_run_into_the_same_out_is_refused_and_the_first_publishes_its_own_tables(tmp_path):
    """The reported case: two runs 0.3-2 s apart published corrupt Parquet files or one seed's manifest beside
    the other's patients. The second now exits 2 naming the first, even with --resume or --overwrite."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "sim", "run", str(LOW_VOLUME), "--reps", "200", "--seed", "11",
                              "--quiet", "--no-report", "--no-events", "--jobs", "1", "--out", str(out)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_parts(tmp_path / "run.partial" / "parts")
    first.send_signal(signal.SIGSTOP)  # held mid-run, whatever this machine's speed
    try:
        for extra in ([], ["--resume"], ["--overwrite"]):
            second = cli("run", str(LOW_VOLUME), "--out", str(out), *QUICK, "--seed", "12", *extra)
            line = one_line_error(second)
            assert "no other run is writing" in line and f"process {first.pid}" in line
    finally:
        first.send_signal(signal.SIGCONT)
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 11 and manifest["replications"] == 200
    patients = pd.read_parquet(out / "patients.parquet")
    assert sorted(patients["replication"].unique()) == list(range(200))


def test_the_lock_is_released_when_its_holder_dies(tmp_path):
    """flock: a run killed outright leaves no stale lock, and --resume takes the folder over."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(LOW_VOLUME), "--reps", "200", "--seed", "3",
                             "--quiet", "--no-report", "--no-events", "--jobs", "1", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_parts(tmp_path / "run.partial" / "parts")
    proc.kill()
    proc.wait()
    resumed = cli("run", str(LOW_VOLUME), "--out", str(out), "--reps", "4", "--seed", "3", "--quiet", "--no-report",
                  "--no-events", "--jobs", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "manifest.json").read_text())["replications"] == 4


def test_in_process_a_locked_partial_folder_is_refused(tmp_path):
    out = tmp_path / "x"
    with RunFolder(out, "run") as holder:
        holder.open()
        other = RunFolder(out, "run")
        with pytest.raises(Exception, match="no other run is writing"):
            other.open(resume=True)
        other.close()
        holder.publish({"csfsim_run": True})
    assert (out / "manifest.json").exists() and not (tmp_path / "x.partial").exists()
    with pytest.raises(Exception, match="--overwrite"):
        check_replaceable(out, "run", overwrite=False)
    check_replaceable(out, "run", overwrite=True)


@pytest.mark.parametrize("case", [".", "/", "loop", "dangling", "long", "partial_file"])
def test_out_paths_that_cannot_hold_a_run_are_refused_in_one_line(tmp_path, case):
    scenario = small_scenario(tmp_path)
    work = tmp_path / "here"
    work.mkdir()
    out = {".": ".", "/": "/", "loop": "loop", "dangling": "dangling", "long": "x" * 300,
           "partial_file": "blocked"}[case]
    if case == "loop":
        os.symlink(work / "loop2", work / "loop")
        os.symlink(work / "loop", work / "loop2")
    if case == "dangling":
        os.symlink(work / "nowhere", work / "dangling")
    if case == "partial_file":
        (work / "blocked.partial").write_text("not a folder")
    before = snapshot(work)
    line = one_line_error(cli("run", str(scenario), "--out", out, *QUICK, cwd=work))
    assert "--out" in line
    assert snapshot(work) == before
    assert sorted(p.name for p in work.iterdir()) == sorted(
        {"loop": ["loop", "loop2"], "dangling": ["dangling"], "partial_file": ["blocked.partial"]}.get(case, []))


def test_a_refused_engine_leaves_no_partial_folder(tmp_path):
    """--engine fast on a scenario where patients can queue is refused once the run has begun."""
    scenario = tmp_path / "queue.toml"
    scenario.write_text(ONE_CENTER + "[run]\nhorizon_days = 200\n"
                                     "follow_up_days = 0\n[centers.c.resources.clinic]\ncapacity = 1\n",
                        encoding="utf-8")
    out = tmp_path / "out"
    proc = cli("run", str(scenario), "--out", str(out), *QUICK, "--engine", "fast")
    if proc.returncode == 0:
        pytest.skip("the fast path accepts this scenario")
    line = one_line_error(proc)
    assert "fast path" in line and "engine auto or simpy" in line
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_sweep_refuses_an_unknown_metric_or_group_before_running_the_grid(tmp_path):
    scenario = small_scenario(tmp_path)
    out = tmp_path / "sweep"
    line = one_line_error(cli("sweep", str(scenario), "--set", "run.horizon_days=100,150,200", *QUICK,
                              "--metric", "diagnosis_delay_medain_days", "--out", str(out)))
    assert "--metric" in line and "did you mean diagnosis_delay_median_days" in line
    line = one_line_error(cli("sweep", str(scenario), "--set", "run.horizon_days=100,150", *QUICK,
                              "--metric", "diagnosis_delay_median_days", "--group", "nobody", "--out", str(out)))
    assert "--group" in line and "spontaneous" in line and "--metric" not in line.split("expected")[0]
    assert not out.exists() and not (tmp_path / "sweep.partial").exists()


def test_resuming_without_the_events_setting_of_the_interrupted_run_says_how(tmp_path):
    out = tmp_path / "run"
    work = tmp_path / "run.partial"
    work.mkdir()
    scenario = small_scenario(tmp_path)
    from sim.config.scenario import load_scenario
    from sim.config.schema import to_jsonable

    s = load_scenario(scenario)
    (work / "run.json").write_text(json.dumps({"seed": 1, "reps": 2, "log_events": False,
                                               "scenario": to_jsonable(s.resolved)}, default=str))
    line = one_line_error(cli("run", str(scenario), "--out", str(out), "--reps", "2", "--quiet", "--no-report",
                              "--resume"))
    assert "--no-events" in line and "resume it with --no-events" in line
    assert (work / "run.json").exists()


def test_sigterm_is_an_interruption_in_one_line_and_resume_finishes_the_run(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(LOW_VOLUME), "--reps", "300", "--seed", "5",
                             "--quiet", "--no-report", "--no-events", "--jobs", "1", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "run.partial" / "parts"
    wait_for_parts(parts)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be stopped")
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0]
    assert list(parts.glob("metrics-*.csv"))


def test_warmup_of_a_scenario_with_no_arrivals_is_a_clear_error(tmp_path):
    scenario = tmp_path / "empty.toml"
    scenario.write_text(f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 100\nfollow_up_days = 0\n{ARRIVALS_PER_YEAR}'
                        "spontaneous = 0\npost_lp = 0\nepidural = 0\nspinal_surgery = 0\n", encoding="utf-8")
    out = tmp_path / "wu"
    line = one_line_error(cli("warmup", str(scenario), "--reps", "1", "--out", str(out)))
    assert "arrivals" in line
    assert not out.exists() and not (tmp_path / "wu.partial").exists()


def test_psa_workers_die_with_a_killed_main_process(tmp_path):
    """The reported case: after `kill -9` of `csfsim psa`, its workers kept adding samples."""
    out = tmp_path / "psa"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "psa", str(small_scenario(tmp_path)), "--samples", "400",
                             "--reps", "1", "--jobs", "2", "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    samples = tmp_path / "psa.partial" / "samples"
    deadline = time.time() + 90
    while time.time() < deadline and len(list(samples.glob("sample-*.csv"))) < 2:
        time.sleep(0.05)
    assert len(list(samples.glob("sample-*.csv"))) >= 2, "the PSA wrote no sample in time"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not group_outlives(proc.pid), "PSA workers outlived the main process"
    written = len(list(samples.glob("sample-*.csv")))
    time.sleep(1)
    assert len(list(samples.glob("sample-*.csv"))) == written


def _square(x: int) -> int:
    return x * x


def test_a_worker_that_died_while_idle_is_worker_died_not_a_broken_pool():
    """A worker killed between two lists of tasks: the next list raises WorkerDied (the CLI's exit 3), not
    concurrent.futures' BrokenProcessPool (a traceback)."""
    crew = Crew(1)
    try:
        worker = next(iter(crew.pool._processes.values()))
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(timeout=10)
        time.sleep(0.2)
        with pytest.raises(WorkerDied):
            crew.start([(_square, (i,)) for i in range(4)])
            crew.finish(lambda i: _square(i), lambda i, r: None)
    finally:
        crew.shutdown()


def test_a_damaged_table_is_one_line_not_a_traceback(tmp_path):
    scenario = small_scenario(tmp_path)
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out), *QUICK).returncode == 0
    data = (out / "patients.parquet").read_bytes()
    (out / "patients.parquet").write_bytes(data[: len(data) // 2])
    line = one_line_error(cli("report", str(out)))
    assert str(out) in line and "could not be read" in line


def test_a_report_that_fails_after_the_run_is_published_does_not_ask_for_resume(tmp_path, monkeypatch, capsys):
    import errno

    from sim.cli import main
    from sim.report import html as report

    def disk_full(folder, jobs=1):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "build_report", disk_full)
    out = tmp_path / "run"
    code = main(["run", str(small_scenario(tmp_path)), "--out", str(out), "--reps", "1", "--quiet", "--jobs", "1",
                 "--no-events"])
    err = capsys.readouterr().err
    assert code == 1 and "--resume" not in err and f"csfsim report {out}" in err
    assert (out / "manifest.json").exists()


def test_an_atomic_write_that_fails_leaves_no_temporary_file(tmp_path, monkeypatch):
    from sim.io import outputs

    def full(src, dst):  # the temporary file is written; putting it in place fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", full)
    for write in (lambda p: outputs.atomic_write_text(p, "x"), lambda p: outputs.atomic_write_bytes(p, b"x"),
                  lambda p: outputs.atomic_write_csv(p, pd.DataFrame({"a": [1.5]}))):
        with pytest.raises(OSError):
            write(tmp_path / "a.txt")
        assert list(tmp_path.iterdir()) == []


def test_a_run_with_no_patients_says_so_and_warnings_are_one_plain_line_each(tmp_path):
    scenario = tmp_path / "empty.toml"
    scenario.write_text(f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 100\nfollow_up_days = 0\n{ARRIVALS_PER_YEAR}'
                        "spontaneous = 0\npost_lp = 0\nepidural = 0\nspinal_surgery = 0\n", encoding="utf-8")
    proc = cli("run", str(scenario), "--out", str(tmp_path / "run"), "--reps", "auto", "--max-reps", "8",
               "--quiet", "--no-report", "--no-events", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("csfsim: warning: ") for line in lines), proc.stderr
    assert any("no patient arrived" in line for line in lines)
    assert "UserWarning" not in proc.stderr and "nan%" not in proc.stderr


def test_jobs_beyond_the_cores_are_capped_with_a_note(tmp_path):
    proc = cli("run", str(small_scenario(tmp_path)), "--out", str(tmp_path / "run"), "--reps", "2", "--quiet",
               "--no-report", "--no-events", "--jobs", "64")
    assert proc.returncode == 0, proc.stderr
    assert "--jobs 64" in proc.stderr and "cores" in proc.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    cores = default_jobs()
    assert manifest["backend"] == ("serial" if cores == 1 else f"{cores} worker processes")


def test_a_report_of_a_run_missing_a_table_it_wrote_says_so(tmp_path):
    out = tmp_path / "run"
    assert cli("run", str(small_scenario(tmp_path)), "--out", str(out), *QUICK).returncode == 0
    (out / "km.csv").unlink()
    line = one_line_error(cli("report", str(out)))
    assert "km.csv" in line and "manifest" in line


def test_the_memory_guard_estimates_and_names_what_to_change():
    from sim.config.scenario import expected_patients, load_scenario
    from sim.errors import ScenarioError
    from sim.runs.backends import Backend
    from sim.runs.experiment import BYTES_PER_PATIENT, check_memory

    s = load_scenario(LOW_VOLUME)
    per_replication = expected_patients(s.population, s.horizon_days) * BYTES_PER_PATIENT
    check_memory(s, Backend("processes", 2), available=per_replication * 10)
    with pytest.raises(ScenarioError) as info:
        check_memory(s, Backend("processes", 8), available=per_replication * 4)
    assert info.value.field == "--jobs" and "at most 3 processes" in str(info.value) and "GB" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        check_memory(s, Backend("serial", 1), available=per_replication / 2)
    assert info.value.field == "population.catchment.adults"
    check_memory(s, Backend("dask", 64, "tcp://127.0.0.1:8786"), available=1.0)  # workers elsewhere


def test_a_partial_folder_csfsim_did_not_make_is_never_emptied(tmp_path):
    """A user's own `mine.partial/` (or an --out ending in .partial) is not csfsim's work in progress."""
    scenario = small_scenario(tmp_path)
    mine = tmp_path / "mine.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    for extra in ([], ["--resume"]):
        line = one_line_error(cli("run", str(scenario), "--out", str(tmp_path / "mine"), *QUICK, *extra))
        assert "mine.partial" in line
    assert (mine / "notes.txt").read_text() == "x" and not (tmp_path / "mine").exists()
    line = one_line_error(cli("run", str(scenario), "--out", str(tmp_path / "res.partial"), *QUICK))
    assert ".partial" in line and not (tmp_path / "res.partial").exists()


def test_work_of_another_kind_of_command_is_not_taken_over(tmp_path):
    scenario = small_scenario(tmp_path)
    with RunFolder(tmp_path / "x", "run", keep_on_error=True) as folder:
        (folder.open() / "run.json").write_text("{}")
    line = one_line_error(cli("psa", str(scenario), "--samples", "2", "--reps", "1", "--jobs", "1", "--out",
                              str(tmp_path / "x")))
    assert "interrupted csfsim run" in line
    assert (tmp_path / "x.partial" / "run.json").exists()


def test_a_refusal_at_publish_keeps_the_finished_work(tmp_path):
    """A folder that appears at OUT while the command runs is left alone, and the work is not thrown away."""
    out = tmp_path / "late"
    folder = RunFolder(out, "warmup")
    work = folder.open()
    (work / "warmup.csv").write_text("x\n")
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    with pytest.raises(Exception, match="finished work is kept"), folder:
        folder.publish({"csfsim_warmup": True})
    assert (work / "warmup.csv").exists() and (out / "notes.txt").read_text() == "the user's"


def test_an_output_of_an_earlier_csfsim_without_a_files_list_can_be_replaced(tmp_path):
    out = tmp_path / "sens"
    out.mkdir()
    for name in ("oneway.csv", "tornado.png", "tornado.svg", "report.html"):
        (out / name).write_text("x")
    (out / "figures").mkdir()
    (out / "figures" / "a.png").write_text("x")
    (out / "manifest.json").write_text(json.dumps({"csfsim_sensitivity": True}))
    check_replaceable(out, "sensitivity", overwrite=True)
    (out / "figures" / "mine.docx").write_text("x")
    with pytest.raises(Exception, match=r"figures/mine\.docx"):
        check_replaceable(out, "sensitivity", overwrite=True)


@pytest.mark.parametrize("manifest", ['{"csfsim_run": true, "files": 5}', '{"csfsim_run": true, "files": [[1]]}',
                                      '{"csfsim_compare": true, "scenarios": 3}', '[1, 2]', '{"files": null}'])
def test_a_malformed_manifest_in_the_way_is_one_line(tmp_path, manifest):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(manifest)
    (out / "x.csv").write_text("x")
    line = one_line_error(cli("run", str(small_scenario(tmp_path)), "--out", str(out), *QUICK, "--overwrite"))
    assert "--out" in line and (out / "x.csv").exists()


def test_a_scenario_named_figures_does_not_share_the_reports_folder(tmp_path):
    named = tmp_path / "figures.toml"
    named.write_text(f'extends = "{EXPERIENCED}"\n[scenario]\nname = "Figures"\n[run]\nhorizon_days = 200\n'
                     f'follow_up_days = 0\n')
    out = tmp_path / "cmp"
    proc = cli("compare", str(named), str(small_scenario(tmp_path)), "--reps", "1", "--quiet", "--no-events",
               "--no-crn-check", "--jobs", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert "figures" not in manifest["folders"] and (out / "figures").is_dir()


def test_an_interrupted_sweep_resumes_from_its_finished_combinations(tmp_path, monkeypatch):
    from sim.runs import sweep as sweep_module

    scenario = small_scenario(tmp_path)
    grid = [("run.horizon_days", [100, 150, 200, 250])]
    fresh = sweep_module.sweep(scenario, grid, reps=2, seed=3, out=tmp_path / "fresh", progress=False)
    real_run, calls = sweep_module.run, []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[0].horizon_days)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "run", interrupted)
    out = tmp_path / "sw"
    with pytest.raises(KeyboardInterrupt):
        sweep_module.sweep(scenario, grid, reps=2, seed=3, out=out, progress=False)
    assert len(list((tmp_path / "sw.partial" / "combinations").iterdir())) == 2
    with pytest.raises(Exception, match="interrupted sweep"):  # another grid cannot go on from this one
        sweep_module.sweep(scenario, [("run.horizon_days", [100, 300])], reps=2, seed=3, out=out, resume=True)
    calls.clear()
    monkeypatch.setattr(sweep_module, "run", lambda *a, **k: (calls.append(a[0].horizon_days), real_run(*a, **k))[1])
    resumed = sweep_module.sweep(scenario, grid, reps=2, seed=3, out=out, progress=False, resume=True)
    assert calls == [200, 250]
    assert (out / "sweep.csv").read_bytes() == (tmp_path / "fresh" / "sweep.csv").read_bytes()
    pd.testing.assert_frame_equal(resumed.table, fresh.table)
    assert not (tmp_path / "sw.partial").exists()


def test_a_marker_that_is_a_symbolic_link_is_not_followed(tmp_path):
    important = tmp_path / "important.txt"
    important.write_text("keep me")
    (tmp_path / "y.partial").mkdir()
    os.symlink(important, tmp_path / "y.partial" / ".csfsim-partial.json")
    line = one_line_error(cli("warmup", str(small_scenario(tmp_path)), "--reps", "1", "--out", str(tmp_path / "y")))
    assert "y.partial" in line and important.read_text() == "keep me"


@pytest.mark.parametrize("layout", ["parts/chapter1.docx", "run.json"])
def test_a_users_partial_folder_that_looks_like_an_old_run_is_not_emptied(tmp_path, layout):
    mine = tmp_path / "x.partial" / layout
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("thesis")
    one_line_error(cli("run", str(small_scenario(tmp_path)), "--out", str(tmp_path / "x"), *QUICK))
    assert mine.read_text() == "thesis"


def test_ctrl_c_during_the_swap_is_held_until_the_results_are_in_place(tmp_path, monkeypatch):
    from sim.io import runfolder
    from sim.io.runfolder import InterruptedAfterPublish

    out = tmp_path / "out"
    with RunFolder(out, "warmup") as first:
        (first.open() / "warmup.csv").write_text("old\n")
        first.publish({"csfsim_warmup": True})
    real_replace = runfolder.os.replace

    def interrupted_replace(src, dst):
        real_replace(src, dst)
        if Path(src).name == "out.partial":
            os.kill(os.getpid(), signal.SIGINT)  # held until the swap and its cleanup are done

    monkeypatch.setattr(runfolder.os, "replace", interrupted_replace)
    folder = RunFolder(out, "warmup", overwrite=True)
    (folder.open() / "warmup.csv").write_text("new\n")
    with pytest.raises(InterruptedAfterPublish), folder:
        folder.publish({"csfsim_warmup": True})
    assert (out / "warmup.csv").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no OUT.partial, no .out.old-PID
    assert not (out / ".csfsim-partial.json").exists()
