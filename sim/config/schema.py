"""The parameter schema: scenarios/base.toml, whose every leaf carries a value, a unit, a grade and a source.

A scenario may set only the leaves base.toml has; each leaf's unit says which values it accepts (`check_value`).
`sim.config.scenario` merges a scenario file onto this tree; `sim.config.uncertainty` reads its ranges.
"""

from __future__ import annotations

import copy
import math
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.config.distributions import Distribution, parse_distribution
from sim.errors import ScenarioError

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_FILE = Path(os.environ.get("CSFSIM_BASE", REPO_ROOT / "scenarios" / "base.toml"))

UNITS = ("probability", "share", "per_year", "per_100k_per_year", "per_week", "days", "count", "adults", "flag",
         "choice", "groups", "fraction", "windows", "cost", "utility", "ratio")
RATE_UNITS = ("per_year", "per_100k_per_year")  # events per year; the second per 100,000 adults of the catchment
MAX_WINDOWS = 1000
NON_NEGATIVE = {"per_year": "a non-negative rate per year",
                "per_100k_per_year": "a non-negative rate per 100,000 adults per year",
                "per_week": "a non-negative number a week", "cost": "a non-negative cost",
                "ratio": "a positive ratio (an odds ratio, 1 = no effect)"}
UTILITY_RANGE = (-0.6, 1.0)  # EQ-5D index: worse-than-death values exist, better than full health does not
GRADES = ("H", "M", "L", "-")
# Upper bounds that keep a typo from asking for an absurd model.
MAX_COUNT = 50
MAX_ADULTS = 10_000_000_000  # more adults than the world holds is a typo
MAX_CAPACITY = 100_000
MAX_SESSIONS_PER_WEEK = 70  # ten a day
MAX_FRONT_DOOR_VISITS = 12  # the uniforms drawn per patient for her front-door visits
MAX_BACKGROUND_PER_WEEK = 10_000  # other patients' requests a week, per list
MAX_BACKGROUND_REQUESTS = 20_000_000  # other patients drawn per replication: about 1 GB with their lists
MAX_SLOTS_PER_SESSION = 1000
MAX_DAYS = 365.25 * 200
MAX_EXTENDS_DEPTH = 20
CAPACITY_EXPECTED = f"a whole number of servers from 1 to {MAX_CAPACITY}"
# Hard ceiling on run.max_expected_patients: the guard is only a guard if it cannot be raised without limit.
MAX_PATIENTS_CEILING = 3_000_000  # about 6 KB of draws per patient: 3M is about 18 GB of a 24 GB machine


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter leaf with its provenance. `weak` marks grade L: vary it in sensitivity runs."""

    value: Any
    unit: str
    grade: str
    source: str
    choices: tuple[str, ...] = ()

    @property
    def weak(self) -> bool:
        return self.grade == "L"


# ----------------------------------------------------------------------------------------------- reading TOML
def read_toml(path: Path, shown: str) -> dict[str, Any]:
    try:
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):  # a FIFO with no writer would hang the read
            raise ScenarioError(shown, "(file)", str(path), "a regular file (not a pipe, device or socket)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(shown, "(file)", str(path), "an existing scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(shown, "(file)", str(path), "a file, not a directory") from None
    except OSError as err:
        raise ScenarioError(shown, "(file)", str(path), f"a readable file ({err.strerror})") from None
    except ValueError:  # e.g. an embedded NUL character in the path
        raise ScenarioError(shown, "(file)", str(path), "a valid file path") from None
    if len(data) > 5_000_000:
        raise ScenarioError(shown, "(file)", f"{len(data)} bytes", "a scenario file under 5 MB")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is not TOML
    except UnicodeDecodeError:
        raise ScenarioError(shown, "(file)", "binary data", "a UTF-8 text TOML file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(shown, "(syntax)", str(err), "valid TOML") from None
    except RecursionError:
        raise ScenarioError(shown, "(syntax)", "deeply nested tables", "valid TOML of sane depth") from None


def is_leaf(node: object) -> bool:
    return isinstance(node, dict) and "value" in node and "unit" in node


def parse_base(raw: dict[str, Any], file: str, prefix: str = "") -> dict[str, Any]:
    """Turn base.toml into a tree of dicts with Param leaves, checking the base itself."""
    tree: dict[str, Any] = {}
    for key, node in raw.items():
        path = f"{prefix}{key}"
        if is_leaf(node):
            unit = node["unit"]
            if unit not in UNITS:
                raise ScenarioError(file, f"{path}.unit", unit, f"one of {', '.join(UNITS)}")
            grade = node.get("grade", "")
            if grade not in GRADES:
                raise ScenarioError(file, f"{path}.grade", grade, f"one of {', '.join(GRADES)}")
            choices = tuple(node.get("choices", ()))
            proto = Param(None, unit, grade, str(node.get("source", "")), choices)
            tree[key] = Param(check_value(node["value"], proto, file, path), unit, grade, proto.source, choices)
        elif isinstance(node, dict):
            tree[key] = parse_base(node, file, path + ".")
        else:
            raise ScenarioError(file, path, node, "a parameter table { value, unit, grade, source }")
    return tree


# ----------------------------------------------------------------------------------------------- value checks
def number(value: object, file: str, field: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(file, field, value, what)
    if not math.isfinite(value):
        raise ScenarioError(file, field, value, f"a finite number ({what})")
    return float(value)


def check_value(value: object, proto: Param, file: str, field: str) -> Any:
    """Validate one leaf value against the unit of its base parameter and return it normalised."""
    unit = proto.unit
    if unit in ("probability", "share"):
        v = number(value, file, field, "a probability between 0 and 1")
        if not 0.0 <= v <= 1.0:
            raise ScenarioError(file, field, value, "a probability between 0 and 1")
        return v
    if unit in NON_NEGATIVE:
        v = number(value, file, field, NON_NEGATIVE[unit])
        if v < 0 or (unit == "ratio" and not 0 < v < math.inf):
            raise ScenarioError(file, field, value, NON_NEGATIVE[unit])
        return v
    if unit == "days":
        if isinstance(value, dict) or isinstance(proto.value, Distribution):
            if not isinstance(proto.value, (Distribution, type(None))):
                raise ScenarioError(file, field, value, "a number of days")
            return parse_distribution(value, file, field)
        v = number(value, file, field, "a non-negative number of days")
        if not 0 <= v <= MAX_DAYS:
            raise ScenarioError(file, field, value, f"a number of days between 0 and {MAX_DAYS:g}")
        return v
    if unit == "count":
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(file, field, value, "a whole number")
        if value < 0:  # a capacity's own range is told at once, rather than "non-negative" and then "from 1"
            raise ScenarioError(file, field, value, CAPACITY_EXPECTED if field.endswith(".capacity")
                                else "a non-negative whole number")
        return value
    if unit == "adults":
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ADULTS:
            raise ScenarioError(file, field, value, f"a whole number of adults from 1 to {MAX_ADULTS:,}")
        return value
    if unit == "flag":
        if not isinstance(value, bool):
            raise ScenarioError(file, field, value, "true or false")
        return value
    if unit == "fraction":
        v = number(value, file, field, "a fraction between -1 and 1")
        if not -1.0 <= v <= 1.0:
            raise ScenarioError(file, field, value, "a fraction between -1 and 1")
        return v
    if unit == "windows":
        return parse_windows(value, file, field)
    if unit == "utility":
        lo, hi = UTILITY_RANGE
        v = number(value, file, field, f"a utility between {lo:g} and {hi:g}")
        if not lo <= v <= hi:
            raise ScenarioError(file, field, value, f"a utility between {lo:g} and {hi:g}")
        return v
    if unit == "choice":
        if value not in proto.choices:
            raise ScenarioError(file, field, value, f"one of {', '.join(proto.choices)}")
        return value
    if unit == "groups":
        return parse_groups(value, proto.choices, file, field)
    raise AssertionError(unit)  # pragma: no cover - units are checked when base.toml is read


def parse_groups(value: object, choices: tuple[str, ...], file: str, field: str) -> tuple[str, ...]:
    """A non-empty list of patient-group names, each one of `choices`; repeats dropped, order kept."""
    expected = f"a non-empty list of patient groups, each one of {', '.join(choices)}"
    if not isinstance(value, list) or not value:
        raise ScenarioError(file, field, value, expected)
    for name in value:
        if name not in choices:
            raise ScenarioError(file, field, name, expected)
    return tuple(dict.fromkeys(value))


def parse_windows(value: object, file: str, field: str) -> tuple[tuple[float, float], ...]:
    expected = "a list of [start, end] day pairs with 0 <= start < end, e.g. [[0, 1], [3, 4]]"
    if not isinstance(value, list) or len(value) > MAX_WINDOWS:
        raise ScenarioError(file, field, value, expected)
    out = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ScenarioError(file, field, value, expected)
        a = number(pair[0], file, field, expected)
        b = number(pair[1], file, field, expected)
        if not 0 <= a < b:
            raise ScenarioError(file, field, value, expected)
        out.append((a, b))
    return tuple(sorted(out))



_BASE_CACHE: dict[Path, dict[str, Any]] = {}
_BASE_UNCERTAINTY: dict[Path, Any] = {}


def base_tree() -> dict[str, Any]:
    """The parsed base parameter tree (a fresh deep copy each call)."""
    if BASE_FILE not in _BASE_CACHE:
        raw = read_toml(BASE_FILE, str(BASE_FILE))
        _BASE_UNCERTAINTY[BASE_FILE] = raw.pop("uncertainty", {})  # not parameters: checked by sim.config.uncertainty
        _BASE_CACHE[BASE_FILE] = parse_base(raw, str(BASE_FILE))
    return copy.deepcopy(_BASE_CACHE[BASE_FILE])


def base_uncertainty() -> Any:
    """The raw [uncertainty] table of base.toml (a fresh deep copy each call)."""
    base_tree()
    return copy.deepcopy(_BASE_UNCERTAINTY[BASE_FILE])


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Param]:
    """Dotted path -> Param for every leaf of a resolved tree (for manifests, docs and diffs)."""
    out: dict[str, Param] = {}
    for key, node in tree.items():
        path = f"{prefix}{key}"
        if isinstance(node, Param):
            out[path] = node
        elif isinstance(node, dict):
            out.update(flatten(node, path + "."))
    return out


def to_jsonable(tree: dict[str, Any]) -> dict[str, Any]:
    """The resolved tree as plain JSON-ready data (distributions described, metadata kept)."""
    out: dict[str, Any] = {}
    for key, node in tree.items():
        if isinstance(node, Param):
            value = node.value
            if isinstance(value, tuple):
                value = [list(w) if isinstance(w, tuple) else w for w in value]
            if isinstance(value, Distribution):
                value = {"family": value.family, **dict(value.params)}
            out[key] = {"value": value, "unit": node.unit, "grade": node.grade, "source": node.source}
        elif isinstance(node, dict):
            out[key] = to_jsonable(node)
        else:
            out[key] = node
    return out
