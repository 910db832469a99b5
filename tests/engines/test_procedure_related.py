"""Procedure-related headaches: the procedural team books the patch, severity sets the conservative window, and
both engines agree on it patient by patient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.config.scenario import load_scenario
from sim.runs.replication import run_replication
from tests.helpers import check_invariants, only

# Fixed delays, so that the days of a patient's pathway can be computed by hand; capacity unlimited (fast path).
FIXED = """
[centers.c.resources.clinic]
capacity = 100000
booking_days = { family = "fixed", value = 10.0 }
service_days = { family = "fixed", value = 0.1 }
[centers.c.resources.procedure_room]
capacity = 100000
booking_days = { family = "fixed", value = 30.0 }
service_days = { family = "fixed", value = 0.25 }
[centers.c.resources.mri]
capacity = 100000
[centers.c.resources.myelography]
capacity = 100000
[centers.c.resources.theatre]
capacity = 100000
[centers.c.resources.angiography]
capacity = 100000
[population.iatrogenic_review_days]
all = { family = "fixed", value = 0.5 }
[clinical.procedural_patch_booking_days]
all = { family = "fixed", value = 0.5 }
[clinical.conservative_days]
epidural = { family = "fixed", value = 4.0 }
[clinical.conservative_days_severe]
epidural = { family = "fixed", value = 1.0 }
[population.self_limiting_probability]
epidural = 0.0
"""


def patients(write_toml, extra: str = "", engine: str = "auto", fixed: str = FIXED) -> pd.DataFrame:
    s = load_scenario(write_toml(only("epidural", fixed + extra)))
    r = run_replication(s, 4, 0, engine=engine)
    check_invariants(r.patients, s.horizon_days)
    return r.patients


def test_the_team_patches_without_the_procedure_rooms_booking_and_severity_sets_the_window(write_toml):
    p = patients(write_toml)
    treated = p[p["first_treatment_day"].notna() & (p["n_consultations"] == 1)]
    assert len(treated) > 100 and treated["severe_headache"].any() and (~treated["severe_headache"]).any()
    # review 0.5 d + consultation 0.1 d to the diagnosis; then the window, the team's booking 0.5 d, the patch 0.25 d
    assert np.allclose(treated["diagnosed_day"] - treated["presented_day"], 0.6)
    window = np.where(treated["severe_headache"], 1.0, 4.0)
    assert np.allclose(treated["first_treatment_day"] - treated["diagnosed_day"], window + 0.5 + 0.25)


def test_the_teams_booking_delay_is_what_the_patch_waits(write_toml):
    """The team's booking is its own parameter: set to the room's 30 days, the patch waits them."""
    team = '[clinical.procedural_patch_booking_days]\nall = { family = "fixed", value = 0.5 }'
    assert team in FIXED
    p = patients(write_toml, fixed=FIXED.replace(team, team.replace("0.5", "30.0")))
    treated = p[p["first_treatment_day"].notna() & (p["n_consultations"] == 1)]
    window = np.where(treated["severe_headache"], 1.0, 4.0)
    assert len(treated) > 100
    assert np.allclose(treated["first_treatment_day"] - treated["diagnosed_day"], window + 30.0 + 0.25)


@pytest.mark.parametrize("severe", [0.0, 1.0])
def test_severity_share_is_drawn_per_patient(write_toml, severe):
    p = patients(write_toml, f"[population.severe_headache_probability]\nepidural = {severe}\n")
    assert p["severe_headache"].mean() == severe


def test_severity_does_not_change_anyone_elses_luck(write_toml):
    """Severity has a stream of its own: changing its share moves no other patient attribute or draw."""
    a = patients(write_toml, "[population.severe_headache_probability]\nepidural = 0.2\n")
    b = patients(write_toml, "[population.severe_headache_probability]\nepidural = 0.8\n")
    for col in ("onset_day", "presented_day", "diagnosed_day"):
        assert a[col].equals(b[col])
    same = a["severe_headache"] == b["severe_headache"]
    assert same.any() and (~same).any()
    pd.testing.assert_frame_equal(a[same], b[same])


def test_both_engines_agree_with_early_patches_that_fail_more(write_toml):
    """Early patches (within threshold_days of onset) with a large failure odds ratio: the SimPy engine evaluates
    the rule at each day, the fast path per time band; the patients are the same."""
    extra = '[clinical.early_ebp]\nthreshold_days = 2.0\nfailure_odds_ratio = 20.0\n'
    window = '[clinical.conservative_days_severe]\nepidural = { family = "fixed", value = 1.0 }'
    fixed = FIXED.replace(window, window.replace("1.0", "0.0"))
    slow = patients(write_toml, extra, engine="simpy", fixed=fixed)
    fast = patients(write_toml, extra, engine="fast", fixed=fixed)
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=0, atol=1e-9)
    severe = slow[slow["severe_headache"] & slow["first_treatment_day"].notna()]
    mild = slow[~slow["severe_headache"] & slow["first_treatment_day"].notna()]
    # severe ones are patched about 1.9 days after onset (early), mild ones about 4.9 (late): more repeats early
    assert (severe["n_ebp"] >= 2).mean() > (mild["n_ebp"] >= 2).mean() + 0.2
