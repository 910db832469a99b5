"""Every shipped scenario file validates and runs one short replication cleanly."""

from __future__ import annotations

import pytest

from sim.config.scenario import load_scenario
from sim.runs.replication import run_replication
from tests.helpers import SCENARIOS, check_invariants

SHIPPED = sorted(p for p in SCENARIOS.rglob("*.toml") if p.name != "base.toml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SCENARIOS)))
def test_shipped_scenario_runs(path):
    s = load_scenario(path, overrides={"run.horizon_days": 730})
    assert s.name and s.description
    r = run_replication(s, 1, 0)
    check_invariants(r.patients, 730)
