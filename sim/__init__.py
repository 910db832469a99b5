"""csfsim: discrete-event simulation of the spinal CSF-leak care pathway (experienced vs low-volume centers).

Notebook API:
    import sim
    scenario = sim.load_scenario("scenarios/experienced_center.toml")
    result = sim.run(scenario, reps=20, seed=1)          # RunResult: .patients, .summary, .per_replication
    both = sim.compare(["scenarios/experienced_center.toml", "scenarios/low_volume_center.toml"], reps=20)
    why = sim.explain("scenarios/experienced_center.toml", "scenarios/low_volume_center.toml")  # .table
    sim.psa(...), sim.sensitivity(...), sim.unlimited_overrides(scenario)
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["CompareResult", "ExplainResult", "RunResult", "ScenarioError", "compare", "explain", "load_scenario",
           "psa", "run", "sensitivity", "unlimited_overrides"]
# Each name is loaded on first use, so that `import sim` (and `csfsim --help`) does not pay for pandas, SciPy and
# pyarrow; the first use of `sim.run` imports what it needs.
_LAZY = {"load_scenario": "sim.config.scenario", "ScenarioError": "sim.errors", "compare": "sim.runs.compare",
         "CompareResult": "sim.runs.compare", "run": "sim.runs.experiment", "RunResult": "sim.runs.experiment",
         "explain": "sim.runs.explain", "ExplainResult": "sim.runs.explain",
         "psa": "sim.runs.psa", "sensitivity": "sim.runs.psa", "unlimited_overrides": "sim.engines.choice"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
