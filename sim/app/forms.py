"""Form fields generated from the parameter schema (scenarios/base.toml): one `Field` per parameter leaf, with
its unit, accepted range, choices, grade and source, so that the web app follows every later model change.

Nothing here imports Streamlit: the fields are plain data, rendered by `sim.app.widgets`, and checked by the
same `build_scenario` as the command line (the app never repeats a rule of the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.config.distributions import FAMILIES, Distribution
from sim.config.parameters import Scenario
from sim.config.schema import MAX_ADULTS, MAX_DAYS, UTILITY_RANGE, Param, flatten

# Leaves outside these tables are set per center (profiles, centers) or are not parameters (uncertainty).
NOT_SCENARIO_WIDE = ("profiles", "centers", "uncertainty")
# What a planner edits first: the region (catchment, demand) and, per center, capacity and referral rules.
REGION_PREFIXES = ("population.catchment.", "population.incidence_per_100k_per_year.", "population.demand.",
                   "run.horizon_days")
CAPACITY_PREFIX = "resources."
REFERRAL_PREFIX = "referral."
# Widget bounds per unit (the schema's own check, sim.config.schema.check_value, has the last word).
_FLOAT_RANGE: dict[str, tuple[float | None, float | None]] = {
    "probability": (0.0, 1.0), "share": (0.0, 1.0), "fraction": (-1.0, 1.0), "utility": UTILITY_RANGE,
    "per_year": (0.0, None), "per_100k_per_year": (0.0, None), "per_week": (0.0, None), "cost": (0.0, None),
    "ratio": (0.0, None), "days": (0.0, MAX_DAYS),
}
UNIT_LABELS = {"probability": "probability 0-1", "share": "share 0-1", "per_year": "per year",
               "per_100k_per_year": "per 100,000 adults a year", "per_week": "per week", "days": "days",
               "count": "count", "adults": "adults", "fraction": "fraction -1 to 1", "cost": "cost",
               "utility": "utility", "ratio": "ratio", "windows": "day windows", "groups": "patient groups"}
GRADE_NAMES = {"H": "high", "M": "moderate", "L": "low (placeholder or weak evidence: vary it)",
               "-": "setting, not evidence"}


@dataclass(frozen=True, slots=True)
class Field:
    """One editable parameter: `path` is where a scenario file sets it (e.g. centers.district.resources.mri.capacity),
    `value` what it is now, in the form a widget shows (a distribution as (family, {parameter: value}))."""

    path: str
    unit: str
    kind: str  # float, int, bool, choice, groups, distribution, windows
    value: Any
    grade: str
    source: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def section(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""

    @property
    def label(self) -> str:
        unit = UNIT_LABELS.get(self.unit)
        text = self.name.replace("_", " ")
        return f"{text} ({unit})" if unit and self.kind not in ("bool", "choice") else text

    @property
    def help(self) -> str:
        """Shown on hover: the unit, the grade of the evidence and the source, as base.toml gives them."""
        return f"{self.path} · unit {self.unit} · grade {self.grade}: {GRADE_NAMES.get(self.grade, self.grade)}. " \
               f"Source: {self.source or 'none given'}"

    def to_toml_value(self, shown: Any) -> Any:
        """A widget's value as a scenario file writes it."""
        if self.kind == "distribution":
            family, params = shown
            return {"family": family, **{k: float(v) for k, v in params.items()}}
        if self.kind == "groups":
            return list(shown)
        if self.kind == "windows":
            return [list(w) for w in shown]
        if self.kind == "int":
            return int(shown)
        if self.kind == "float":
            return float(shown)
        return shown


def field_for(path: str, param: Param) -> Field:
    """The form field of one parameter leaf."""
    unit, value = param.unit, param.value
    common = {"path": path, "unit": unit, "grade": param.grade, "source": param.source, "choices": param.choices}
    if isinstance(value, Distribution):
        return Field(kind="distribution", value=(value.family, dict(value.params)), minimum=0.0, **common)
    if unit == "flag":
        return Field(kind="bool", value=bool(value), **common)
    if unit == "choice":
        return Field(kind="choice", value=value, **common)
    if unit == "groups":
        return Field(kind="groups", value=tuple(value), **common)
    if unit == "windows":
        return Field(kind="windows", value=tuple(tuple(w) for w in value), **common)
    if unit == "count":
        return Field(kind="int", value=int(value), minimum=0, **common)
    if unit == "adults":
        return Field(kind="int", value=int(value), minimum=1, maximum=MAX_ADULTS, **common)
    lo, hi = _FLOAT_RANGE[unit]
    return Field(kind="float", value=float(value), minimum=lo, maximum=hi, **common)


def scenario_fields(scenario: Scenario) -> list[Field]:
    """Every scenario-wide parameter (population, clinical, imaging, economics, ...) with its value here."""
    tree = {k: v for k, v in scenario.resolved.items() if k not in NOT_SCENARIO_WIDE}
    return [field_for(path, p) for path, p in flatten(tree).items()]


def center_fields(scenario: Scenario, center: str) -> list[Field]:
    """Every parameter of one center: its profile's, with what the center sets apart from it."""
    meta = scenario.resolved["centers"][center]
    own = flatten(meta["overrides"])
    profile = flatten(scenario.resolved["profiles"][meta["profile"]])
    return [field_for(f"centers.{center}.{path}", own.get(path, p)) for path, p in profile.items()]


def sections(fields: list[Field]) -> dict[str, list[Field]]:
    """Fields by the table they sit in, in schema order."""
    out: dict[str, list[Field]] = {}
    for f in fields:
        out.setdefault(f.section, []).append(f)
    return out


def is_region(f: Field) -> bool:
    return f.path.startswith(REGION_PREFIXES)


def center_part(f: Field) -> str:
    """Which tab of a center's form a field belongs to: capacity, referral rules or clinical practice."""
    inner = f.path.split(".", 2)[2]
    if inner.startswith(CAPACITY_PREFIX):
        return "capacity"
    if inner.startswith(REFERRAL_PREFIX):
        return "referral"
    return "practice"


def family_parameters(family: str, mean_days: float) -> dict[str, float]:
    """Starting parameters when a planner switches a duration to another family: the same mean where the family
    has a location parameter, a moderate spread otherwise (the planner then sets them)."""
    m = max(mean_days, 0.0)
    start = {"value": m, "mean": m, "median": m, "scale": m, "mode": m, "low": 0.0, "high": 2 * m,
             "sigma": 0.5, "sd": m / 2, "shape": 1.5}
    return {name: start[name] for name in FAMILIES[family]}
