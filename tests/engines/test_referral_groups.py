"""Referral policies limited to patient groups, on whole runs: a spontaneous-only policy moves spontaneous
patients and leaves every procedure-related patient exactly where she was (common random numbers, capacity
unlimited so that patients cannot affect one another through queues)."""

from __future__ import annotations

import pandas as pd

from sim.config.scenario import load_scenario
from sim.engines.choice import unlimited_overrides
from sim.runs.replication import run_replication
from tests.helpers import LOW_VOLUME, PERIOD

SEED = 11


def patients(policy: dict) -> pd.DataFrame:
    unlimited = unlimited_overrides(load_scenario(LOW_VOLUME))
    scenario = load_scenario(LOW_VOLUME, overrides={**unlimited, **PERIOD, "run.horizon_days": 1095.0, **policy})
    return run_replication(scenario, SEED, 0).patients.set_index("patient_id")


def referred_share(p: pd.DataFrame, etiology: str) -> float:
    return float((p.loc[p["etiology"] == etiology, "n_referrals"] > 0).mean())


def test_spontaneous_only_policy_moves_spontaneous_referrals_and_no_one_else():
    off = patients({})
    only = patients({"referral.district.after_failed_ebp": 1,
                     "referral.district.after_failed_ebp_for": ["spontaneous"]})
    everyone = patients({"referral.district.after_failed_ebp": 1})
    assert referred_share(only, "spontaneous") > referred_share(off, "spontaneous") + 0.05
    iatrogenic = off["etiology"] != "spontaneous"
    assert iatrogenic.sum() > 300
    pd.testing.assert_frame_equal(only[iatrogenic], off[iatrogenic])  # patient by patient, every column
    # the same policy for every group is what moved post-LP and epidural patients before groups existed
    for etiology in ("post_lp", "epidural"):
        assert referred_share(everyone, etiology) > referred_share(off, etiology) + 0.02
    spontaneous = off["etiology"] == "spontaneous"
    pd.testing.assert_frame_equal(everyone[spontaneous], only[spontaneous])
