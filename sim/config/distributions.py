"""Duration distributions, sampled by inverse CDF from uniforms.

Every random duration in csfsim is `Distribution.ppf(u)` of a uniform `u` drawn up front. Sampling through the
inverse CDF is what makes common random numbers work: the same patient with the same uniform gets a longer wait
when the mean is longer, never a reshuffled one. All transforms are vectorised over numpy arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# family -> the parameters it takes (exactly these, no more).
FAMILIES: dict[str, tuple[str, ...]] = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "lognormal": ("median", "sigma"),
    "gamma": ("mean", "sd"),
    "weibull": ("shape", "scale"),
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
}
# Bounds that keep durations finite: every parameter is at most 200 years; a gamma's coefficient of variation and
# a Weibull's 1/shape are bounded (beyond them the inverse CDF overflows to inf or nan, or gives absurd tails).
MAX_PARAMETER = 365.25 * 200
MAX_GAMMA_CV = 100.0
MIN_WEIBULL_SHAPE = 0.1


@dataclass(frozen=True, slots=True)
class Distribution:
    """A non-negative duration distribution in days. `params` hold the family's parameters by name."""

    family: str
    params: tuple[tuple[str, float], ...]

    def p(self, name: str) -> float:
        return dict(self.params)[name]

    @property
    def mean(self) -> float:
        """Analytic mean, used by verification tests and reports."""
        p = dict(self.params)
        match self.family:
            case "fixed":
                return p["value"]
            case "exponential" | "gamma":
                return p["mean"]
            case "lognormal":
                return p["median"] * math.exp(p["sigma"] ** 2 / 2)
            case "weibull":
                return p["scale"] * math.gamma(1 + 1 / p["shape"])
            case "uniform":
                return (p["low"] + p["high"]) / 2
            case "triangular":
                return (p["low"] + p["mode"] + p["high"]) / 3
        raise AssertionError(self.family)  # pragma: no cover - families are validated on load

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF at uniforms `u` in [0, 1): same shape out, float64 days."""
        return _inverse_cdf(self.family, dict(self.params), np.asarray(u, dtype=np.float64))

    def describe(self) -> str:
        return f"{self.family}(" + ", ".join(f"{k}={v:g}" for k, v in self.params) + ")"


# Families whose inverse CDF takes a parameter per element with the same arithmetic per element as a scalar
# parameter. Not gamma and triangular (branches on the parameters), nor weibull (`x ** 0.5` with a scalar
# exponent is numpy's sqrt, which may differ in the last bit from the power function an array exponent gets).
VECTOR_FAMILIES = frozenset({"fixed", "exponential", "lognormal", "uniform"})


def _clip(u: np.ndarray) -> np.ndarray:
    """`np.clip(u, 1e-12, 1 - 1e-12)`, which is this min(max(...)) in numpy's loops, without its Python wrapper
    (which costs more than the clipping itself on the few uniforms the fast path transforms at a time)."""
    return np.minimum(np.maximum(u, 1e-12), 1 - 1e-12)


def _inverse_cdf(family: str, p: dict, u: np.ndarray) -> np.ndarray:
    """The inverse CDF of `family` at `u`. Parameters of VECTOR_FAMILIES may be arrays shaped like `u` (one
    distribution per element): the arithmetic per element is then exactly that of the scalar call."""
    match family:
        case "fixed":
            value = p["value"]
            return value if isinstance(value, np.ndarray) else np.full(u.shape, value)
        case "exponential":
            return -p["mean"] * np.log1p(-u)
        case "lognormal":
            from scipy import special  # here, not at the top: `csfsim validate` need not load SciPy

            return p["median"] * np.exp(p["sigma"] * special.ndtri(_clip(u)))
        case "gamma":
            from scipy import special

            mean, sd = p["mean"], p["sd"]
            if sd == 0:
                return np.full(u.shape, mean)
            if sd < mean * 1e-6:  # shape > 1e12 would overflow; the gamma is then normal to within 2e-6
                return mean + sd * special.ndtri(_clip(u))
            shape = (mean / sd) ** 2
            return special.gammaincinv(shape, u) * (sd**2 / mean)
        case "weibull":
            return p["scale"] * (-np.log1p(-u)) ** (1 / p["shape"])
        case "uniform":
            return p["low"] + (p["high"] - p["low"]) * u
        case "triangular":
            low, mode, high = p["low"], p["mode"], p["high"]
            if high == low:
                return np.full(u.shape, low)
            cut = (mode - low) / (high - low)
            left = low + np.sqrt(u * (high - low) * (mode - low))
            right = high - np.sqrt((1 - u) * (high - low) * (high - mode))
            return np.where(u < cut, left, right)
    raise AssertionError(family)  # pragma: no cover - families are validated on load


class DistributionTable:
    """Several distributions indexed by group: `table(group, u)[i] == dists[group[i]].ppf(u[i])`, exactly.

    Why. The fast path transforms a few uniforms at a time for patients at different centers (or of different
    etiologies), and a `ppf` call per group (with the masks to pick its elements) costs far more than the
    arithmetic on a handful of numbers. Here each family in VECTOR_FAMILIES goes through one call on all elements
    with its parameters gathered per element (the same floating-point operations on each element as
    `Distribution.ppf`, so the same bits), and families are then picked per element. Only the families with
    branches on their parameters (gamma, triangular, weibull) are transformed group by group.
    """

    def __init__(self, dists: list[Distribution]) -> None:
        self.dists = list(dists)
        self.scalars = [dict(d.params) for d in self.dists]
        families = sorted({d.family for d in self.dists})
        self.family_of = np.array([families.index(d.family) for d in self.dists], dtype=np.int64)
        # (family, its code, its parameters per group: NaN for groups of other families)
        self.vector = [(f, families.index(f), {k: np.array([d.p(k) if d.family == f else np.nan
                                                            for d in self.dists]) for k in FAMILIES[f]})
                       for f in families if f in VECTOR_FAMILIES]
        self.looped = [g for g, d in enumerate(self.dists) if d.family not in VECTOR_FAMILIES]
        self.same = all(d == self.dists[0] for d in self.dists)  # one distribution for every group

    def __call__(self, group: np.ndarray | int, u: np.ndarray) -> np.ndarray:
        """Days for uniforms `u`; `group` is one index into the distributions for all, or one per element."""
        if self.same or isinstance(group, (int, np.integer)):
            g = 0 if self.same else group
            return _inverse_cdf(self.dists[g].family, self.scalars[g], u)
        out: np.ndarray | None = None
        for family, code, params in self.vector:
            days = _inverse_cdf(family, {k: v[group] for k, v in params.items()}, u)
            out = days if out is None else np.where(self.family_of[group] == code, days, out)
        if self.looped:
            if out is None:
                out = np.empty(u.shape)
            for g in self.looped:
                m = group == g
                if m.any():
                    out[m] = _inverse_cdf(self.dists[g].family, self.scalars[g], u[m])
        assert out is not None
        return out


def parse_distribution(raw: object, file: str, field: str) -> Distribution:
    """Build a Distribution from a TOML table like `{family = "lognormal", median = 7, sigma = 0.8}`."""
    from sim.errors import ScenarioError

    expected_families = ", ".join(FAMILIES)
    if not isinstance(raw, dict):
        raise ScenarioError(file, field, raw, f"a distribution table with family one of: {expected_families}")
    family = raw.get("family")
    if not isinstance(family, str) or family not in FAMILIES:
        raise ScenarioError(file, f"{field}.family", family, f"one of {expected_families}")
    names = FAMILIES[family]
    extra = sorted(set(raw) - {"family", *names})
    if extra:
        raise ScenarioError(file, f"{field}.{extra[0]}", raw[extra[0]], f"only {', '.join(names)} for {family}")
    values: list[tuple[str, float]] = []
    for name in names:
        if name not in raw:
            raise ScenarioError(file, f"{field}.{name}", None, f"a number (required by {family})")
        v = raw[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ScenarioError(file, f"{field}.{name}", v, "a finite number")
        if v < 0:
            raise ScenarioError(file, f"{field}.{name}", v, "a non-negative number of days")
        if v > MAX_PARAMETER:
            raise ScenarioError(file, f"{field}.{name}", v, f"at most {MAX_PARAMETER:g} (200 years)")
        values.append((name, float(v)))
    d = dict(values)
    checks = {
        "exponential": lambda: d["mean"] > 0 or "mean > 0",
        "lognormal": lambda: d["median"] > 0 or "median > 0",
        "gamma": lambda: (d["mean"] > 0 and d["sd"] <= MAX_GAMMA_CV * d["mean"])
        or f"mean > 0 and sd <= {MAX_GAMMA_CV:g} x mean",
        "weibull": lambda: (d["shape"] >= MIN_WEIBULL_SHAPE and d["scale"] > 0)
        or f"shape >= {MIN_WEIBULL_SHAPE:g} and scale > 0",
        "uniform": lambda: d["low"] <= d["high"] or "low <= high",
        "triangular": lambda: d["low"] <= d["mode"] <= d["high"] or "low <= mode <= high",
    }
    if family in checks:
        verdict = checks[family]()
        if verdict is not True:
            raise ScenarioError(file, field, raw, f"{family} with {verdict}")
    if family == "lognormal" and d["sigma"] > 5:
        raise ScenarioError(file, f"{field}.sigma", d["sigma"], "sigma <= 5 (larger gives absurd tails)")
    return Distribution(family, tuple(values))
