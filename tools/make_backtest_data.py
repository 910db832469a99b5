"""Store whole-run results that `tests/engines/test_backtest.py` compares every later run against.

Run it only when a change is *meant* to alter results (a clinical rule, a draw), and say so in the commit message:
the back-test exists so that engine work (speed, refactoring) that should change nothing is caught if it does.
Each case is a shipped scenario with a few overrides, chosen to cover queues and abandonment, referrals,
schedules (ties at session openings), volume feedback and the prompt review of procedure-related leaks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.config.scenario import load_scenario  # noqa: E402
from sim.runs.replication import run_replication  # noqa: E402

DATA = ROOT / "tests" / "backtest"
SEED = 20261124
REPLICATIONS = (0, 1)
# name -> (scenario file relative to the repo, overrides)
CASES: dict[str, tuple[str, dict[str, object]]] = {
    "experienced": ("scenarios/experienced_center.toml", {}),
    "low_volume": ("scenarios/low_volume_center.toml", {}),
    # Tight capacity and double demand: long queues, patients whose leak closes while they wait.
    "low_volume_congested": ("scenarios/low_volume_center.toml", {
        "population.incidence_per_100k_per_year.spontaneous": 9.0,
        "population.incidence_per_100k_per_year.epidural": 12.0,
        "centers.district.resources.procedure_room.capacity": 1,
        "centers.district.resources.mri.capacity": 1,
        "centers.specialist.resources.myelography.capacity": 1,
    }),
    # The network as shipped before referral policies had patient groups (District East then referred every
    # etiology after one failed blood patch): the stored tables stay the reference for engine work.
    "network": ("scenarios/regional_network.toml", {"referral.district_east.after_failed_ebp_for": ["all"]}),
    "sessions_and_closures": ("scenarios/examples/sessions_and_closures.toml", {}),
    # Session-booked lists shared with other patients, under demand growth (the background grows too).
    "session_booked": ("scenarios/examples/congested_myelography.toml", {"population.demand.growth_per_year": 0.05}),
    "volume_feedback": ("scenarios/low_volume_center.toml", {"volume_outcome.enabled": True}),
}


def case_tables(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients and resources tables of the case's replications, with the SimPy engine (the reference)."""
    path, overrides = CASES[name]
    scenario = load_scenario(ROOT / path, overrides=overrides)
    results = [run_replication(scenario, SEED, rep, engine="simpy") for rep in REPLICATIONS]
    patients = pd.concat([r.patients for r in results], ignore_index=True)
    resources = pd.concat([r.resources for r in results], ignore_index=True)
    return patients, resources


def main() -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        patients, resources = case_tables(name)
        patients.to_csv(DATA / f"{name}_patients.csv.gz", index=False)
        resources.to_csv(DATA / f"{name}_resources.csv", index=False)
        print(f"{name}: {len(patients)} patients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
