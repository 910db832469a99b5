"""Parameter uncertainty: the [uncertainty] section of base.toml and scenario files, and draws from it.

Every continuous parameter (units probability, share, per_year, per_100k_per_year, days, cost, utility) with grade
H, M or L is uncertain; counts, adults, flags, choices and grade '-' model settings are not. A parameter listed in
`[uncertainty.parameters]` gets that distribution; any other gets the default of its grade
(`[uncertainty.by_grade]`): beta with effective sample size n for probabilities and utilities in (0, 1), gamma with
coefficient of variation cv for rates, days and costs, Dirichlet with concentration n for share tables.

Distributions are centred on the parameter's current value (beta and gamma mean, lognormal median), so a scenario
that changes a value moves its distribution with it. A duration given as a distribution is multiplied by a factor
(mean or median 1). Draws are made by transforming points of the unit hypercube through each distribution's
inverse CDF, so Latin hypercube and Sobol designs (and one-way quantiles) all go through `Uncertain.values`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.config.distributions import Distribution
from sim.config.schema import BASE_FILE, RATE_UNITS, Param, base_tree, base_uncertainty, check_value, flatten
from sim.errors import ScenarioError

CONTINUOUS_UNITS = ("probability", "share", *RATE_UNITS, "days", "cost", "utility")
FAMILY_KEYS: dict[str, tuple[str, ...]] = {
    "fixed": (),
    "beta": ("n", "alpha", "beta", "ci95"),
    "gamma": ("cv", "ci95"),
    "lognormal": ("sigma", "ci95"),
    "uniform": ("low", "high"),
    "dirichlet": ("n",),
}
SPREAD_KEYS = ("n", "cv")
Z975 = 1.959963984540054  # the standard normal's 97.5% quantile (scipy.stats.norm.ppf(0.975))
# Parameters of a duration distribution that scale with the duration (sigma and shape do not).
_SHAPE_PARAMS = ("sigma", "shape")


@dataclass(frozen=True)
class Uncertain:
    """One uncertain input: a parameter (or a share table, for Dirichlet) and its distribution.

    `spread` is n (beta, Dirichlet), cv (gamma), sigma (lognormal) or (low, high) (uniform); `base` is the value the
    distribution is centred on: a number, a Distribution (varied through a scale factor) or a tuple of shares.
    """

    path: str
    family: str
    spread: tuple[float, ...]
    base: Any
    unit: str
    grade: str
    source: str
    leaves: tuple[str, ...] = ()

    @property
    def dims(self) -> int:
        return len(self.leaves) if self.leaves else 1

    def values(self, u: Sequence[float]) -> dict[str, Any]:
        """Overrides {dotted path: value} for one point `u` (length `dims`, each in (0, 1)) of the unit cube."""
        if self.leaves and self.family == "fixed":
            return {f"{self.path}.{leaf}": s for leaf, s in zip(self.leaves, self.base, strict=True)}
        if self.family == "dirichlet":
            from scipy import stats as sps  # here: scipy.stats takes a second to import, and only PSA needs it

            alphas = [self.spread[0] * s for s in self.base]
            g = [float(sps.gamma.ppf(x, a)) if a > 0 else 0.0 for x, a in zip(u, alphas, strict=True)]
            total = sum(g)
            shares = [x / total for x in g] if total > 0 else list(self.base)
            return {f"{self.path}.{leaf}": s for leaf, s in zip(self.leaves, shares, strict=True)}
        x = float(u[0])
        if isinstance(self.base, Distribution):
            return {self.path: scale_distribution(self.base, self._draw(1.0, x))}
        return {self.path: self._draw(float(self.base), x)}

    def _draw(self, centre: float, x: float) -> float:
        from scipy import stats as sps  # here: see `values`

        fam, sp = self.family, self.spread
        if fam == "fixed":
            return centre
        if fam == "beta":
            n = sp[0]
            if not 0.0 < centre < 1.0 or math.isinf(n):
                return centre
            return float(sps.beta.ppf(x, centre * n, (1.0 - centre) * n))
        if fam == "gamma":
            cv = sp[0]
            if centre == 0.0 or cv == 0.0:
                return centre
            shape = 1.0 / cv**2
            return float(sps.gamma.ppf(x, shape, scale=centre / shape))
        if fam == "lognormal":
            return centre * math.exp(sp[0] * float(sps.norm.ppf(x)))
        if fam == "uniform":
            return sp[0] + x * (sp[1] - sp[0])
        raise AssertionError(fam)  # pragma: no cover - families are checked on load

    def describe(self) -> str:
        if self.family == "fixed":
            return "fixed"
        names = {"beta": ("n",), "gamma": ("cv",), "lognormal": ("sigma",), "uniform": ("low", "high"),
                 "dirichlet": ("n",)}[self.family]
        inner = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, self.spread, strict=True))
        scaled = " x factor" if isinstance(self.base, Distribution) else ""
        return f"{self.family}({inner}){scaled}"


def scale_distribution(d: Distribution, factor: float) -> dict[str, Any]:
    """A duration distribution with every duration multiplied by `factor`, as an override table."""
    out: dict[str, Any] = {"family": d.family}
    for k, v in d.params:
        out[k] = v if k in _SHAPE_PARAMS else v * factor
    return out


# ----------------------------------------------------------------------------------------------- validation
def _num(v: object, file: str, field: str, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise ScenarioError(file, field, v, what)
    return float(v)


def _check_by_grade(raw: object, file: str) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        raise ScenarioError(file, "uncertainty.by_grade", raw, "a table with H, M and L")
    out = {}
    for grade, body in raw.items():
        field = f"uncertainty.by_grade.{grade}"
        if grade not in ("H", "M", "L"):
            raise ScenarioError(file, field, body, "one of the grades H, M, L")
        if not isinstance(body, dict) or set(body) != set(SPREAD_KEYS):
            raise ScenarioError(file, field, body, "a table { n = effective sample size, cv = coefficient of "
                                                   "variation }")
        n = _num(body["n"], file, f"{field}.n", "an effective sample size > 0 (inf = no uncertainty)")
        if not n > 0:
            raise ScenarioError(file, f"{field}.n", body["n"], "an effective sample size > 0 (inf = no uncertainty)")
        cv = _num(body["cv"], file, f"{field}.cv", "a coefficient of variation >= 0")
        if not 0 <= cv < math.inf:
            raise ScenarioError(file, f"{field}.cv", body["cv"], "a finite coefficient of variation >= 0")
        out[grade] = {"n": n, "cv": cv}
    return out


def _ci95(v: object, file: str, field: str, lo_min: float, hi_max: float) -> tuple[float, float]:
    if not isinstance(v, list) or len(v) != 2:
        raise ScenarioError(file, field, v, "a pair [low, high] of a 95% interval")
    lo = _num(v[0], file, field, "a pair of finite numbers [low, high]")
    hi = _num(v[1], file, field, "a pair of finite numbers [low, high]")
    if not (lo_min < lo < hi < hi_max):
        raise ScenarioError(file, field, v, f"low < high, both strictly between {lo_min:g} and {hi_max:g}")
    return lo, hi


class SpreadDoesNotFit(ScenarioError):
    """An uncertainty entry that is well formed but cannot hold the parameter's current value (a beta ci95 too
    wide for a probability near 0, a ci95 for a value that became a distribution)."""


def _check_entry(path: str, body: object, params: dict[str, Any], groups: dict[str, dict[str, Any]],
                 file: str) -> dict[str, Any]:
    """Validate one [uncertainty.parameters] entry against the resolved parameter tree; return it normalised."""
    field = f"uncertainty.parameters.{path}"
    if not isinstance(body, dict):
        raise ScenarioError(file, field, body, "a table { family = ..., ... }")
    family = body.get("family")
    if family not in FAMILY_KEYS:
        raise ScenarioError(file, f"{field}.family", family, f"one of {', '.join(FAMILY_KEYS)}")
    allowed = {"family", "source", *FAMILY_KEYS[family]}
    extra = sorted(set(body) - allowed)
    if extra:
        raise ScenarioError(file, f"{field}.{extra[0]}", body[extra[0]],
                            f"only {', '.join(sorted(allowed))} for {family}")
    source = body.get("source", "")
    if not isinstance(source, str):
        raise ScenarioError(file, f"{field}.source", source, "a text")
    if family == "dirichlet":
        if path not in groups:
            raise ScenarioError(file, field, family, "the path of a share table, e.g. population.spontaneous_leak_type")
        n = _num(body.get("n"), file, f"{field}.n", "a concentration n > 0")
        if not n > 0:
            raise ScenarioError(file, f"{field}.n", n, "a concentration n > 0")
        return {"family": family, "n": n, "source": source}
    if path not in params:
        raise ScenarioError(file, field, family, "the dotted path of a parameter in base.toml")
    p = params[path]
    if p.unit not in CONTINUOUS_UNITS or p.unit == "share":
        raise ScenarioError(file, field, family, f"a continuous parameter (this one is a {p.unit}; shares vary as a "
                                                 "table with dirichlet)")
    is_dist = isinstance(p.value, Distribution)
    out: dict[str, Any] = {"family": family, "source": source}
    if family == "beta":
        if p.unit not in ("probability", "utility") or is_dist:
            raise ScenarioError(file, f"{field}.family", family, "beta only for a probability or a utility")
        given = [k for k in ("n", "alpha", "ci95") if k in body]
        if len(given) != 1 or ("alpha" in body) != ("beta" in body):
            raise ScenarioError(file, field, body, "exactly one of n, alpha and beta, or ci95")
        if "n" in body:
            n = _num(body["n"], file, f"{field}.n", "an effective sample size n > 0")
        elif "alpha" in body:
            a = _num(body["alpha"], file, f"{field}.alpha", "alpha > 0")
            b = _num(body["beta"], file, f"{field}.beta", "beta > 0")
            if not (a > 0 and b > 0):
                raise ScenarioError(file, f"{field}.alpha", body["alpha"], "alpha > 0 and beta > 0")
            n = a + b
        else:
            lo, hi = _ci95(body["ci95"], file, f"{field}.ci95", 0.0, 1.0)
            m = float(p.value)
            sd = (hi - lo) / (2 * Z975)
            n = m * (1 - m) / sd**2 - 1 if 0 < m < 1 else math.inf
        if not n > 0:
            raise SpreadDoesNotFit(file, field, body, "a spread giving an effective sample size > 0")
        out["n"] = n
    elif family in ("gamma", "lognormal"):
        if p.unit not in (*RATE_UNITS, "days", "cost"):
            raise ScenarioError(file, f"{field}.family", family, "gamma or lognormal only for a rate, days or a cost")
        key = "cv" if family == "gamma" else "sigma"
        if (key in body) == ("ci95" in body):
            raise ScenarioError(file, field, body, f"exactly one of {key} or ci95")
        if key in body:
            spread = _num(body[key], file, f"{field}.{key}", f"a finite {key} >= 0")
            if not 0 <= spread < math.inf:
                raise ScenarioError(file, f"{field}.{key}", body[key], f"a finite {key} >= 0")
        else:
            if is_dist:
                raise SpreadDoesNotFit(file, f"{field}.ci95", body["ci95"], f"{key} (a duration distribution is "
                                                                            "scaled by a factor; a ci95 has no centre)")
            lo, hi = _ci95(body["ci95"], file, f"{field}.ci95", 0.0, math.inf)
            value = float(p.value)
            spread = ((hi - lo) / (2 * Z975)) / value if family == "gamma" and value > 0 else \
                (math.log(hi / lo) / (2 * Z975))
        out[key] = spread
    elif family == "uniform":
        if is_dist or p.unit not in ("probability", *RATE_UNITS, "days", "cost", "utility"):
            raise ScenarioError(file, f"{field}.family", family, "uniform only for a number")
        lo = _num(body.get("low"), file, f"{field}.low", "a number")
        hi = _num(body.get("high"), file, f"{field}.high", "a number")
        if not lo <= hi:
            raise ScenarioError(file, f"{field}.high", hi, f"high >= low ({lo:g})")

        check_value(lo, p, file, f"{field}.low")
        check_value(hi, p, file, f"{field}.high")
        out.update(low=lo, high=hi)
    return out


def share_groups(tree: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted path -> {leaf: Param} of every table whose leaves are all shares."""

    out: dict[str, dict[str, Any]] = {}
    leaves = {k: v for k, v in tree.items() if isinstance(v, Param)}
    if leaves and len(leaves) == len(tree) and all(p.unit == "share" for p in leaves.values()):
        out[prefix.rstrip(".")] = leaves
    for key, node in tree.items():
        if isinstance(node, dict) and key != "uncertainty":
            out.update(share_groups(node, f"{prefix}{key}."))
    return out


def _param_tree(resolved: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resolved.items() if k not in ("uncertainty", "centers")}


def resolve_uncertainty(resolved: dict[str, Any], scenario_raw: object, file: str) -> dict[str, Any]:
    """Check base.toml's and the scenario's [uncertainty] tables and merge them (scenario wins, entry by entry)."""

    tree = _param_tree(resolved)
    params = flatten(tree)
    groups = share_groups(tree)
    merged: dict[str, Any] = {"by_grade": {}, "parameters": {}, "by_grade_instead": {}}
    base_values = {path: param.value for path, param in flatten(base_tree()).items()}
    for raw, shown in ((base_uncertainty(), str(BASE_FILE)), (scenario_raw, file)):
        if not isinstance(raw, dict):
            raise ScenarioError(shown, "uncertainty", raw, "a table with by_grade and parameters")
        extra = sorted(set(raw) - {"by_grade", "parameters"})
        if extra:
            raise ScenarioError(shown, f"uncertainty.{extra[0]}", raw[extra[0]], "only by_grade and parameters")
        merged["by_grade"].update(_check_by_grade(raw.get("by_grade", {}), shown))
        entries = raw.get("parameters", {})
        if not isinstance(entries, dict):
            raise ScenarioError(shown, "uncertainty.parameters", entries, "a table of \"dotted.path\" = { ... }")
        for path, body in entries.items():
            try:
                merged["parameters"][path] = _check_entry(path, body, params, groups, shown)
                merged["by_grade_instead"].pop(path, None)  # the scenario's own entry holds its value
            except SpreadDoesNotFit as err:
                # base.toml's spread was set around its own value; a scenario that moved the value where that
                # spread cannot hold it (a beta ci95 around 0.2 for a value of 0.001) is a valid scenario: the
                # parameter takes its grade's default spread instead, and the manifest says so.
                moved = path in params and params[path].value != base_values.get(path)
                if shown != str(BASE_FILE) or not moved:
                    raise
                merged["by_grade_instead"][path] = err.expected
    missing = sorted({"H", "M", "L"} - set(merged["by_grade"]))
    if missing:
        raise ScenarioError(file, f"uncertainty.by_grade.{missing[0]}", None, "a default spread for every grade")
    return merged


# ----------------------------------------------------------------------------------------------- the input space
_ORDER = {"H": 0, "M": 1, "L": 2}


def parameter_space(scenario: Any, only: Sequence[str] | None = None) -> list[Uncertain]:
    """The uncertain inputs of a scenario, in parameter-file order. `only` keeps paths equal to or under the given
    prefixes (e.g. ["costs", "clinical.ebp_first_success"]); an unknown prefix is a ScenarioError."""

    resolved = scenario.resolved
    spec = resolved["uncertainty"]
    tree = _param_tree(resolved)
    groups = share_groups(tree)
    grouped = {f"{g}.{leaf}": g for g, leaves in groups.items() for leaf in leaves}
    out: list[Uncertain] = []
    done: set[str] = set()
    for path, p in flatten(tree).items():
        if p.unit not in CONTINUOUS_UNITS or p.grade == "-":
            continue
        if path in grouped:
            g = grouped[path]
            if g in done:
                continue
            done.add(g)
            leaves = groups[g]
            weakest = max((q.grade for q in leaves.values() if q.grade in _ORDER), key=_ORDER.get, default="H")
            entry = spec["parameters"].get(g)
            if entry is None:
                entry = {"family": "dirichlet", "n": spec["by_grade"][weakest]["n"], "source": f"default for {weakest}"}
            fam = "fixed" if entry["family"] == "fixed" else "dirichlet"
            out.append(Uncertain(g, fam, (entry.get("n", math.inf),), tuple(q.value for q in leaves.values()),
                                 "share", weakest, entry["source"], tuple(leaves)))
            continue
        entry = spec["parameters"].get(path) or _default(p, spec["by_grade"][p.grade])
        fam = entry["family"]
        spread = {"fixed": (), "beta": (entry.get("n", 0.0),), "gamma": (entry.get("cv", 0.0),),
                  "lognormal": (entry.get("sigma", 0.0),),
                  "uniform": (entry.get("low", 0.0), entry.get("high", 0.0))}[fam]
        out.append(Uncertain(path, fam, spread, p.value, p.unit, p.grade, entry["source"]))
    if only:
        kept = [u for u in out if any(u.path == o or u.path.startswith(o + ".") for o in only)]
        for o in only:
            if not any(u.path == o or u.path.startswith(o + ".") for u in out):
                raise ScenarioError(scenario.source_file, "--params", o,
                                    "a dotted path or prefix of uncertain parameters (see docs/parameters.md)")
        out = kept
    return out


def _default(p: Any, spread: dict[str, float]) -> dict[str, Any]:
    source = f"default for grade {p.grade}"
    if p.unit in ("probability", "utility"):
        if isinstance(p.value, float) and 0 < p.value < 1:
            return {"family": "beta", "n": spread["n"], "source": source}
        return {"family": "fixed", "source": f"{source} (value at a bound)"}
    return {"family": "gamma", "cv": spread["cv"], "source": source}


def total_dims(space: Sequence[Uncertain]) -> int:
    return sum(u.dims for u in space)


def overrides_at(space: Sequence[Uncertain], point: Sequence[float]) -> dict[str, Any]:
    """Overrides for all inputs at one point of the unit hypercube of dimension `total_dims(space)`."""
    if len(point) != total_dims(space):
        raise ValueError(f"point has {len(point)} coordinates, the space has {total_dims(space)}")
    out: dict[str, Any] = {}
    i = 0
    for u in space:
        out.update(u.values(point[i:i + u.dims]))
        i += u.dims
    return out


def design(n: int, dims: int, method: str, seed: int) -> np.ndarray:
    """n points of the open unit hypercube: Latin hypercube ('lhs') or scrambled Sobol ('sobol')."""
    from scipy.stats import qmc

    if method == "lhs":
        sampler = qmc.LatinHypercube(d=dims, seed=np.random.default_rng(seed))
    elif method == "sobol":
        sampler = qmc.Sobol(d=dims, scramble=True, seed=np.random.default_rng(seed))
    else:
        raise ScenarioError("(command line)", "--method", method, "lhs or sobol")
    if method == "sobol":
        import warnings

        with warnings.catch_warnings():  # n need not be a power of 2 for a PSA
            warnings.simplefilter("ignore", UserWarning)
            pts = sampler.random(n)
    else:
        pts = sampler.random(n)
    eps = 1e-12
    return np.clip(pts, eps, 1 - eps)
