"""Residual symptoms after a seal: days to recovery, cut at a recurrence or the horizon, the same in both engines,
and priced at their own utility."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.config.scenario import load_scenario
from sim.runs.replication import run_replication
from tests.helpers import check_invariants, only

UNLIMITED = "".join(f"[centers.c.resources.{r}]\ncapacity = 100000\n" for r in (
    "clinic", "mri", "myelography", "procedure_room", "theatre", "angiography"))
TREATMENTS = ["ebp", "targeted_patch", "fibrin_patch", "surgery", "embolization"]


def patients(write_toml, residual: str, extra: str = "", engine: str = "auto") -> pd.DataFrame:
    s = load_scenario(write_toml(only("spontaneous", UNLIMITED + "[clinical.residual_symptoms]\n" + residual
                                      + extra)))
    r = run_replication(s, 8, 0, engine=engine)
    check_invariants(r.patients, s.horizon_days)
    return r.patients


def test_every_seal_leaves_residual_days_to_recovery_or_the_horizon(write_toml):
    residual = 'probability_at_90_days = 1.0\nrecovery_days = { family = "fixed", value = 100.0 }\n'
    no_recurrence = ("[clinical.recurrence_probability]\nafter_spontaneous_patch = 0.0\nafter_surgery = 0.0\n"
                     "after_embolization = 0.0\n")
    p = patients(write_toml, residual, no_recurrence)
    sealed = p[p["resolved_by"].isin(TREATMENTS)]
    assert len(sealed) > 50 and sealed["residual_symptoms"].all()
    horizon = 1825.0
    assert np.allclose(sealed["residual_days"], np.minimum(100.0, horizon - sealed["resolved_day"]))
    assert (sealed["residual_at_horizon"] == (sealed["resolved_day"] + 100.0 > horizon)).all()
    others = p[~p["resolved_by"].isin(TREATMENTS)]
    assert not others["residual_symptoms"].any() and others["residual_days"].isna().all()


def test_a_recurrence_ends_the_residual_symptoms_and_both_engines_agree(write_toml):
    residual = 'probability_at_90_days = 0.5\nrecovery_days = { family = "fixed", value = 3000.0 }\n'
    recurring = "[clinical.recurrence_probability]\nafter_spontaneous_patch = 0.5\n"
    slow = patients(write_toml, residual, recurring, engine="simpy")
    fast = patients(write_toml, residual, recurring, engine="fast")
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=0, atol=1e-9)
    both = slow[slow["residual_symptoms"] & slow["recurred"]]
    assert len(both) > 10
    # a residual spell cut at the recurrence is shorter than its 3000 days, and over before the horizon ...
    first_spell = both["residual_days"] < 3000.0
    assert first_spell.all()
    # ... unless a later seal started another one that lasts to the horizon
    assert (~both["residual_at_horizon"] | (both["final_state"] == "resolved")).all()


def test_residual_days_cost_qalys_at_their_utility(write_toml):
    residual = 'probability_at_90_days = 1.0\nrecovery_days = { family = "fixed", value = 100.0 }\n'
    high = patients(write_toml, residual, "[utilities]\nresidual = 0.91\n")
    low = patients(write_toml, residual, "[utilities]\nresidual = 0.41\n")
    had = high["residual_symptoms"].to_numpy()
    assert had.sum() > 50
    assert np.array_equal(high["residual_days"].fillna(0), low["residual_days"].fillna(0))
    lost = (high["qaly"] - low["qaly"]).to_numpy()
    # half a utility point for each residual day (discounted, so a little less; none while RIH lasts)
    days = high["residual_days"].to_numpy()[had]
    assert (lost[had] >= 0).all() and (lost[had] <= 0.5 * days / 365.25 + 1e-12).all()
    # without a recurrence or RIH the blocks lay out exactly: nearly all of it (3.5% a year over at most 5 years)
    plain = (~high["recurred"] & ~high["rih"]).to_numpy()[had]
    assert plain.sum() > 20 and (lost[had][plain] >= 0.5 * days[plain] / 365.25 * 0.84).all()
    assert np.allclose(lost[~had], 0.0)
