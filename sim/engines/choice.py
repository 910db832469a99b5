"""Which engine runs a replication: the fast engine exactly when it gives the SimPy engine's results."""

from __future__ import annotations

from sim.config.parameters import RESOURCES, Scenario
from sim.config.schema import MAX_CAPACITY
from sim.errors import ScenarioError
from sim.model.rules import pathway_rules

ENGINES: tuple[str, ...] = ("auto", "simpy", "fast")


def capacity_unlimited(scenario: Scenario, n_patients: int) -> bool:
    """True when patients can neither queue nor affect one another, so the fast path gives SimPy's results:
    every resource of every center has a server for each patient and is always open (no session windows or
    closures) and none is session-booked (a list always waits for its session), and volume does not feed
    experience (which links patients through the center's case count)."""
    return (not pathway_rules(scenario).volume_feedback
            and all(spec.capacity >= n_patients and not spec.scheduled and not spec.session_booked
                    for c in scenario.centers for spec in c.resources.values()))


def unlimited_overrides(scenario: Scenario, capacity: int = MAX_CAPACITY) -> dict[str, int]:
    """`load_scenario` overrides that give every resource of every center `capacity` servers: the scenario made
    capacity-unlimited (for outcome-only questions, benchmarks and the equivalence tests)."""
    return {f"centers.{c.name}.resources.{r}.capacity": capacity for c in scenario.centers for r in RESOURCES}


def select_engine(scenario: Scenario, n_patients: int, engine: str, log_events: bool) -> str:
    """The engine to run one replication on. "auto" takes the fast path only when it gives exactly the SimPy
    engine's results (no capacity limit) and no event log is wanted; "fast" refuses a case it cannot do."""
    if engine not in ENGINES:
        raise ScenarioError("(run option)", "engine", engine, f"one of {', '.join(ENGINES)}")
    unlimited = capacity_unlimited(scenario, n_patients)
    if engine == "fast":
        if not unlimited:
            raise ScenarioError(scenario.source_file, "centers.*.resources.*", "limited or scheduled",
                                f"every capacity >= {n_patients} (the patients of this replication), no opening "
                                "schedules or sessions and volume_outcome off for the fast path; use engine auto or "
                                "simpy")
        if log_events:
            raise ScenarioError("(run option)", "engine", engine,
                                "no event log with the fast path (outcome-only: log_events=False, --no-events)")
        return "fast"
    if engine == "auto" and unlimited and not log_events:
        return "fast"
    return "simpy"
