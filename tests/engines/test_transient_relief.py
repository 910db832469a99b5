"""A blind patch that does not seal may still relieve the symptoms for a while (`clinical.ebp_transient_relief`):
those days are free of symptoms, the next step waits until the symptoms return, and both engines agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.config.parameters import EBP_SUCCESS_KEYS
from sim.config.scenario import load_scenario
from sim.runs.replication import run_replication
from tests.helpers import check_invariants, only

RELIEF_DAYS = 40.0
UNLIMITED = "".join(f"[centers.c.resources.{r}]\ncapacity = 100000\n" for r in (
    "clinic", "mri", "myelography", "procedure_room", "theatre", "angiography"))
# Every blind patch fails to seal; no RIH (whose misreading adds blind patches) and no recurrence.
BLIND_PATCHES_NEVER_SEAL = (
    "[clinical.ebp_first_success]\n" + "".join(f"{k} = 0.0\n" for k in EBP_SUCCESS_KEYS)
    + "[clinical.ebp_repeat_success]\n" + "".join(f"{k} = 0.0\n" for k in EBP_SUCCESS_KEYS)
    + "[clinical.rih_probability]\nafter_spontaneous_sealing = 0.0\nafter_embolization = 0.0\n"
    + "[clinical.recurrence_probability]\nafter_spontaneous_patch = 0.0\nafter_surgery = 0.0\n"
    + "after_embolization = 0.0\n")


def scenario(write_toml, relief: float):
    return load_scenario(write_toml(only("spontaneous", UNLIMITED + BLIND_PATCHES_NEVER_SEAL
                                         + "[clinical.ebp_transient_relief]\n"
                                         + "".join(f"{k} = {relief}\n" for k in EBP_SUCCESS_KEYS)
                                         + "[clinical.transient_relief_days]\n"
                                         + f'all = {{ family = "fixed", value = {RELIEF_DAYS} }}\n')))


def test_each_relief_is_symptom_free_and_the_next_step_waits_for_the_relapse(write_toml):
    s = scenario(write_toml, 1.0)
    r = run_replication(s, 5, 0, log_events=True, engine="simpy")
    p = r.patients
    check_invariants(p, s.horizon_days)
    # Every blind patch failed and relieved: one relief each.
    assert (p["n_transient_reliefs"] == p["n_ebp"]).all() and p["n_ebp"].sum() > 100
    # Sealed later by a definitive treatment: symptoms from onset to the seal, less the reliefs.
    sealed = p[p["resolved_by"].isin(["targeted_patch", "fibrin_patch", "surgery", "embolization"])
               & (p["n_ebp"] > 0)]
    assert len(sealed) > 20
    expected = sealed["resolved_day"] - sealed["onset_day"] - RELIEF_DAYS * sealed["n_transient_reliefs"]
    assert np.allclose(sealed["symptom_days"], expected, atol=1e-9)
    # In the event log each relapse comes the relief's length after a procedure of the same patient ended.
    relapses = r.events[r.events["activity"] == "relapse"]
    assert len(relapses) > 50
    uses = r.resource_uses
    patch_ends = uses[uses["resource"] == "procedure_room"].groupby("patient_id")["end_day"].apply(list)
    for pid, day in zip(relapses["patient_id"], relapses["day"], strict=True):
        assert min(abs(day - RELIEF_DAYS - end) for end in patch_ends[pid]) < 1e-9


def test_a_leak_closing_during_a_relief_is_resolved_when_the_relief_began(write_toml):
    """Its symptoms ended then and never came back: the resolution day is the relief's start, and the symptom
    days of every resolved patient are onset to resolution less the reliefs that ran their course."""
    s = scenario(write_toml, 1.0)
    p = pd.concat([run_replication(s, 5, rep).patients for rep in range(3)])
    p = p[p["final_state"] == "resolved"]
    gap = p["resolved_day"] - p["onset_day"] - p["symptom_days"]
    whole = np.isclose(gap, RELIEF_DAYS * p["n_transient_reliefs"], atol=1e-9)
    cut_short = np.isclose(gap, RELIEF_DAYS * (p["n_transient_reliefs"] - 1), atol=1e-9) & \
        (p["resolved_by"] == "conservative") & (p["n_transient_reliefs"] > 0)
    assert (whole | cut_short).all() and cut_short.sum() >= 5


def test_a_relapse_brings_the_patient_back_to_the_clinic(write_toml):
    """After each relapse the next resource she uses is the clinic (unless the leak closes before any)."""
    r = run_replication(scenario(write_toml, 1.0), 5, 0, log_events=True, engine="simpy")
    relapses = r.events[r.events["activity"] == "relapse"]
    uses = r.resource_uses.sort_values(["patient_id", "request_day"])
    by_patient = {pid: g for pid, g in uses.groupby("patient_id")}
    first_after = []
    for pid, day in zip(relapses["patient_id"], relapses["day"], strict=True):
        later = by_patient[pid][by_patient[pid]["request_day"] >= day - 1e-9]
        if len(later):
            first_after.append(later["resource"].iloc[0])
    assert len(first_after) > 50 and set(first_after) == {"clinic"}


def test_without_relief_a_failed_patch_leads_straight_on(write_toml):
    p = run_replication(scenario(write_toml, 0.0), 5, 0).patients
    assert p["n_ebp"].sum() > 100 and (p["n_transient_reliefs"] == 0).all()


@pytest.mark.parametrize("relief", [0.5, 1.0])
def test_both_engines_agree_patient_by_patient(write_toml, relief):
    s = scenario(write_toml, relief)
    fast = run_replication(s, 9, 1, engine="fast").patients
    simpy = run_replication(s, 9, 1, engine="simpy").patients
    assert fast["n_transient_reliefs"].sum() > 50
    pd.testing.assert_frame_equal(fast, simpy)
