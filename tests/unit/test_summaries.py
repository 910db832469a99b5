"""Per-replication summaries (sim/analysis/summaries.py) merge into exactly the km.csv and distributions.csv
computed over all patients at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.analysis.stats import distribution_table, replication_metrics
from sim.analysis.summaries import merged_distribution_table, merged_km_table, replication_outcomes, write_outcomes
from sim.analysis.survival import kaplan_meier, km_from_sorted, km_table
from sim.config.scenario import load_scenario
from sim.runs.experiment import run
from sim.runs.replication import run_replication
from tests.helpers import LOW_VOLUME, PERIOD, SCENARIOS


def _as_finalize_read_it(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """All patients as the old finalization read them: through Arrow, text columns as categoricals."""
    table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
    return table.to_pandas(strings_to_categorical=True)


def _write(tmp_path: Path, frames: list[pd.DataFrame], horizon: float) -> list[Path]:
    files = []
    for i, p in enumerate(frames):
        files.append(tmp_path / f"outcomes-{i:05d}.bin")
        write_outcomes(files[-1], replication_outcomes(p, horizon))
    return files


def _assert_same(reference: pd.DataFrame, merged: pd.DataFrame) -> None:
    reference = reference.astype({"group": str}).reset_index(drop=True)
    pd.testing.assert_frame_equal(reference, merged, check_exact=True, check_dtype=False)


@pytest.mark.parametrize("scenario_file", [LOW_VOLUME, SCENARIOS / "regional_network.toml"])
def test_merged_tables_equal_the_all_patients_tables(tmp_path, scenario_file):
    s = load_scenario(scenario_file, overrides={"run.follow_up_days": 300, "run.horizon_days": 1500,
                                                "run.warmup_days": 200})
    frames, metrics = [], []
    for rep in range(3):
        r = run_replication(s, 4, rep)
        frames.append(r.patients)
        metrics.append(replication_metrics(r.patients, r.resources, s.horizon_days))
    per_rep = pd.concat(metrics, ignore_index=True)
    files = _write(tmp_path, frames, s.horizon_days)
    everyone = _as_finalize_read_it(frames)
    assert not everyone["counted"].all()
    _assert_same(km_table(everyone, s.horizon_days), merged_km_table(files, s.horizon_days))
    _assert_same(distribution_table(everyone, per_rep), merged_distribution_table(files, per_rep))


def _synthetic(rep: int, n: int, rng: np.random.Generator, centers: list[str]) -> pd.DataFrame:
    """Patients with many tied days across replications (whole days), some never presenting or in warm-up."""
    onset = rng.integers(0, 50, n).astype(float)
    presented = np.where(rng.random(n) < 0.8, onset + rng.integers(0, 5, n), np.nan)
    diagnosed = np.where(rng.random(n) < 0.7, presented + rng.integers(0, 20, n), np.nan)
    resolved = np.where(rng.random(n) < 0.5, diagnosed + rng.integers(0, 30, n), np.nan)
    # some leaks close on their own before any diagnosis: the competing event of time to diagnosis
    closed = np.isnan(diagnosed) & ~np.isnan(presented) & (rng.random(n) < 0.4)
    resolved = np.where(closed, presented + rng.integers(0, 20, n), resolved)
    by = np.where(closed, "natural_course", np.where(np.isnan(resolved), "", "ebp"))
    return pd.DataFrame({
        "resolved_by": by,
        "replication": rep, "patient_id": np.arange(n), "center": rng.choice(centers, n),
        "home_center": rng.choice(centers[:1], n),
        "etiology": rng.choice(["post_lp", "spontaneous"], n), "onset_day": onset, "presented_day": presented,
        "diagnosed_day": diagnosed, "resolved_day": resolved, "counted": onset >= 3,
        "symptom_days": rng.integers(0, 100, n).astype(float), "waiting_days": np.where(rng.random(n) < 0.1, np.nan,
                                                                                       rng.random(n)),
        "n_consultations": rng.integers(0, 5, n), "n_ebp": rng.integers(0, 3, n),
    })


def test_merge_handles_ties_across_replications_late_groups_and_empty_replications(tmp_path):
    rng = np.random.default_rng(7)
    frames = [_synthetic(0, 300, rng, ["b", "a"]), _synthetic(1, 0, rng, ["a"]),
              _synthetic(2, 5, rng, ["c"]),  # a center first seen in a later replication
              _synthetic(3, 400, rng, ["a", "b", "c"])]
    frames[0].loc[0, "center"] = "b"  # so that first appearance ("b", "a", "c") is not alphabetical order
    per_rep = pd.DataFrame({"replication": [0, 1], "metric": ["m", "m"], "group": ["all", "all"],
                            "value": [1.0, 2.0]})
    files = _write(tmp_path, frames, 80.0)
    everyone = _as_finalize_read_it(frames)
    merged_km = merged_km_table(files, 80.0)
    _assert_same(km_table(everyone, 80.0), merged_km)
    assert list(merged_km[merged_km["group_by"] == "center"]["group"].unique()) == ["b", "a", "c"]
    _assert_same(distribution_table(everyone, per_rep), merged_distribution_table(files, per_rep))


def test_km_from_sorted_is_kaplan_meier():
    rng = np.random.default_rng(3)
    d = rng.integers(0, 30, 500).astype(float)
    e = rng.random(500) < 0.6
    order = np.argsort(d, kind="stable")
    pd.testing.assert_frame_equal(kaplan_meier(d, e), km_from_sorted(d[order], e[order]), check_exact=True)


def test_no_patient_in_care_gives_an_empty_km_table(tmp_path):
    p = _synthetic(0, 10, np.random.default_rng(1), ["a"]).assign(presented_day=np.nan)
    files = _write(tmp_path, [p], 80.0)
    assert merged_km_table(files, 80.0).empty
    dist = merged_distribution_table(files, pd.DataFrame(columns=["replication", "metric", "group", "value"]))
    assert list(dist["n"]) == [0] * 6


def test_run_folder_tables_are_the_bytes_of_the_all_patients_tables(tmp_path):
    """The whole pipeline (worker summaries, per-event pieces joined, parallel merge) against the former
    finalization: every patient read back from patients.parquet, tables computed at once and written by pandas."""
    s = load_scenario(SCENARIOS / "regional_network.toml", overrides={**PERIOD, "run.horizon_days": 1000})
    r = run(s, reps=3, seed=2, jobs=2, out=tmp_path / "r", log_events=False, progress=False)
    columns = ["onset_day", "presented_day", "diagnosed_day", "resolved_day", "resolved_by", "center",
               "home_center", "etiology", "counted", "symptom_days", "waiting_days", "n_consultations", "n_ebp"]
    everyone = pq.read_table(tmp_path / "r" / "patients.parquet", columns=columns).to_pandas(
        strings_to_categorical=True)
    km = km_table(everyone, s.horizon_days).to_csv(index=False).encode()
    assert (tmp_path / "r" / "km.csv").read_bytes() == km
    dist = distribution_table(everyone, r.per_replication).to_csv(index=False).encode()
    assert (tmp_path / "r" / "distributions.csv").read_bytes() == dist


def test_km_csv_carries_the_incidence_of_diagnosis_with_natural_closure_competing():
    """For diagnosis, km.csv's incidence is the Aalen-Johansen one (a leak closing on its own first competes):
    it equals `survival.cumulative_incidence` of the same patients and lies below 1 - the cause-specific
    Kaplan-Meier; for resolution (no competing event) it is 1 - Kaplan-Meier."""
    from sim.analysis.survival import cumulative_incidence, time_to_event

    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 900})
    p = run_replication(s, 5, 0).patients
    km = km_table(p, s.horizon_days)
    diag = km[(km["event"] == "diagnosis") & (km["group"] == "all")]
    day = float(diag["days"].iloc[300])
    duration, observed, competing = time_to_event(p, "diagnosis", s.horizon_days)
    cause = np.where(observed, 1, np.where(competing, 2, 0))
    assert competing.any()
    assert diag["incidence"].iloc[300] == pytest.approx(cumulative_incidence(duration, cause, 1, day), abs=1e-12)
    assert (diag["incidence"] <= 1.0 - diag["survival"] + 1e-12).all()
    assert (diag["incidence"].iloc[-1] < 1.0 - diag["survival"].iloc[-1] - 0.01)
    res = km[(km["event"] == "resolution") & (km["group"] == "all")]
    assert np.allclose(res["incidence"], 1.0 - res["survival"], atol=1e-12)
