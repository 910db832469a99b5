"""What several test files share: the shipped scenarios' paths, small scenario texts, and checks. Test files import
from here (and fixtures come from conftest.py), never from one another."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from sim.model.records import FINAL_STATES, PATIENT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
EXPERIENCED = SCENARIOS / "experienced_center.toml"
LOW_VOLUME = SCENARIOS / "low_volume_center.toml"
# Overrides that count every onset up to the horizon (period statistics): for runs too short for the default
# run.follow_up_days, in tests about something else.
PERIOD = {"run.follow_up_days": 0}

ONE_CENTER = """
[scenario]
name = "test"
[centers.c]
profile = "experienced"
catchment_share = 1.0
"""
TIMES = ["onset_day", "presented_day", "diagnosed_day", "first_treatment_day", "resolved_day"]


def check_invariants(p: pd.DataFrame, horizon: float) -> None:
    assert list(p.columns) == list(PATIENT_COLUMNS)
    assert p["patient_id"].is_unique  # every patient exactly once
    assert p["final_state"].isin(FINAL_STATES).all()
    # times are ordered wherever both are present
    for a, b in itertools.pairwise(TIMES):
        both = p[[a, b]].dropna()
        assert (both[a] <= both[b] + 1e-9).all(), (a, b)
    # the resolution (if any) comes after every recorded step
    for col in TIMES[1:-1]:
        both = p[[col, "resolved_day"]].dropna()
        assert (both[col] <= both["resolved_day"] + 1e-9).all(), col
    assert (p[TIMES].max(axis=1) <= horizon).all()
    assert (p["symptom_days"] >= 0).all() and (p["symptom_days"] <= horizon + 1e-9).all()
    assert (p["waiting_days"].dropna() >= 0).all()
    resolved = p["final_state"].isin(["resolved", "resolved_without_care"])
    assert p.loc[resolved, "resolved_day"].notna().all()
    assert p.loc[~resolved, "resolved_day"].isna().all()
    assert p.loc[p["final_state"] == "resolved_without_care", "presented_day"].isna().all()
    assert p.loc[p["final_state"] == "persistent", "persistent_reason"].notna().all()
    assert (p.loc[p["etiology"] != "spontaneous", "leak_type"] == "procedural").all()
    # the first resolution comes first, is there whenever there is a resolution, and differs only after a recurrence
    assert p.loc[resolved, "first_resolved_day"].notna().all()
    both = p[["first_resolved_day", "resolved_day"]].dropna()
    assert (both["first_resolved_day"] <= both["resolved_day"]).all()
    reopened = p["first_resolved_day"].notna() & ~resolved
    assert p.loc[reopened, "recurred"].all()
    later = both["first_resolved_day"] < both["resolved_day"]
    assert p.loc[both.index[later], "recurred"].all()
    # localization and the first treatment aimed at the leak: after diagnosis and the first treatment, in the horizon
    assert p["localized_day"].notna().eq(p["leak_localized"]).all()
    for a, b in (("diagnosed_day", "localized_day"), ("first_treatment_day", "definitive_treatment_day")):
        both = p[[a, b]].dropna()
        assert (both[a] <= both[b] + 1e-9).all() and len(both) == p[b].notna().sum(), (a, b)
    assert (p[["localized_day", "definitive_treatment_day"]].fillna(0.0).max(axis=1) <= horizon).all()
    aimed = p[["n_targeted_patch", "n_fibrin_patch", "n_surgery", "n_embolization"]].sum(axis=1) > 0
    assert p["definitive_treatment_day"].notna().eq(aimed).all()
    # the first day of each kind of procedure: there exactly when the count is, never before the first treatment
    for day, count in (("first_surgery_day", "n_surgery"), ("first_embolization_day", "n_embolization")):
        assert p[day].notna().eq(p[count] > 0).all(), day
    for day in ("first_patch_day", "first_surgery_day", "first_embolization_day"):
        both = p[["first_treatment_day", day]].dropna()
        assert (both["first_treatment_day"] <= both[day] + 1e-9).all() and len(both) == p[day].notna().sum(), day


# With a catchment of 100,000 adults, a rate per 100,000 adults is a number of arrivals per year.
ARRIVALS_PER_YEAR = "[population.catchment]\nadults = 100_000\n[population.incidence_per_100k_per_year]\n"


def only(etiology: str, extra: str = "") -> str:
    rates = "\n".join(f"{e} = {100 if e == etiology else 0}" for e in
                      ("post_lp", "epidural", "spinal_surgery", "spontaneous"))
    return ONE_CENTER + ARRIVALS_PER_YEAR + f"{rates}\n" + extra


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, check=False)


def big_result(i: int) -> tuple[bytes, float]:
    """A task result larger than a pipe's buffer (64 KB)."""
    return b"x" * 1_000_000, time.time()


def group_outlives(leader_pid: int, seconds: float = 10.0) -> list[str]:
    """After the process `leader_pid` (started with start_new_session=True) was killed: the ids of processes of
    its group still alive `seconds` later, killed then so that no test leaves them behind."""
    import signal
    import subprocess
    import time

    deadline = time.time() + seconds
    while time.time() < deadline and subprocess.run(["pgrep", "-g", str(leader_pid)], capture_output=True).stdout:
        time.sleep(0.1)
    left = subprocess.run(["pgrep", "-g", str(leader_pid)], capture_output=True, text=True).stdout.split()
    for pid in left:
        os.kill(int(pid), signal.SIGKILL)
    return left
