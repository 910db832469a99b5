"""Read a scenario TOML file, merge it onto scenarios/base.toml, validate every field, freeze the result.

The base file is the schema: a key it does not have is a typo and is refused, and each leaf's `unit` says what
values it accepts. Every error is a `ScenarioError` naming the file, the dotted field, the value and what was
expected; nothing else escapes `load_scenario`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sim.config.parameters import (
    BERN_CLASSES,
    EBP_SUCCESS_KEYS,
    ETIOLOGIES,
    IATROGENIC,
    IMAGING_TECHNIQUES,
    LEAK_TYPES,
    RESOURCES,
    Center,
    CenterProfile,
    Clinical,
    Population,
    ReferralPolicy,
    ResourceSpec,
    Scenario,
    VolumeOutcome,
)
from sim.config.schema import (
    CAPACITY_EXPECTED,
    GRADES,
    MAX_ADULTS,
    MAX_BACKGROUND_PER_WEEK,
    MAX_BACKGROUND_REQUESTS,
    MAX_CAPACITY,
    MAX_COUNT,
    MAX_EXTENDS_DEPTH,
    MAX_FRONT_DOOR_VISITS,
    MAX_PATIENTS_CEILING,
    MAX_SESSIONS_PER_WEEK,
    MAX_SLOTS_PER_SESSION,
    REPO_ROOT,
    Param,
    base_tree,
    check_value,
    is_leaf,
    number,
    read_toml,
)
from sim.config.uncertainty import resolve_uncertainty
from sim.errors import ScenarioError

# ----------------------------------------------------------------------------------------------- merging
PER_100K = 100_000
RENAMED = {  # old dotted path -> what replaced it, for files written before the rename
    "population.arrivals_per_year": "the table's new name, population.incidence_per_100k_per_year: leaks per "
                                    "100,000 adults per year (arrivals = incidence x population.catchment.adults "
                                    "/ 100,000)",
}
# A center's own keys, beside its profile's parameters.
CENTER_KEYS = ("profile", "catchment_share", "catchment_adults", "refers_to")


def _apply(tree: dict[str, Any], override: object, file: str, prefix: str, also: tuple[str, ...] = ()) -> None:
    """Apply an override table onto a (copied) Param tree in place, refusing unknown keys (`also`: keys the
    caller has taken out of the table already, named among the known ones)."""
    if not isinstance(override, dict):
        raise ScenarioError(file, prefix.rstrip(".") or "(top level)", override, "a table")
    for key, value in override.items():
        path = f"{prefix}{key}"
        if key not in tree:
            names = sorted({*tree, *also})
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            known = ", ".join(names) or "no keys"
            raise ScenarioError(file, path, value, f"a known key here ({hint}one of: {known})")
        node = tree[key]
        if isinstance(node, Param):
            tree[key] = _override_leaf(node, value, file, path)
        else:
            _apply(node, value, file, path + ".")


def _override_leaf(base: Param, value: object, file: str, path: str) -> Param:
    if isinstance(value, dict) and "value" in value and "family" not in value:
        extra = sorted(set(value) - {"value", "unit", "grade", "source", "choices"})
        if extra:
            raise ScenarioError(file, f"{path}.{extra[0]}", value[extra[0]], "only value, unit, grade, source")
        if "unit" in value and value["unit"] != base.unit:
            raise ScenarioError(file, f"{path}.unit", value["unit"], f"the base unit {base.unit!r}")
        grade = value.get("grade", base.grade)
        if grade not in GRADES:
            raise ScenarioError(file, f"{path}.grade", grade, f"one of {', '.join(GRADES)}")
        source = value.get("source", f"{base.source} [value changed in {Path(file).name}]")
        if not isinstance(source, str):
            raise ScenarioError(file, f"{path}.source", source, "a text")
        checked = check_value(value["value"], base, file, path)
        return Param(checked, base.unit, grade, source, base.choices)
    checked = check_value(value, base, file, path)
    if checked == base.value:
        return base
    return Param(checked, base.unit, base.grade, f"{base.source} [value changed in {Path(file).name}]", base.choices)


def _merge_raw(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two raw scenario dicts (for `extends`): `high` wins; leaves are replaced whole."""
    out = copy.deepcopy(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not is_leaf(value) \
                and "family" not in value:
            out[key] = _merge_raw(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


SCENARIO_PATH_VARIABLE = "CSFSIM_SCENARIO_PATH"


def extends_roots(path: Path) -> tuple[Path, ...]:
    """Where `extends` may reach from the scenario file at `path`: the folder tree of the file (as named, and
    where a symbolic link leads), csfsim's scenarios/ folder, and the folders listed in CSFSIM_SCENARIO_PATH
    (os.pathsep between them, as in PATH). Why: `extends` read any file on the machine, and its errors confirmed
    the file or echoed its values."""
    extra = [Path(p) for p in os.environ.get(SCENARIO_PATH_VARIABLE, "").split(os.pathsep) if p]
    folders = [path.absolute().parent, path.resolve().parent, REPO_ROOT / "scenarios", *extra]
    return tuple(dict.fromkeys(f.resolve() for f in folders))


def _leaf_paths(raw: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the values a raw scenario table sets (a leaf as `_merge_raw` sees one)."""
    for key, value in raw.items():
        if isinstance(value, dict) and value and not is_leaf(value) and "family" not in value:
            yield from _leaf_paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _read_with_extends(path: Path, shown: str, seen: tuple[Path, ...] = (),
                       roots: tuple[Path, ...] | None = None,
                       origins: dict[str, str] | None = None) -> dict[str, Any]:
    """The scenario at `path` merged over the files it extends; `origins` (when given) gets, per dotted path,
    the file that set it, so that an error is told against the file the user must edit."""
    roots = roots if roots is not None else extends_roots(path)
    raw = read_toml(path, shown)
    parent = raw.pop("extends", None)
    if parent is None:
        if origins is not None:
            origins.update(dict.fromkeys(_leaf_paths(raw), shown))
        return raw
    if not isinstance(parent, str) or not parent:
        raise ScenarioError(shown, "extends", parent, "the path of another scenario file")
    if "\0" in parent:
        raise ScenarioError(shown, "extends", parent, "a file path without NUL characters")
    try:
        # Beside the file as named, else beside the file a symbolic link leads to.
        candidates = [(path.parent / parent).resolve(), (path.resolve().parent / parent).resolve()]
        parent_path = next((c for c in candidates if c.exists()), candidates[0])
    except (OSError, RuntimeError):  # a loop of symbolic links
        raise ScenarioError(shown, "extends", parent, "the path of a scenario file (not a loop of links)") from None
    if not any(parent_path.is_relative_to(root) for root in roots):
        raise ScenarioError(shown, "extends", parent, "a scenario file in the folder of the scenario named (or "
                                                      "below it), in csfsim's scenarios/ folder, or in a folder "
                                                      f"listed in {SCENARIO_PATH_VARIABLE}")
    if parent_path in seen or parent_path == path.resolve():
        chain = " -> ".join(p.name for p in (*seen, path.resolve(), parent_path))
        raise ScenarioError(shown, "extends", parent, f"a scenario file that does not extend itself (cycle {chain})")
    try:
        exists = parent_path.is_file()
    except OSError:  # e.g. a name too long for the file system
        exists = False
    if not exists:
        raise ScenarioError(shown, "extends", parent, f"the path of an existing scenario file ({parent_path})")
    if len(seen) >= MAX_EXTENDS_DEPTH:
        raise ScenarioError(shown, "extends", parent, f"at most {MAX_EXTENDS_DEPTH} levels of extends")
    base_raw = _read_with_extends(parent_path, str(parent_path), (*seen, path.resolve()), roots, origins)
    if "scenario" in raw:
        base_raw.pop("scenario", None)
    if origins is not None:
        origins.update(dict.fromkeys(_leaf_paths(raw), shown))
    return _merge_raw(base_raw, raw)


def read_scenario_raw(path: str | os.PathLike[str], shown: str | None = None,
                      roots: Sequence[Path] | None = None) -> dict[str, Any]:
    """The scenario at `path` as one raw table, the files it extends merged in and `extends` gone (unvalidated:
    `build_scenario` checks it). `roots`: the only folders `extends` may reach (default: `extends_roots`)."""
    p = Path(path)
    return _read_with_extends(p, shown or str(path), roots=None if roots is None else tuple(r.resolve() for r in roots))


def _origin(field: str, origins: dict[str, str]) -> str | None:
    """The file that set `field` (or the value it lies in, or every value under it), if one did."""
    parts = field.split(".")
    for n in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:n]))
        if found is not None:
            return found
    below = {f for path, f in origins.items() if path.startswith(field + ".")}
    return below.pop() if len(below) == 1 else None


# ----------------------------------------------------------------------------------------------- loading
def expected_patients(population: Any, horizon_days: float) -> float:
    """Patients one replication draws at most on average: the arrival rates at their highest over the horizon."""
    rate = sum(population.arrivals_per_year.values())
    return rate * horizon_days / 365.25 * population.max_rate_multiplier(horizon_days)


def load_scenario(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None,
                  overrides_from: str = "(overrides)") -> Scenario:
    """Load, validate and freeze a scenario file. `overrides` maps dotted paths to values (used by sweeps);
    an error in one of them names `overrides_from` (e.g. the command-line option that gave it), an error in a
    file reached by `extends` names that file."""
    p = Path(path)
    shown = str(path)
    origins: dict[str, str] = {}
    raw = _read_with_extends(p, shown, origins=origins)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, overrides_from)
        origins[dotted] = overrides_from
    try:
        return build_scenario(raw, shown)
    except ScenarioError as err:
        origin = _origin(err.field, origins)
        if origin is None or origin == err.file:
            raise
        raise ScenarioError(origin, err.field, err.value, err.expected) from None


def _set_dotted(raw: dict[str, Any], dotted: str, value: object, file: str) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ScenarioError(file, dotted, value, "a dotted parameter path like clinical.ebp_first_success.all")
    node = raw
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ScenarioError(file, dotted, value, "a path through tables")
        node = nxt
    node[parts[-1]] = value


def build_scenario(raw: dict[str, Any], file: str) -> Scenario:
    """Validate a raw scenario dict against the base tree and compile it into a frozen Scenario."""
    if not isinstance(raw, dict):
        raise ScenarioError(file, "(top level)", raw, "a TOML table")
    raw = dict(raw)
    meta = raw.pop("scenario", {})
    if not isinstance(meta, dict):
        raise ScenarioError(file, "scenario", meta, "a table with name and description")
    for key in meta:
        if key not in ("name", "description"):
            raise ScenarioError(file, f"scenario.{key}", meta[key], "only name and description")
    name = meta.get("name", Path(file).stem)
    description = meta.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise ScenarioError(file, "scenario.name", name, "a text")
    centers_raw = raw.pop("centers", None)
    profiles_raw = raw.pop("profiles", {})
    centers_raw = merge_referral_tables(raw.pop("referral", None), centers_raw, file)
    uncertainty_raw = raw.pop("uncertainty", {})

    tree = base_tree()
    profiles: dict[str, Any] = tree.pop("profiles")
    _apply_profiles(profiles, profiles_raw, file)
    _refuse_renamed(raw, file)
    _apply(tree, raw, file, "")
    _check_share_groups(tree, file, "")
    _check_share_groups(profiles, file, "profiles.")

    population_raw = raw.get("population")
    adults_given = isinstance(population_raw, dict) and isinstance(population_raw.get("catchment"), dict) \
        and "adults" in population_raw["catchment"]
    centers, center_overrides, adults = _build_centers(centers_raw, profiles, file,
                                                       tree["population"]["catchment"]["adults"].value, adults_given)
    if adults is not None:
        old = tree["population"]["catchment"]["adults"]
        tree["population"]["catchment"]["adults"] = Param(adults, old.unit, "-", "Sum of the centers' catchment_adults")
    horizon = tree["run"]["horizon_days"].value
    if horizon <= 0:
        raise ScenarioError(file, "run.horizon_days", horizon, "a horizon longer than 0 days")
    warmup = tree["run"]["warmup_days"].value
    if warmup >= horizon:
        raise ScenarioError(file, "run.warmup_days", warmup, f"less than run.horizon_days ({horizon:g})")
    arrivals_until = tree["run"]["arrivals_until_days"].value
    if arrivals_until and not warmup < arrivals_until < horizon:
        raise ScenarioError(file, "run.arrivals_until_days", arrivals_until,
                            f"0 (period mode), or a day after run.warmup_days ({warmup:g}) and before "
                            f"run.horizon_days ({horizon:g})")
    follow_up = tree["run"]["follow_up_days"].value
    if not 0 <= follow_up < horizon - warmup:
        raise ScenarioError(file, "run.follow_up_days", follow_up,
                            f"at least 0 and less than run.horizon_days - run.warmup_days ({horizon - warmup:g}) "
                            f"so that some onsets are followed that long (0 counts every onset)")
    population = _build_population(tree, file)
    clinical = _build_clinical(tree, file)
    max_expected = tree["run"]["max_expected_patients"].value
    if max_expected > MAX_PATIENTS_CEILING:
        raise ScenarioError(file, "run.max_expected_patients", max_expected,
                            f"at most {MAX_PATIENTS_CEILING} (the guard itself cannot be lifted past memory)")
    expected = expected_patients(population, horizon)
    if expected > max_expected:
        raise ScenarioError(file, "population.catchment.adults", population.catchment_adults,
                            f"at most run.max_expected_patients = {max_expected} patients per replication from "
                            f"incidence x catchment over the horizon (these settings bring {round(expected)})")
    _check_background(centers, horizon, file)
    resolved = dict(tree)
    resolved["profiles"] = profiles
    resolved["centers"] = {c.name: _center_meta(c, center_overrides[c.name]) for c in centers}
    vo = tree["volume_outcome"]
    if vo["window_days"].value <= 0:
        raise ScenarioError(file, "volume_outcome.window_days", vo["window_days"].value, "a window longer than 0 days")
    if vo["half_saturation_cases_per_year"].value <= 0:
        raise ScenarioError(file, "volume_outcome.half_saturation_cases_per_year",
                            vo["half_saturation_cases_per_year"].value, "a positive number of cases per year")
    volume = VolumeOutcome(**{k: p.value for k, p in vo.items()})

    resolved["uncertainty"] = resolve_uncertainty(resolved, uncertainty_raw, file)
    return Scenario(name=name, description=description, source_file=file, horizon_days=float(horizon),
                    warmup_days=float(warmup), max_expected_patients=int(max_expected), population=population,
                    clinical=clinical, centers=centers, volume_outcome=volume, resolved=resolved,
                    arrivals_until_days=float(arrivals_until) if arrivals_until else None,
                    follow_up_days=float(follow_up))


REFERRAL_ALIASES = {"to": "refers_to", "delay_days": "referral_delay_days"}


def merge_referral_tables(referral: object, centers: object, file: str) -> object:
    """`[referral.CENTER]` tables are a planner-friendly way to write a center's referral settings:
    `to` (refers_to), `delay_days` (referral_delay_days) and the policy keys of `centers.CENTER.referral`."""
    if referral is None:
        return centers
    if not isinstance(referral, dict):
        raise ScenarioError(file, "referral", referral, "a table of [referral.CENTER] tables")
    if not isinstance(centers, dict):
        return centers  # the centers error is reported by _build_centers
    merged = copy.deepcopy(centers)
    for cname, body in referral.items():
        if cname not in merged:
            raise ScenarioError(file, f"referral.{cname}", body, f"a center of this scenario ({', '.join(merged)})")
        if not isinstance(body, dict) or not isinstance(merged[cname], dict):
            raise ScenarioError(file, f"referral.{cname}", body, "a table of referral settings")
        for key, value in body.items():
            if key in REFERRAL_ALIASES:
                merged[cname][REFERRAL_ALIASES[key]] = value
            else:
                policy = merged[cname].setdefault("referral", {})
                if not isinstance(policy, dict):
                    raise ScenarioError(file, f"centers.{cname}.referral", policy, "a table")
                policy[key] = value
    return merged


def _apply_profiles(profiles: dict[str, Any], raw: object, file: str) -> None:
    if not isinstance(raw, dict):
        raise ScenarioError(file, "profiles", raw, "a table of center profiles")
    for pname, body in raw.items():
        if not isinstance(body, dict):
            raise ScenarioError(file, f"profiles.{pname}", body, "a table")
        body = dict(body)
        like = body.pop("like", None)
        if pname not in profiles:
            if not isinstance(like, str) or like not in profiles:
                raise ScenarioError(file, f"profiles.{pname}.like", like,
                                    f"an existing profile to start from ({', '.join(sorted(profiles))})")
            profiles[pname] = copy.deepcopy(profiles[like])
        elif like is not None:
            raise ScenarioError(file, f"profiles.{pname}.like", like, "no 'like' when changing a base profile")
        _apply(profiles[pname], body, file, f"profiles.{pname}.")


def _check_share_groups(tree: dict[str, Any], file: str, prefix: str) -> None:
    leaves = [v for v in tree.values() if isinstance(v, Param)]
    if leaves and all(p.unit == "share" for p in leaves) and len(leaves) == len(tree):
        total = sum(p.value for p in leaves)
        if abs(total - 1.0) > 1e-6:
            raise ScenarioError(file, prefix.rstrip("."), round(total, 6), "shares that sum to 1")
    for key, node in tree.items():
        if isinstance(node, dict):
            _check_share_groups(node, file, f"{prefix}{key}.")


# Names the summary tables give their pooled groups ("all", the etiologies, "all centers/RESOURCE"): a center of
# the same name would have its rows mixed with them.
RESERVED_CENTER_NAMES = frozenset({"all", "all centers", *ETIOLOGIES})
_CENTER_NAME = re.compile(r"[^\W_][\w \-.]{0,63}")


def check_center_name(name: str, file: str) -> None:
    """A center's name is a group label in every table (`home:NAME`, `NAME/RESOURCE`): letters, digits, spaces,
    `_`, `-` and `.`, starting with a letter or digit, at most 64 characters, and none of the pooled groups'."""
    if not _CENTER_NAME.fullmatch(name):
        raise ScenarioError(file, "centers", name, "a center name of letters, digits, spaces, '_', '-' and '.', "
                                                   "starting with a letter or digit, at most 64 characters")
    if name.casefold() in RESERVED_CENTER_NAMES:
        raise ScenarioError(file, "centers", name, "a center name other than "
                            + ", ".join(sorted(RESERVED_CENTER_NAMES)) + " (names of pooled rows in the tables)")


def _refuse_renamed(raw: dict[str, Any], file: str) -> None:
    """A table that was renamed gets an error saying what replaced it, rather than 'unknown key'."""
    for old, replacement in RENAMED.items():
        node: Any = raw
        for part in old.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            raise ScenarioError(file, old, node, replacement)


def _build_centers(raw: object, profiles: dict[str, Any], file: str, population_adults: int, adults_given: bool
                   ) -> tuple[tuple[Center, ...], dict[str, dict[str, Any]], int | None]:
    """The centers, per center the Param tree of what it sets apart from its profile (for the manifest), and the
    catchment's adults when the centers give theirs in adults (their sum; otherwise None)."""
    if raw is None or raw == {}:
        raise ScenarioError(file, "centers", raw, "at least one [centers.NAME] table with a profile")
    if not isinstance(raw, dict):
        raise ScenarioError(file, "centers", raw, "a table of centers")
    if len(raw) > 1000:
        raise ScenarioError(file, "centers", f"{len(raw)} centers", "at most 1000 centers")
    centers: list[Center] = []
    own: dict[str, dict[str, Any]] = {}
    adults: dict[str, int] = {}
    for cname, body in raw.items():
        path = f"centers.{cname}"
        check_center_name(cname, file)
        if not isinstance(body, dict):
            raise ScenarioError(file, path, body, "a table with profile, catchment_share or catchment_adults, "
                                                  "refers_to")
        body = dict(body)
        pname = body.pop("profile", None)
        if not isinstance(pname, str) or pname not in profiles:
            raise ScenarioError(file, f"{path}.profile", pname, f"one of {', '.join(sorted(profiles))}")
        if "catchment_share" in body and "catchment_adults" in body:
            raise ScenarioError(file, f"{path}.catchment_adults", body["catchment_adults"],
                                "either catchment_share or catchment_adults, not both")
        if "catchment_adults" in body:
            adults[cname] = _center_adults(body.pop("catchment_adults"), file, f"{path}.catchment_adults")
        share = _catchment(body.pop("catchment_share", 0.0), file, f"{path}.catchment_share")
        refers_to = body.pop("refers_to", "")
        if not isinstance(refers_to, str):
            raise ScenarioError(file, f"{path}.refers_to", refers_to, "the name of another center, or \"\"")
        ptree = copy.deepcopy(profiles[pname])
        _apply(ptree, body, file, f"{path}.", CENTER_KEYS)
        own[cname] = _differences(ptree, profiles[pname])
        centers.append(_compile_center(file, cname, pname, share, refers_to or None, ptree))
    check_routes(file, centers)
    total_adults = None
    if adults:
        centers, total_adults = _shares_from_adults(centers, adults, file, population_adults, adults_given)
    for etiology in ETIOLOGIES:
        total = sum(c.catchment_share[etiology] for c in centers)
        if abs(total - 1.0) > 1e-6:
            raise ScenarioError(file, "centers.*.catchment_share", round(total, 6),
                                f"catchment shares of {etiology} arrivals that sum to 1 across centers")
    return tuple(centers), own, total_adults


def _center_adults(raw: object, file: str, field: str) -> int:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_ADULTS:
        raise ScenarioError(file, field, raw, f"a whole number of adults from 0 to {MAX_ADULTS:,}")
    return raw


def _shares_from_adults(centers: list[Center], adults: dict[str, int], file: str, population_adults: int,
                        adults_given: bool) -> tuple[list[Center], int]:
    """Centers that give their catchment in adults: the catchment is their sum and each center's share of every
    etiology is its adults over that sum. Mixing adults with shares would leave the total ambiguous."""
    for c in centers:
        if c.name not in adults and any(v > 0 for v in c.catchment_share.values()):
            raise ScenarioError(file, f"centers.{c.name}.catchment_share", c.catchment_share[ETIOLOGIES[0]],
                                "catchment_adults, as the other centers give theirs (or no catchment at all)")
    total = sum(adults.values())
    if total < 1:
        raise ScenarioError(file, "centers.*.catchment_adults", total, "at least one adult across the centers")
    if adults_given and population_adults != total:
        raise ScenarioError(file, "population.catchment.adults", population_adults,
                            f"the sum of the centers' catchment_adults ({total:,}), or leave it out")
    shares = [dataclasses.replace(c, catchment_share=dict.fromkeys(ETIOLOGIES, adults.get(c.name, 0) / total),
                                  catchment_adults=adults.get(c.name, 0))
              for c in centers]
    return shares, total


def _differences(tree: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The leaves of `tree` whose Param differs from `reference`'s, as a tree of the same shape."""
    out: dict[str, Any] = {}
    for key, node in tree.items():
        if isinstance(node, Param):
            if node != reference[key]:
                out[key] = node
        else:
            sub = _differences(node, reference[key])
            if sub:
                out[key] = sub
    return out


def _catchment(raw: object, file: str, field: str) -> dict[str, float]:
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(ETIOLOGIES))
        if unknown:
            raise ScenarioError(file, f"{field}.{unknown[0]}", raw[unknown[0]], f"one of {', '.join(ETIOLOGIES)}")
        out = {}
        for e in ETIOLOGIES:
            v = number(raw.get(e, 0.0), file, f"{field}.{e}", "a share between 0 and 1")
            if not 0 <= v <= 1:
                raise ScenarioError(file, f"{field}.{e}", v, "a share between 0 and 1")
            out[e] = v
        return out
    v = number(raw, file, field, "a share between 0 and 1, or a table of shares by etiology")
    if not 0 <= v <= 1:
        raise ScenarioError(file, field, raw, "a share between 0 and 1")
    return dict.fromkeys(ETIOLOGIES, v)


def _v(node: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        node = node[k]
    assert isinstance(node, Param)
    return node.value


def _check_background(centers: list[Center], horizon_days: float, file: str) -> None:
    """The other patients of session-booked lists are drawn up front, like the CSF patients: bound their number
    (over the horizon and the year before day 0, at the day-0 rate) so that a typo fails here, not in memory."""
    total = 0.0
    for c in centers:
        for r, spec in c.resources.items():
            if spec.session_booked:
                total += spec.background_requests_per_week / 7.0 * (horizon_days + 365.0)
                if total > MAX_BACKGROUND_REQUESTS:
                    raise ScenarioError(file, f"centers.{c.name}.resources.{r}.background_requests_per_week",
                                        spec.background_requests_per_week,
                                        f"fewer requests: the lists' other patients over the horizon would "
                                        f"exceed {MAX_BACKGROUND_REQUESTS:,} per replication")


def _session_fields(file: str, where: str, t: dict[str, Any], windows: tuple) -> dict[str, Any]:
    """The session-booking fields of one resource, checked where their meaning depends on each other."""
    fields = {k: _v(t, k) for k in ("sessions_per_week", "slots_per_session", "background_requests_per_week",
                                    "notice_days")}
    if fields["sessions_per_week"] > MAX_SESSIONS_PER_WEEK:
        raise ScenarioError(file, f"{where}.sessions_per_week", fields["sessions_per_week"],
                            f"a whole number of sessions a week from 0 to {MAX_SESSIONS_PER_WEEK}")
    if not 1 <= fields["slots_per_session"] <= MAX_SLOTS_PER_SESSION:
        raise ScenarioError(file, f"{where}.slots_per_session", fields["slots_per_session"],
                            f"a whole number of slots from 1 to {MAX_SLOTS_PER_SESSION}")
    if fields["background_requests_per_week"] > MAX_BACKGROUND_PER_WEEK:
        raise ScenarioError(file, f"{where}.background_requests_per_week", fields["background_requests_per_week"],
                            f"at most {MAX_BACKGROUND_PER_WEEK:,} requests a week")
    if fields["sessions_per_week"] and windows:
        raise ScenarioError(file, f"{where}.open_windows", [list(w) for w in windows],
                            "[] when sessions_per_week > 0 (the sessions set when the resource runs)")
    return fields


def check_routes(file: str, centers: Sequence[Center]) -> None:
    """Every `refers_to` names another center of the scenario, and referral chains end (a cycle would pass
    patients round for ever)."""
    names = {c.name for c in centers}
    for c in centers:
        if c.refers_to is not None and c.refers_to not in names:
            raise ScenarioError(file, f"centers.{c.name}.refers_to", c.refers_to,
                                f"one of the scenario's centers ({', '.join(sorted(names))})")
        if c.refers_to == c.name:
            raise ScenarioError(file, f"centers.{c.name}.refers_to", c.refers_to, "another center (not itself)")
    by_name = {c.name: c for c in centers}
    for c in centers:
        seen = [c.name]
        nxt = c.refers_to
        while nxt is not None:
            if nxt in seen:
                raise ScenarioError(file, f"centers.{c.name}.refers_to", c.refers_to,
                                    f"referrals that end somewhere (cycle {' -> '.join([*seen, nxt])})")
            seen.append(nxt)
            nxt = by_name[nxt].refers_to


def _compile_center(file: str, name: str, pname: str, share: dict[str, float], refers_to: str | None,
                    t: dict[str, Any]) -> Center:
    resources = {}
    for r in RESOURCES:
        cap = _v(t, "resources", r, "capacity")
        if not 1 <= cap <= MAX_CAPACITY:
            raise ScenarioError(file, f"centers.{name}.resources.{r}.capacity", cap, CAPACITY_EXPECTED)
        cycle = _v(t, "resources", r, "schedule_cycle_days")
        windows = _v(t, "resources", r, "open_windows")
        closed = _v(t, "resources", r, "closed_periods")
        where = f"centers.{name}.resources.{r}"
        if windows and (cycle <= 0 or windows[-1][1] > cycle):
            raise ScenarioError(file, f"{where}.open_windows", [list(w) for w in windows],
                                f"windows inside the schedule cycle of {cycle:g} days")
        if closed and (closed[-1][1] > 366 or sum(b - a for a, b in closed) >= 365):
            raise ScenarioError(file, f"{where}.closed_periods", [list(w) for w in closed],
                                "days of the year (0 to 366) leaving the resource open some of the year")
        sessions = _session_fields(file, where, t["resources"][r], windows)
        resources[r] = ResourceSpec(cap, _v(t, "resources", r, "service_days"), _v(t, "resources", r, "booking_days"),
                                    open_windows=windows, schedule_cycle_days=cycle, closed_periods=closed,
                                    **sessions)
    fields = {k: p.value for k, p in t.items() if isinstance(p, Param)}
    policy = ReferralPolicy(**{k: p.value for k, p in t["referral"].items()})
    _capped(policy.after_failed_ebp, file, f"centers.{name}.referral.after_failed_ebp")
    for count in ("blind_ebp_before_imaging", "blind_ebp_after_negative_imaging", "repeat_refined_imaging"):
        _capped(fields[count], file, f"centers.{name}.{count}")
    return Center(name=name, profile_name=pname, profile=CenterProfile(**fields, referral=policy),
                  catchment_share=share, refers_to=refers_to, resources=resources)


def _center_meta(c: Center, overrides: dict[str, Any]) -> dict[str, Any]:
    """A center in the resolved scenario: its profile, catchment and referral target, and every parameter it sets
    apart from its profile (`overrides`, a Param tree shaped like the profile), so the manifest is complete."""
    meta = {"profile": c.profile_name, "catchment_share": c.catchment_share, "refers_to": c.refers_to or "",
            "overrides": overrides}
    if c.catchment_adults is not None:
        meta["catchment_adults"] = c.catchment_adults
    return meta


def _build_population(t: dict[str, Any], file: str) -> Population:
    pop = t["population"]
    adults = _v(pop, "catchment", "adults")
    return Population(
        arrivals_per_year={e: _v(pop, "incidence_per_100k_per_year", e) * (adults / PER_100K) for e in ETIOLOGIES},
        catchment_adults=adults,
        leak_type_shares={lt: _v(pop, "spontaneous_leak_type", lt) for lt in LEAK_TYPES},
        care_seeking_days={e: _v(pop, "care_seeking_days", e) for e in ETIOLOGIES},
        self_limiting_probability={e: _v(pop, "self_limiting_probability", e) for e in ETIOLOGIES},
        self_limiting_days={e: _v(pop, "self_limiting_days", e) for e in ETIOLOGIES},
        misdiagnosis_return_days=_v(pop, "misdiagnosis_return_days", "all"),
        iatrogenic_review_days=_v(pop, "iatrogenic_review_days", "all"),
        severe_headache_probability={e: _v(pop, "severe_headache_probability", e) for e in ETIOLOGIES},
        slec_probability={lt: _v(pop, "slec_probability", lt) for lt in LEAK_TYPES},
        growth_per_year=_v(pop, "demand", "growth_per_year"),
        seasonality_amplitude=_v(pop, "demand", "seasonality_amplitude"),
        seasonality_peak_day=_v(pop, "demand", "seasonality_peak_day"),
        max_consultations=_capped(_v(pop, "max_consultations", "all"), file, "population.max_consultations.all",
                                  minimum=1),
        front_door_referral_probability={e: _v(pop, "front_door", "referral_probability_per_visit", e)
                                         for e in ETIOLOGIES},
        front_door_return_days=_v(pop, "front_door", "return_days"),
        front_door_max_visits=_front_door_visits(_v(pop, "front_door", "max_visits"), file),
        front_door_self_referral_probability=_v(pop, "front_door", "self_referral_probability"),
        second_opinion_probability=_v(pop, "second_opinion", "probability"),
    )


def _front_door_visits(v: int, file: str) -> int:
    if not 1 <= v <= MAX_FRONT_DOOR_VISITS:
        raise ScenarioError(file, "population.front_door.max_visits", v, f"a whole number of visits from 1 to "
                            f"{MAX_FRONT_DOOR_VISITS}")
    return v


def _capped(v: int, file: str, field: str, minimum: int = 0) -> int:
    if not minimum <= v <= MAX_COUNT:
        raise ScenarioError(file, field, v, f"a whole number from {minimum} to {MAX_COUNT}")
    return v


def _build_clinical(t: dict[str, Any], file: str) -> Clinical:
    c = t["clinical"]
    ebp_keys = EBP_SUCCESS_KEYS
    procedure_related = [e for e in ETIOLOGIES if e in IATROGENIC]
    return Clinical(
        conservative_days={e: _v(c, "conservative_days", e) for e in ETIOLOGIES},
        spinal_surgery_direct_repair_probability=_v(c, "spinal_surgery_direct_repair_probability", "all"),
        ebp_first_success={k: _v(c, "ebp_first_success", k) for k in ebp_keys},
        ebp_repeat_success={k: _v(c, "ebp_repeat_success", k) for k in ebp_keys},
        ebp_transient_relief={k: _v(c, "ebp_transient_relief", k) for k in ebp_keys},
        transient_relief_days=_v(c, "transient_relief_days", "all"),
        ebp_max_blind={e: _capped(_v(c, "ebp_max_blind", e), file, f"clinical.ebp_max_blind.{e}")
                       for e in procedure_related},
        targeted_patch_success=_v(c, "targeted_patch_success", "all"),
        fibrin_patch_success_spontaneous=_v(c, "fibrin_patch_success", "spontaneous"),
        fibrin_patch_success_iatrogenic=_v(c, "fibrin_patch_success", "iatrogenic"),
        embolization_success=_v(c, "embolization_success", "all"),
        cvf_ligation_success=_v(c, "cvf_ligation_success", "all"),
        late_treatment_threshold_days=_v(c, "late_treatment", "threshold_days"),
        late_treatment_odds_ratio=_v(c, "late_treatment", "odds_ratio"),
        late_share_in_source={k: _v(c, "late_share_in_source", k) for k in
                              ("targeted_patch", "fibrin_patch", "surgery", "embolization")},
        max_leak_surgeries=_capped(_v(c, "max_leak_surgeries", "all"), file, "clinical.max_leak_surgeries.all",
                                   minimum=1),
        rih_probability_after_iatrogenic_ebp=_v(c, "rih_probability", "after_iatrogenic_ebp"),
        rih_probability_after_spontaneous_sealing=_v(c, "rih_probability", "after_spontaneous_sealing"),
        rih_probability_after_embolization=_v(c, "rih_probability", "after_embolization"),
        rih_onset_days=_v(c, "rih_onset_days", "all"),
        rih_duration_treated_days=_v(c, "rih_duration_days", "treated"),
        rih_duration_untreated_days=_v(c, "rih_duration_days", "untreated"),
        acetazolamide_course_days=_v(c, "acetazolamide_course_days", "all"),
        recurrence_probability_after_iatrogenic_ebp=_v(c, "recurrence_probability", "after_iatrogenic_ebp"),
        recurrence_probability_after_spontaneous_patch=_v(c, "recurrence_probability", "after_spontaneous_patch"),
        recurrence_probability_after_surgery=_v(c, "recurrence_probability", "after_surgery"),
        recurrence_probability_after_embolization=_v(c, "recurrence_probability", "after_embolization"),
        recurrence_days=_v(c, "recurrence_days", "all"),
        max_recurrences=_capped(_v(c, "max_recurrences", "all"), file, "clinical.max_recurrences.all"),
        imaging_yield={tech: {lt: _v(t, "imaging_yield", tech, lt) for lt in LEAK_TYPES}
                       for tech in IMAGING_TECHNIQUES},
        conservative_days_severe={e: _v(c, "conservative_days_severe", e) for e in ETIOLOGIES},
        repeat_imaging_yield={lt: _v(t, "imaging_yield", "repeat_after_negative", lt) for lt in LEAK_TYPES},
        procedural_patch_booking_days=_v(c, "procedural_patch_booking_days", "all"),
        early_ebp_threshold_days=_v(c, "early_ebp", "threshold_days"),
        early_ebp_failure_odds_ratio=_v(c, "early_ebp", "failure_odds_ratio"),
        residual_probability_at_90_days=_v(c, "residual_symptoms", "probability_at_90_days"),
        residual_odds_ratio_per_doubling=_v(c, "residual_symptoms", "odds_ratio_per_doubling"),
        residual_recovery_days=_v(c, "residual_symptoms", "recovery_days"),
        bern_class_shares={lt: {b: _v(c, "bern_class", lt, b) for b in BERN_CLASSES} for lt in LEAK_TYPES},
        imaging_odds_ratio_by_bern={b: _v(c, "imaging_odds_ratio_by_bern", b) for b in BERN_CLASSES},
    )
