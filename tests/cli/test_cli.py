"""The csfsim command: outputs of a run, bad input (exit 2, one line, no traceback, no output folder)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sim.cli import main
from sim.model.records import PATIENT_COLUMNS
from sim.runs.replication import EVENT_COLUMNS
from tests.helpers import EXPERIENCED, LOW_VOLUME, ROOT, run_cli


def test_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(EXPERIENCED), "--reps", "2", "--seed", "4", "--out", str(out), "--jobs", "1",
                 "--quiet"]) == 0
    files = {p.name for p in out.iterdir()}
    assert {"patients.parquet", "events.parquet", "summary.csv", "manifest.json", "resources.csv"} <= files
    assert not list(out.glob(".*tmp*")) and not (tmp_path / "run.partial").exists()
    patients = pd.read_parquet(out / "patients.parquet")
    assert list(patients.columns) == list(PATIENT_COLUMNS)
    assert sorted(patients["replication"].unique()) == [0, 1]
    # missing times are real nulls in Parquet, never a fake number
    table = pq.read_table(out / "patients.parquet")
    assert table.column("diagnosed_day").null_count == int(patients["diagnosed_day"].isna().sum()) > 0
    events = pd.read_parquet(out / "events.parquet")
    assert list(events.columns) == list(EVENT_COLUMNS)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("scenario", "seed", "versions", "git_commit", "command", "wall_seconds", "replications"):
        assert key in manifest
    assert manifest["scenario"]["clinical"]["ebp_first_success"]["post_lp"]["grade"] == "H"
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["level"]) == {"replication", "across"}
    assert "Written to" in capsys.readouterr().out


def test_run_is_identical_for_any_number_of_jobs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    main(["run", str(LOW_VOLUME), "--reps", "3", "--seed", "8", "--out", str(a), "--jobs", "1", "--quiet"])
    main(["run", str(LOW_VOLUME), "--reps", "3", "--seed", "8", "--out", str(b), "--jobs", "2", "--quiet"])
    for name in ("patients.parquet", "events.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))
    pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv"), pd.read_csv(b / "summary.csv"))
    # Every table, byte for byte: km.csv and distributions.csv are merged from the workers' summaries.
    tables = sorted(p.name for p in a.iterdir() if p.suffix in (".csv", ".parquet"))
    assert {"km.csv", "distributions.csv", "summary.csv", "resources.csv"} <= set(tables)
    assert tables == sorted(p.name for p in b.iterdir() if p.suffix in (".csv", ".parquet"))
    for name in tables:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_compare_writes_comparison_with_paired_differences(tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(EXPERIENCED), str(LOW_VOLUME), "--reps", "3", "--out", str(out), "--jobs", "1",
            "--quiet", "--no-events", "--xlsx"]
    assert main(args) == 0
    table = pd.read_csv(out / "comparison.csv")
    row = table[(table["metric"] == "diagnosis_delay_median_days") & (table["group"] == "spontaneous")
                & (table["scenario_index"] == 1)].iloc[0]
    assert row["diff_vs_first"] > 0 and row["diff_ci95_low"] <= row["diff_vs_first"] <= row["diff_ci95_high"]
    assert "difference" in capsys.readouterr().out
    # --xlsx: the comparison, each scenario's tables and the metric dictionary, as a workbook
    sheets = pd.read_excel(out / "summary.xlsx", sheet_name=None)
    assert list(sheets)[:2] == ["about", "comparison"] and "metrics" in sheets
    assert len(sheets["comparison"]) == len(table)
    assert any(name.startswith("summary experienced") for name in sheets)
    assert any(name.startswith("resources low") for name in sheets)
    assert "time_to_resolution_rmst_365_days" in set(sheets["metrics"]["metric"])
    assert main([*args, "--overwrite"]) == 0  # the workbook is csfsim's own output: replaced with the rest


@pytest.mark.parametrize("content", [
    "[centers.c]\nprofile = \"experienced\"\ncatchment_share = 1.0\n[clinical.ebp_first_success]\npost_lp = 2\n",
    "not = = toml",
    "",
])
def test_bad_scenario_exits_2_with_one_line_and_no_output(tmp_path, content):
    bad = tmp_path / "bad.toml"
    bad.write_text(content)
    out = tmp_path / "out"
    for args in (["validate", str(bad)], ["run", str(bad), "--reps", "1", "--out", str(out)]):
        proc = run_cli(*args, cwd=ROOT)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr
        assert str(bad) in lines[0] and "expected" in lines[0]
        assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_validate_accepts_shipped_scenarios():
    proc = run_cli("validate", str(LOW_VOLUME), cwd=ROOT)
    assert proc.returncode == 0 and "valid" in proc.stdout


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("run", str(EXPERIENCED), "--reps", "1", "--out", str(blocker / "sub"), cwd=ROOT)
    assert proc.returncode == 2 and "--out" in proc.stderr and "Traceback" not in proc.stderr


def test_help_does_not_load_the_model_stack():
    """`csfsim --help` used to take ~2 s and 180 MB: `import sim` loaded pandas, SciPy and pyarrow for every
    command. Now the package and the CLI load them where used."""
    code = ("import sys, runpy; sys.argv = ['csfsim', '--help']\n"
            "try:\n    runpy.run_module('sim', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('pandas', 'scipy', 'pyarrow', 'simpy', 'matplotlib') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_the_console_names_the_busiest_resources_with_their_waits():
    from sim.cli import busiest_resources

    summary = pd.DataFrame({
        "level": ["across"] * 5 + ["replication"],
        "metric": ["resource_utilization", "resource_utilization", "resource_utilization",
                   "resource_mean_wait_days", "resource_mean_wait_days", "resource_utilization"],
        "group": ["district/clinic", "district/mri", "all centers/clinic", "district/clinic", "district/mri",
                  "district/theatre"],
        "mean": [0.377, 0.92, 0.5, 0.3, float("nan"), 0.99],
        "ci95_low": [0.369, 0.9, 0.4, 0.2, float("nan"), 0.99],
        "ci95_high": [0.385, 0.94, 0.6, 0.4, float("nan"), 0.99]})
    lines = busiest_resources(summary)
    assert lines[0].startswith("  Busiest resources")
    assert "district/mri" in lines[1] and "92.0%" in lines[1] and "not used" in lines[1]
    assert "district/clinic" in lines[2] and "wait 0.3 days" in lines[2]
    assert len(lines) == 3  # neither the pooled "all centers" row nor a per-replication row
    listed = pd.concat([summary, pd.DataFrame({"level": ["across"], "metric": ["resource_mean_list_length"],
                                               "group": ["district/clinic"], "mean": [4.25], "ci95_low": [4.0],
                                               "ci95_high": [4.5]})])
    assert busiest_resources(listed)[2].endswith("wait 0.3 days (0.0 weeks); list 4.2")
    assert busiest_resources(summary.iloc[0:0]) == []
    across = summary[summary["level"] == "across"].drop(columns="level")  # RunResult.summary has no level
    assert busiest_resources(across) == lines


def test_the_comparison_console_adds_the_waits_of_resources_someone_waited_for():
    from sim.cli import format_comparison

    rows = []
    for i, (myelography, mri) in enumerate([(14.7, 0.001), (0.02, 0.002)]):
        for group, wait in (("all centers/myelography", myelography), ("all centers/mri", mri)):
            rows.append({"scenario_index": i, "metric": "resource_mean_wait_days", "group": group, "mean": wait,
                         "diff_vs_first": wait - (14.7 if "myelo" in group else 0.001), "diff_ci95_low": -1.0,
                         "diff_ci95_high": 1.0})
    text = format_comparison(pd.DataFrame(rows), ["Lists", "Servers"])
    wait_lines = [line for line in text.splitlines() if line.startswith("Mean queue wait")]
    assert len(wait_lines) == 1 and "myelography" in wait_lines[0] and "14.700" in wait_lines[0]
    assert "-14.680" in wait_lines[0]  # the paired difference, B - A
