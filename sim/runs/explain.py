"""Why two scenarios differ: the difference B - A of every outcome, shared out among groups of parameters.

Each group (front door, route, diagnosis at the center, imaging, ...) names scenario fields. A counterfactual
scenario is one of the two (the one with more centers, B on a tie) with some groups set to the other's values; its
home centers take the settings of the other's home centers. All counterfactuals run on the same seed, so
replication r meets the same patients and the same luck everywhere (common random numbers), and the effect of each
swap is read replication by replication.

The default share-out is the Shapley value: a group's contribution is the gap it closes when it is swapped,
averaged over every order in which the differing groups could be swapped (2**k counterfactuals for k groups that
differ). The contributions of a replication add up exactly to B - A, together with one last part: what remains when
every group is swapped (the structure of the scenarios: which centers exist, horizon, population, costs).
`method="sequential"` swaps the groups once each in the order of GROUPS instead (k + 1 counterfactuals); its parts
depend on that order.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.stats import t_interval, t_quantile
from sim.config.parameters import ETIOLOGIES, Center, Scenario
from sim.config.scenario import check_routes, load_scenario
from sim.errors import ScenarioError
from sim.io import outputs
from sim.io.runfolder import RunFolder
from sim.runs.backends import Backend
from sim.runs.experiment import progress_bar, run

METHODS = ("shapley", "sequential")
STRUCTURE = "structure"  # the part name of what is left when every group has A's values
LAYER = "diagnosis_layer"  # front door + diagnosis at the center: how much of a gap is finding the leak
LAYER_GROUPS = ("front_door", "diagnosis")
TOTAL = "total"  # the part name of B - A itself
# What the console and the report show (explain.csv holds every metric): the symptom-day gap first.
EXPLAINED: tuple[tuple[str, str], ...] = (
    ("symptom_days_mean", "all"),
    ("symptom_days_mean", "spontaneous"),
    ("time_to_resolution_rmst_365_days", "spontaneous"),
    ("diagnosis_cif_365_days", "spontaneous"),
)


@dataclass(frozen=True, slots=True)
class ParameterGroup:
    """Scenario fields that are swapped together: of the population, of the center profile, of the center itself
    (`resources`, `refers_to`), and the whole clinical block when `clinical`."""

    name: str
    label: str
    population_fields: tuple[str, ...] = ()
    profile_fields: tuple[str, ...] = ()
    center_fields: tuple[str, ...] = ()
    clinical: bool = False


GROUPS: tuple[ParameterGroup, ...] = (
    ParameterGroup("front_door", "Front door (before any center)",
                   population_fields=("care_seeking_days", "iatrogenic_review_days",
                                      "front_door_referral_probability", "front_door_return_days",
                                      "front_door_max_visits", "front_door_self_referral_probability")),
    ParameterGroup("route", "Route (first center by etiology)", center_fields=("catchment_share",)),
    ParameterGroup("diagnosis", "Diagnosis at the center",
                   profile_fields=("recognition_probability_iatrogenic", "recognition_probability_spontaneous",
                                   "brain_mri_sign_probability", "mri_reading_sensitivity",
                                   "diagnose_despite_normal_mri_probability"),
                   population_fields=("misdiagnosis_return_days", "max_consultations",
                                      "second_opinion_probability")),
    ParameterGroup("imaging", "Spinal imaging",
                   profile_fields=("offers_spinal_imaging", "imaging_technique", "early_spine_mri",
                                   "repeat_refined_imaging", "repeat_imaging_technique",
                                   "reimage_after_failed_definitive"),
                   population_fields=("slec_probability",)),
    ParameterGroup("treatments_offered", "Treatments offered and blind-patch limits",
                   profile_fields=("offers_targeted_patch", "offers_fibrin_patch", "offers_leak_surgery",
                                   "offers_durotomy_repair", "offers_embolization", "blind_ebp_before_imaging",
                                   "blind_ebp_after_negative_imaging")),
    ParameterGroup("treatment_success", "Treatment success and aftercare",
                   profile_fields=("leak_surgery_success", "durotomy_repair_success", "rih_recognition_probability"),
                   population_fields=("severe_headache_probability",), clinical=True),
    ParameterGroup("capacity", "Capacity (resources, booking)", center_fields=("resources",)),
    ParameterGroup("referral", "Referral (target, policy, delay)", profile_fields=("referral_delay_days", "referral"),
                   center_fields=("refers_to",)),
)
GROUP_NAMES = tuple(g.name for g in GROUPS)


def home_centers(s: Scenario) -> list[Center]:
    """Centers where patients first present (a catchment share of some etiology above zero)."""
    return [c for c in s.centers if any(share > 0 for share in c.catchment_share.values())]


def pair_centers(base: Scenario, other: Scenario) -> dict[str, str]:
    """Which center of `other` gives its settings to each center of `base`: home center to home center when each
    scenario has one, and every other center to the center of `other` with its name."""
    pairs: dict[str, str] = {}
    home_base, home_other = home_centers(base), home_centers(other)
    if len(home_base) == 1 and len(home_other) == 1:
        pairs[home_base[0].name] = home_other[0].name
    names_other = set(other.center_names)
    for c in base.centers:
        if c.name not in pairs and c.name in names_other:
            pairs[c.name] = c.name
    unpaired = [c.name for c in home_base if c.name not in pairs]
    if unpaired:
        raise ScenarioError(base.source_file or "(scenario)", "centers", ", ".join(unpaired),
                            f"home centers that match those of {other.source_file or other.name}: one home center "
                            f"in each scenario, or the same center names (it has {', '.join(other.center_names)})")
    return pairs


def group_differs(g: ParameterGroup, base: Scenario, other: Scenario, pairs: dict[str, str]) -> bool:
    """Whether swapping `g` changes `base` at all (a group with the same values in both scenarios contributes 0). A
    route swap whose catchment shares would not add up to 1 (two centers of `base` paired with one of `other`) is no
    counterfactual: the route then stays in the structure part."""
    swapped = counterfactual(base, other, pairs, [g])
    if "catchment_share" in g.center_fields:
        for etiology in ETIOLOGIES:
            if abs(sum(c.catchment_share[etiology] for c in swapped.centers) - 1.0) > 1e-9:
                return False
    return swapped != base


def counterfactual(b: Scenario, a: Scenario, pairs: dict[str, str], groups: Iterable[ParameterGroup]) -> Scenario:
    """`b` with the fields of `groups` set to `a`'s values, each paired center of `b` taking the values of its
    center in `a` (`explain` builds on whichever scenario has more centers).

    A referral route is translated by center name; a route to a center `b` lacks, or to the center itself, is
    dropped (the counterfactual center then refers nowhere)."""
    population, clinical = b.population, b.clinical
    centers = {c.name: c for c in b.centers}
    for g in groups:
        if g.population_fields:
            population = dataclasses.replace(population, **{f: getattr(a.population, f) for f in g.population_fields})
        if g.clinical:
            clinical = a.clinical
        for b_name, a_name in pairs.items():
            c, source = centers[b_name], a.center(a_name)
            changes: dict[str, Any] = {}
            if g.profile_fields:
                changes["profile"] = dataclasses.replace(
                    c.profile, **{f: getattr(source.profile, f) for f in g.profile_fields})
            if "resources" in g.center_fields:
                changes["resources"] = source.resources
            if "catchment_share" in g.center_fields:
                changes["catchment_share"] = source.catchment_share
            if "refers_to" in g.center_fields:
                target = source.refers_to
                changes["refers_to"] = target if target in centers and target != b_name else None
            centers[b_name] = dataclasses.replace(c, **changes)
    out = dataclasses.replace(b, population=population, clinical=clinical,
                              centers=tuple(centers[n] for n in b.center_names))
    check_routes(b.source_file or "(scenario B)", out.centers)
    return out


def _subsets(k: int, method: str) -> list[tuple[int, ...]]:
    """The sets of group indices (of the k differing groups) whose counterfactuals are needed."""
    if method == "shapley":
        return [s for size in range(k + 1) for s in itertools.combinations(range(k), size)]
    return [tuple(range(i)) for i in range(k + 1)]


def contributions(values: dict[tuple[int, ...], np.ndarray], k: int, method: str) -> list[np.ndarray]:
    """Per-replication contribution of each of the k groups to B - A, from `values[S]`, the outcome of B with the
    groups in S set to A's values (S a sorted tuple). A contribution is the drop in B's outcome the swap brings,
    with its sign turned so that contributions add up to B minus the all-swapped counterfactual."""
    if method == "sequential":
        return [values[tuple(range(i))] - values[tuple(range(i + 1))] for i in range(k)]
    out = []
    for g in range(k):
        others = [i for i in range(k) if i != g]
        total = np.zeros_like(values[()], dtype=float)
        for size in range(k):
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            for s in itertools.combinations(others, size):
                total += weight * (values[s] - values[tuple(sorted((*s, g)))])
        out.append(total)
    return out


def share_interval(part: np.ndarray, gap: np.ndarray) -> tuple[float, float, float]:
    """The part's share of the gap, the ratio of their means over replications, with a 95% interval by the delta
    method on the paired replications (t quantile, n - 1 degrees of freedom: the scale of the contributions' own
    intervals). nan when the gap's 95% CI includes 0: there is then no gap to share out."""
    n = gap.size
    _, _, lo, hi = t_interval(gap)
    if n < 2 or not (lo > 0 or hi < 0):
        return math.nan, math.nan, math.nan
    share = float(part.mean() / gap.mean())
    cov = np.cov(part, gap, ddof=1)
    var = (cov[0, 0] - 2 * share * cov[0, 1] + share**2 * cov[1, 1]) / (n * gap.mean() ** 2)
    half = t_quantile(0.975, n - 1) * math.sqrt(max(float(var), 0.0))
    return share, share - half, share + half


@dataclass
class ExplainResult:
    # explain.csv: per metric, group and part: the contribution with its CI and its share of the gap with its CI.
    # `kind`: "group" and "structure" parts add up to the "total" (B - A); a "subtotal" sums some groups.
    table: pd.DataFrame
    groups: list[ParameterGroup]  # the groups that differ between the scenarios, in GROUPS order
    counterfactuals: int  # runs made (A, B and the counterfactuals between them)
    out_dir: Path | None
    manifest: dict[str, Any] | None = None

    def part(self, metric: str, group: str, part: str) -> pd.Series:
        sel = self.table[(self.table["metric"] == metric) & (self.table["group"] == group)
                         & (self.table["part"] == part)]
        if sel.empty:
            raise KeyError((metric, group, part))
        return sel.iloc[0]


def _explained_rows(per_rep: pd.DataFrame) -> pd.DataFrame:
    """Outcomes that exist in every counterfactual: groups of patients and resources pooled over centers (a named
    center's rows do not: the centers of A and B differ; a pooled wait over different sets of centers is compared
    as it is, and what the sets change goes to the structure part)."""
    keep = per_rep["group"].isin(("all", *ETIOLOGIES)) | per_rep["group"].str.startswith("all centers/")
    return per_rep[keep]


def _by_key(per_rep: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {key: g.set_index("replication")["value"].sort_index()
            for key, g in _explained_rows(per_rep).groupby(["metric", "group"], sort=False)}


def explanation_table(other_values: pd.DataFrame, runs: dict[tuple[int, ...], pd.DataFrame],
                      groups: Sequence[ParameterGroup], method: str, onto_b: bool = True) -> pd.DataFrame:
    """explain.csv from the per-replication tables of the counterfactuals (`runs[()]`: the scenario they are built
    on, B when `onto_b`, else A) and of the other scenario."""
    k = len(groups)
    other_by = _by_key(other_values)
    by = {s: _by_key(t) for s, t in runs.items()}
    every = tuple(range(k))
    sign = 1.0 if onto_b else -1.0  # a swap moves B towards A (its drop is the part), or A towards B
    rows = []
    for key, other_series in other_by.items():
        if any(key not in table for table in by.values()):
            continue
        reps = other_series.index
        for table in by.values():
            reps = reps.intersection(table[key].index)
        values = {s: table[key].reindex(reps).to_numpy(dtype=float) for s, table in by.items()}
        other = other_series.reindex(reps).to_numpy(dtype=float)
        ok = np.isfinite(other) & np.all([np.isfinite(v) for v in values.values()], axis=0)
        if ok.sum() < 2:
            continue
        values = {s: v[ok] for s, v in values.items()}
        other = other[ok]
        gap = sign * (values[()] - other)  # B - A
        parts = [("group", g.name, g.label, sign * c)
                 for g, c in zip(groups, contributions(values, k, method), strict=True)]
        parts.append(("structure", STRUCTURE, "Structure and other settings", sign * (values[every] - other)))
        layer = [c for _, name, _, c in parts if name in LAYER_GROUPS]
        parts.append(("subtotal", LAYER, "Diagnosis layer (front door + diagnosis)",
                      np.sum(layer, axis=0) if layer else np.zeros_like(gap)))
        parts.append(("total", TOTAL, "B - A", gap))
        for kind, name, label, part in parts:
            mean, sd, lo, hi = t_interval(part)
            share, s_lo, s_hi = share_interval(part, gap)
            rows.append({"metric": key[0], "group": key[1], "part": name, "kind": kind, "label": label,
                         "replications": part.size,
                         "contribution": mean, "sd": sd, "ci95_low": lo, "ci95_high": hi,
                         "share_of_gap": share, "share_ci95_low": s_lo, "share_ci95_high": s_hi})
    return pd.DataFrame(rows, columns=["metric", "group", "part", "kind", "label", "replications", "contribution", "sd",
                                       "ci95_low", "ci95_high", "share_of_gap", "share_ci95_low",
                                       "share_ci95_high"])


def explain(a: Scenario | str | os.PathLike[str], b: Scenario | str | os.PathLike[str], reps: int = 10,
            seed: int = 1, jobs: int = 1, out: str | os.PathLike[str] | None = None, method: str = "shapley",
            progress: bool | None = None, command: str | None = None, backend: Backend | None = None,
            engine: str = "auto", overwrite: bool = False) -> ExplainResult:
    """Share out B - A among the parameter groups that differ, on common random numbers (module docstring)."""
    if method not in METHODS:
        raise ScenarioError("(command line)", "--method", method, f"one of {', '.join(METHODS)}")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 2:
        raise ScenarioError("(command line)", "--reps", reps, "at least 2 replications (each part's interval is "
                                                              "over replications)")
    sa = a if isinstance(a, Scenario) else load_scenario(a)
    sb = b if isinstance(b, Scenario) else load_scenario(b)
    # Counterfactuals are built on the scenario with more centers: it can hold the other's home center (a
    # district with a referral route can take a lone specialist's settings; a lone center cannot take a route).
    onto_b = len(sb.centers) >= len(sa.centers)
    base, other = (sb, sa) if onto_b else (sa, sb)
    pairs = pair_centers(base, other)
    groups = [g for g in GROUPS if group_differs(g, base, other, pairs)]
    subsets = _subsets(len(groups), method)

    bar = progress_bar(len(subsets) + 1, 0, "explain", progress, unit="scenario")

    def evaluate(s: Scenario) -> pd.DataFrame:
        table = run(s, reps=reps, seed=seed, jobs=jobs, log_events=False, progress=False, backend=backend,
                    engine=engine).per_replication
        bar.update()
        return table

    with bar:
        other_values = evaluate(other)
        runs = {subset: evaluate(counterfactual(base, other, pairs, [groups[i] for i in subset]))
                for subset in subsets}
    table = explanation_table(other_values, runs, groups, method, onto_b)
    result = ExplainResult(table=table, groups=groups, counterfactuals=len(subsets) + 1, out_dir=None)
    manifest = {
        "csfsim_explain": True,
        "scenario_a": {"name": sa.name, "file": sa.source_file},
        "scenario_b": {"name": sb.name, "file": sb.source_file},
        "method": method, "seed": seed, "replications": reps, "common_random_numbers": True,
        "counterfactuals_built_on": "B" if onto_b else "A",
        "centers_paired": pairs,
        "groups": [{"name": g.name, "label": g.label} for g in groups],
        "groups_equal": [g.name for g in GROUPS if g not in groups],
        "runs": result.counterfactuals,
        **outputs.provenance(command),
    }
    result.manifest = manifest
    if out is not None:
        with RunFolder(out, "explain", overwrite=overwrite) as folder:
            work = folder.open()
            outputs.atomic_write_csv(work / "explain.csv", table)
            folder.publish(manifest)
        result.out_dir = Path(out)
    return result
