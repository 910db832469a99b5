"""Every shipped scenario file validates and runs one short replication cleanly."""

from __future__ import annotations

import pytest

from sim.config.scenario import load_scenario
from sim.runs.replication import run_replication
from tests.helpers import PERIOD, SCENARIOS, check_invariants

SHIPPED = sorted(p for p in SCENARIOS.rglob("*.toml") if p.name != "base.toml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_shipped_scenario_runs(path):
    s = load_scenario(path, overrides={**PERIOD, "run.horizon_days": 730})
    assert s.name and s.description
    r = run_replication(s, 1, 0)
    check_invariants(r.patients, 730)


def test_direct_referral_sends_spontaneous_leaks_to_the_specialist_and_the_rest_to_the_district():
    s = load_scenario(SCENARIOS / "routes" / "direct_referral.toml", overrides={**PERIOD, "run.horizon_days": 730})
    p = run_replication(s, 1, 0).patients
    first = p.groupby("etiology")["home_center"].agg(set)
    assert first["spontaneous"] == {"specialist"}
    assert all(first[e] == {"district"} for e in ("post_lp", "epidural", "spinal_surgery"))


def test_the_upgraded_district_keeps_leak_surgery_and_embolization_at_the_specialist():
    s = load_scenario(SCENARIOS / "routes" / "upgraded_district.toml")
    district = s.center("district").profile
    usual = load_scenario(SCENARIOS / "low_volume_center.toml").center("district").profile
    assert district.imaging_technique == "refined" and district.offers_targeted_patch
    assert not (district.offers_leak_surgery or district.offers_embolization)
    assert district.recognition_probability_spontaneous > usual.recognition_probability_spontaneous
