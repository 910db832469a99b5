"""Probabilistic sensitivity analysis (PSA), one-way (tornado) and global (Sobol) sensitivity analysis.

A PSA draws K points of the unit hypercube (Latin hypercube or scrambled Sobol), turns each into parameter values
through the uncertainty distributions (sim/config/uncertainty.py), and runs R replications of each scenario with them.
Within a sample, A and B share the parameter draws and the seed (common random numbers); across samples the seeds
differ (`sample_seed`), so simulation noise is independent between samples and the two-level variance split holds.
Samples run on worker processes; each finished sample is written atomically to `OUT.partial/samples/`, and a rerun
with the same arguments skips them. The folder is renamed to OUT when every sample is there.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.metrics import METRICS
from sim.analysis.stats import replication_metrics
from sim.config.parameters import Scenario
from sim.config.scenario import load_scenario
from sim.config.uncertainty import Uncertain, design, parameter_space, total_dims
from sim.economics import cea
from sim.economics.costs import ECONOMICS_COLUMNS, add_economics, economic_params
from sim.errors import RunInterrupted, ScenarioError
from sim.figures import econ_figures
from sim.io import outputs
from sim.io.runfolder import MARKER, RunFolder
from sim.runs.backends import Backend, WorkLost
from sim.runs.replication import run_replication

OUTCOMES: tuple[str, ...] = (
    "cost_per_patient", "qaly_per_patient", "qaly_loss_per_patient", "diagnosis_cif_365_days",
    "time_to_resolution_rmst_365_days", "share_persistent", "symptom_days_mean", "ebp_per_patient",
)
ECON_SECTIONS = ("economics.", "costs.", "utilities.")


def sample_seed(seed: int, sample: int) -> int:
    """Root seed of PSA sample k: independent across samples, shared by the scenarios within a sample."""
    return int(np.random.SeedSequence([seed, sample]).generate_state(1, dtype=np.uint64)[0] >> 1)


# ----------------------------------------------------------------------------------------------- evaluation
def evaluate(scenarios: Sequence[Scenario], reps: int, seed: int) -> pd.DataFrame:
    """Run R replications of each scenario: rows [scenario, replication, metric, value] of the outcomes (group all)
    plus nmb (per patient, at each scenario's willingness to pay). The scenarios come resolved (loaded here, with
    their overrides), so a Dask worker on another machine needs neither the files nor base.toml."""
    rows = []
    for i, s in enumerate(scenarios):
        for rep in range(reps):
            res = run_replication(s, seed, rep)
            rows.append(_metrics(s, i, rep, res.patients, res.resources))
    return pd.concat(rows, ignore_index=True)


def resolved(paths: Sequence[str], overrides: Sequence[dict[str, Any]]) -> list[Scenario]:
    """Each scenario file loaded with its overrides (an evaluation's inputs, resolved in this process)."""
    return [load_scenario(path, ov) for path, ov in zip(paths, overrides, strict=True)]


def _metrics(s: Scenario, i: int, rep: int, patients: pd.DataFrame, resources: pd.DataFrame) -> pd.DataFrame:
    m = replication_metrics(patients, resources, s.horizon_days)
    m = m[(m["group"] == "all") & m["metric"].isin(OUTCOMES)].set_index("metric")["value"]
    wtp = economic_params(s).wtp
    values = {k: float(m.get(k, math.nan)) for k in OUTCOMES}
    values["nmb"] = wtp * values["qaly_per_patient"] - values["cost_per_patient"]
    return pd.DataFrame({"scenario": i, "replication": rep, "metric": list(values), "value": list(values.values())})


def outcome_of(frame: pd.DataFrame, outcome: str, n_scenarios: int) -> float:
    """Mean over replications of an outcome (of B - A, paired by replication, when there are two scenarios)."""
    sel = frame[frame["metric"] == outcome].pivot(index="replication", columns="scenario", values="value")
    values = sel[1] - sel[0] if n_scenarios == 2 else sel[0]
    return float(values.mean())


def _pmap(fn: Callable[..., Any], args: list[tuple], backend: Backend, what: str, kept: str,
          on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """fn(*a) for each a, in order, on the backend (sim/runs/backends.py); a lost worker or cluster stops the
    command with exit 3, saying what is `kept` of the `what` finished."""
    try:
        return backend.map(fn, args, on_done)
    except WorkLost as lost:
        raise RunInterrupted(f"{lost} during the {what}; {kept}") from None


def _backend(jobs: int, backend: Backend | None) -> Backend:
    return backend if backend is not None else Backend("processes", jobs)


def _spaces(scenarios: Sequence[Scenario], only: Sequence[str] | None) -> list[list[Uncertain]]:
    return [parameter_space(s, only) for s in scenarios]


def _overrides(spaces: list[list[Uncertain]], point: np.ndarray) -> list[dict[str, Any]]:
    """Per scenario, the overrides at one design point. Coordinates are laid out by the first scenario's space and
    matched by parameter path, so a parameter gets the same quantile in every scenario."""
    coords: dict[str, np.ndarray] = {}
    i = 0
    for u in spaces[0]:
        coords[u.path] = point[i:i + u.dims]
        i += u.dims
    out = []
    for space in spaces:
        ov: dict[str, Any] = {}
        for u in space:
            c = coords.get(u.path)
            ov.update(u.values(c if c is not None and len(c) == u.dims else [0.5] * u.dims))
        out.append(ov)
    return out


def _load(scenarios: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[Scenario]]:
    if not 1 <= len(scenarios) <= 2:
        raise ScenarioError("(command line)", "scenarios", len(scenarios), "one scenario, or two to compare (A B)")
    paths = [str(Path(p).resolve()) for p in scenarios]
    loaded = [load_scenario(p) for p in scenarios]
    return paths, loaded


SOBOL_PRECISION = 0.1  # widest 95% CI half-width of a Sobol index below which no warning is given


def _check_int(value: object, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ScenarioError("(command line)", name, value, f"a whole number >= {low}")


# ----------------------------------------------------------------------------------------------- PSA
@dataclass
class PsaResult:
    samples: pd.DataFrame        # sample, scenario, outcome, mean, var_within, n_reps (scenario "B-A" for B - A)
    table: pd.DataFrame          # one row per sample: outcomes of A (and B, and increments)
    variance: pd.DataFrame       # two-level variance split per outcome
    cea: dict[str, Any] | None   # headline cost-effectiveness numbers (with two scenarios)
    out_dir: Path | None
    manifest: dict[str, Any] | None = None
    evppi: pd.DataFrame | None = None  # evppi.csv: per parameter, largest first (with two scenarios)


def _psa_task(k: int, scenarios: list[Scenario], reps: int, seed: int) -> pd.DataFrame:
    """One PSA sample's replications, as rows (written by the caller: a Dask worker need not see our disk)."""
    frame = evaluate(scenarios, reps, sample_seed(seed, k))
    frame.insert(0, "sample", k)
    return frame


def psa(scenarios: Sequence[str | os.PathLike[str]], samples: int, reps: int, seed: int,
        out: str | os.PathLike[str], method: str = "lhs", jobs: int = 1, only: Sequence[str] | None = None,
        command: str | None = None, on_sample: Callable[[int], None] | None = None,
        overwrite: bool = False, backend: Backend | None = None) -> PsaResult:
    """Run a PSA of one scenario, or of B against A on common random numbers; write OUT and return the tables.
    Samples run on `backend` (default: `jobs` processes of this machine)."""
    _check_int(samples, "--samples", 2)
    _check_int(reps, "--reps", 1)
    if method not in ("lhs", "sobol"):
        raise ScenarioError("(command line)", "--method", method, "lhs or sobol")
    paths, loaded = _load(scenarios)
    spaces = _spaces(loaded, only)
    dims = total_dims(spaces[0])
    if dims == 0:
        raise ScenarioError(paths[0], "uncertainty", "no uncertain parameters", "at least one uncertain parameter")
    with RunFolder(out, "psa", overwrite=overwrite, keep_on_error=True) as run_folder:
        work = run_folder.open(resume=True)
        result = _psa_in(work, paths, loaded, spaces, dims, samples, reps, seed, method,
                         _backend(jobs, backend), only, command, on_sample)
        run_folder.publish(result.manifest)
    result.out_dir = Path(out)
    return result


def _psa_in(work: Path, paths: list[str], loaded: list[Scenario], spaces: list[list[Uncertain]], dims: int,
            samples: int, reps: int, seed: int, method: str, backend: Backend, only: Sequence[str] | None,
            command: str | None, on_sample: Callable[[int], None] | None) -> PsaResult:
    """The PSA's samples and tables in `work` (a locked OUT.partial): samples already there from an interrupted
    PSA of the same design are kept, any other content is cleared."""
    folder = work / "samples"
    config = {"scenarios": paths, "samples": samples, "reps": reps, "seed": seed, "method": method,
              "only": list(only or []), "resolved": [json.dumps(_jsonable(s), sort_keys=True) for s in loaded]}
    info = work / "psa.json"
    try:
        same = json.loads(info.read_text()) == config
    except (OSError, ValueError):
        same = False
    if not same:  # a different PSA was interrupted here (or none): start again
        for entry in work.iterdir():
            if entry.name != MARKER:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    outputs.write_json(info, config)
    points = design(samples, dims, method, seed)
    done = {int(p.stem.split("-")[1]) for p in folder.glob("sample-*.csv")}
    todo = [k for k in range(samples) if k not in done]
    args = [(k, resolved(paths, _overrides(spaces, points[k])), reps, seed) for k in todo]

    def keep(i: int, frame: pd.DataFrame) -> None:
        outputs.atomic_write_csv(folder / f"sample-{todo[i]:05d}.csv", frame)
        if on_sample:
            on_sample(todo[i])

    _pmap(_psa_task, args, backend, "PSA", f"finished samples are kept in {work}; run the same command again to "
          "go on from them", keep)

    raw = pd.concat([pd.read_csv(folder / f"sample-{k:05d}.csv") for k in range(samples)], ignore_index=True)
    long = _sample_summary(raw, len(paths))
    names = ["a", "b"][:len(paths)] + (["b-a"] if len(paths) == 2 else [])
    table = long.pivot_table(index="sample", columns=["scenario", "outcome"], values="mean", sort=False)
    table.columns = [f"{sc}.{o}" for sc, o in table.columns]
    table = table.reset_index()
    variance = pd.DataFrame([
        {"scenario": sc, "outcome": o, **cea.variance_split(g["mean"].to_numpy(), g["var_within"].to_numpy(), reps)}
        for (sc, o), g in long.groupby(["scenario", "outcome"], sort=False)])
    params = pd.DataFrame([_param_row(spaces[0], points[k]) for k in range(samples)])
    params.insert(0, "sample", range(samples))
    outputs.atomic_write_csv(work / "psa_samples.csv", long)
    outputs.atomic_write_csv(work / "psa.csv", table)
    outputs.atomic_write_csv(work / "variance.csv", variance)
    outputs.atomic_write_csv(work / "parameters.csv", params)
    outputs.atomic_write_csv(work / "uncertainty.csv", pd.DataFrame(
        [{"parameter": u.path, "distribution": u.describe(), "grade": u.grade, "source": u.source}
         for u in spaces[0]]))
    summary = None
    evppi = None
    ep = economic_params(loaded[0])
    if len(paths) == 2:
        costs = table[["a.cost_per_patient", "b.cost_per_patient"]].to_numpy()
        qalys = table[["a.qaly_per_patient", "b.qaly_per_patient"]].to_numpy()
        summary = cea.cea_summary(costs, qalys, ep.wtp)
        summary.update(currency=ep.currency, cost_year=ep.cost_year, scenario_a=loaded[0].name,
                       scenario_b=loaded[1].name)
        wtps = np.linspace(0.0, max(5 * ep.wtp, 1.0), 101)
        probs = cea.prob_optimal(costs, qalys, wtps)
        evpi_by_wtp = np.array([cea.evpi(costs, qalys, w) for w in wtps])
        outputs.atomic_write_csv(work / "ceac.csv", pd.DataFrame(
            {"wtp": wtps, "prob_a": probs[:, 0], "prob_b": probs[:, 1], "evpi_per_patient": evpi_by_wtp}))
        evppi = evppi_table(params, costs, qalys, ep.wtp)
        outputs.atomic_write_csv(work / "evppi.csv", evppi)
        outputs.atomic_write_csv(work / "evppi_groups.csv", evppi_groups_table(params, costs, qalys, ep.wtp))
        econ_figures.evpi_curve(wtps, evpi_by_wtp, ep.wtp, ep.currency, work / "evpi.png")
        outputs.atomic_write_csv(work / "cea.csv", pd.DataFrame([summary]))
        econ_figures.ce_plane(table["b-a.qaly_per_patient"].to_numpy(), table["b-a.cost_per_patient"].to_numpy(),
                              ep.wtp, ep.currency, work / "ce_plane.png", f"{loaded[1].name} vs {loaded[0].name}")
        econ_figures.ceac(wtps, probs, [loaded[0].name, loaded[1].name], ep.wtp, ep.currency, work / "ceac.png")
    manifest = {
        "csfsim_psa": True, "scenarios": [{"name": s.name, "file": p} for s, p in zip(loaded, paths, strict=True)],
        "columns": names, "samples": samples, "replications_per_sample": reps, "seed": seed, "method": method,
        "sample_seeds": "sample_seed(seed, k): numpy SeedSequence([seed, k]); shared by A and B within a sample",
        "uncertain_inputs": len(spaces[0]), "dimensions": dims, "only": list(only or []),
        "currency": ep.currency, "cost_year": ep.cost_year, "cea": summary,
        "evppi_method": "sort and split by each parameter (Strong & Oakley 2013), about sqrt(samples) blocks"
        if evppi is not None else None,
        **outputs.provenance(command)}
    shutil.rmtree(folder, ignore_errors=True)
    info.unlink(missing_ok=True)
    return PsaResult(samples=long, table=table, variance=variance, cea=summary, out_dir=None, manifest=manifest,
                     evppi=evppi)


def _jsonable(s: Scenario) -> Any:
    from sim.config.schema import to_jsonable

    return to_jsonable(s.resolved)


def evppi_table(params: pd.DataFrame, costs: np.ndarray, qalys: np.ndarray, wtp: float) -> pd.DataFrame:
    """evppi.csv: the EVPPI of each sampled parameter at `wtp` (`cea.evppi_single`), largest first, with its share
    of the EVPI (0 when the EVPI is 0) and the noise floor: the mean EVPPI of 20 random orders of the samples,
    what a parameter unrelated to the outcome would get from the estimator's upward bias (the same for all)."""
    total = cea.evpi(costs, qalys, wtp)
    rng = np.random.default_rng(20131)
    floor = float(np.mean([cea.evppi_single(costs, qalys, rng.permutation(len(params)), wtp) for _ in range(20)]))
    rows = []
    for column in params.columns:
        if column == "sample":
            continue
        value = cea.evppi_single(costs, qalys, params[column].to_numpy(dtype=float), wtp)
        rows.append({"parameter": column, "evppi_per_patient": value, "evpi_per_patient": total,
                     "share_of_evpi": value / total if total > 0 else 0.0, "noise_floor_per_patient": floor,
                     "blocks": cea.evppi_blocks(len(params)), "wtp": wtp})
    out = pd.DataFrame(rows, columns=["parameter", "evppi_per_patient", "evpi_per_patient", "share_of_evpi",
                                      "noise_floor_per_patient", "blocks", "wtp"])
    return out.sort_values("evppi_per_patient", ascending=False, kind="stable").reset_index(drop=True)


EVPPI_MIN_SAMPLES = 500  # below this the console and the app warn that an EVPPI ranking is mostly noise


def outcome_title(outcome: str, currency: str, paired: bool) -> str:
    """An outcome as a figure's axis names it: its label and unit (the currency named), and B - A when paired."""
    if outcome == "nmb":
        text = f"Net monetary benefit per patient ({currency})"
    elif outcome in METRICS:
        m = METRICS[outcome]
        text = f"{m.label} ({m.unit.replace('currency', currency)})"
    else:
        text = outcome
    return text + (", B − A" if paired else "")


def parameter_group(column: str) -> str:
    """The table a sampled parameter sits in: clinical.ebp_first_success.spontaneous -> clinical.ebp_first_success,
    profiles.low_volume.resources.mri.booking_days (factor) -> profiles.low_volume.resources.mri."""
    path = column.removesuffix(" (factor)")
    return path.rsplit(".", 1)[0] if "." in path else path


def evppi_groups_table(params: pd.DataFrame, costs: np.ndarray, qalys: np.ndarray, wtp: float) -> pd.DataFrame:
    """evppi_groups.csv: the EVPPI of each table of sampled parameters at `wtp` (`cea.evppi_regression`), largest
    first, with its share of the EVPI and its own noise floor: the mean EVPPI of the group over 20 random orders of
    the samples, the regression's upward bias for a group of that size with no effect. A group too large for the
    samples (fewer than 5 per coefficient) has no estimate."""
    total = cea.evpi(costs, qalys, wtp)
    columns = [c for c in params.columns if c != "sample"]
    groups: dict[str, list[str]] = {}
    for column in columns:
        groups.setdefault(parameter_group(column), []).append(column)
    rng = np.random.default_rng(20141)
    rows = []
    for group, members in groups.items():
        theta = params[members].to_numpy(dtype=float)
        value = cea.evppi_regression(costs, qalys, theta, wtp)
        floor = float(np.mean([cea.evppi_regression(costs, qalys, theta[rng.permutation(len(theta))], wtp)
                               for _ in range(20)])) if not np.isnan(value) else math.nan
        rows.append({"group": group, "parameters": len(members), "evppi_per_patient": value,
                     "evpi_per_patient": total, "share_of_evpi": value / total if total > 0 else 0.0,
                     "noise_floor_per_patient": floor, "wtp": wtp})
    out = pd.DataFrame(rows, columns=["group", "parameters", "evppi_per_patient", "evpi_per_patient",
                                      "share_of_evpi", "noise_floor_per_patient", "wtp"])
    return out.sort_values("evppi_per_patient", ascending=False, kind="stable", na_position="last"
                           ).reset_index(drop=True)


def _param_row(space: list[Uncertain], point: np.ndarray) -> dict[str, float]:
    """Drawn values of one sample (a duration distribution is shown as its scale factor)."""
    row: dict[str, float] = {}
    i = 0
    for u in space:
        vals = u.values(point[i:i + u.dims])
        if u.leaves or not isinstance(next(iter(vals.values())), dict):
            row.update({k: float(v) for k, v in vals.items()})
        else:
            row[f"{u.path} (factor)"] = u._draw(1.0, float(point[i]))
        i += u.dims
    return row


def _sample_summary(raw: pd.DataFrame, n_scenarios: int) -> pd.DataFrame:
    """Per sample, scenario and outcome: mean and variance over replications; with two scenarios also B - A."""
    labels = {0: "a", 1: "b"}
    frames = [raw.assign(scenario=raw["scenario"].map(labels))]
    if n_scenarios == 2:
        wide = raw.pivot_table(index=["sample", "replication", "metric"], columns="scenario", values="value")
        diff = (wide[1] - wide[0]).rename("value").reset_index()
        frames.append(diff.assign(scenario="b-a"))
    both = pd.concat(frames, ignore_index=True)
    g = both.groupby(["sample", "scenario", "metric"], sort=False)["value"]
    out = pd.DataFrame({"mean": g.mean(), "var_within": g.var(ddof=1), "n_reps": g.count()}).reset_index()
    return out.rename(columns={"metric": "outcome"})


# ----------------------------------------------------------------------------------------------- sensitivity
@dataclass
class SensitivityResult:
    oneway: pd.DataFrame
    base_value: float
    sobol: pd.DataFrame | None
    out_dir: Path | None


def _econ_only(u: Uncertain) -> bool:
    return u.path.startswith(ECON_SECTIONS)


def sensitivity(scenarios: Sequence[str | os.PathLike[str]], reps: int, seed: int, out: str | os.PathLike[str],
                outcome: str = "nmb", only: Sequence[str] | None = None, low: float = 0.025, high: float = 0.975,
                sobol_n: int = 0, sobol_params: int = 6, jobs: int = 1, top: int = 15,
                command: str | None = None, overwrite: bool = False,
                backend: Backend | None = None) -> SensitivityResult:
    """One-way sensitivity of `outcome` (of B - A with two scenarios) over each scalar uncertain parameter, from its
    `low` to its `high` quantile with the others at their values; tornado figure. With `sobol_n` > 0, Sobol
    indices (SALib) of the `sobol_params` widest parameters of the tornado, on n x (d + 2) model runs. Every
    evaluation uses the same seed (common random numbers)."""
    _check_int(reps, "--reps", 1)
    _check_int(sobol_n, "--sobol", 0)
    if outcome not in (*OUTCOMES, "nmb"):
        raise ScenarioError("(command line)", "--outcome", outcome, f"one of {', '.join((*OUTCOMES, 'nmb'))}")
    if not 0 < low < high < 1:
        raise ScenarioError("(command line)", "--range", [low, high], "two quantiles 0 < low < high < 1")
    paths, loaded = _load(scenarios)
    spaces = _spaces(loaded, only)
    scalar = [u for u in spaces[0] if not u.leaves and u.family != "fixed"]  # share tables vary only in the PSA
    if not scalar:
        raise ScenarioError(paths[0], "--params", list(only or []), "at least one scalar uncertain parameter")
    with RunFolder(out, "sensitivity", overwrite=overwrite) as run_folder:
        result, manifest = _sensitivity_in(run_folder.open(), paths, loaded, spaces, scalar, reps, seed, outcome,
                                           low, high, sobol_n, sobol_params, _backend(jobs, backend), top,
                                           command)
        run_folder.publish(manifest)
    result.out_dir = Path(out)
    return result


def _sensitivity_in(work: Path, paths: list[str], loaded: list[Scenario], spaces: list[list[Uncertain]],
                    scalar: list[Uncertain], reps: int, seed: int, outcome: str, low: float, high: float,
                    sobol_n: int, sobol_params: int, backend: Backend, top: int,
                    command: str | None) -> tuple[SensitivityResult, dict[str, Any]]:
    """The sensitivity analysis's tables and figures, written into `work` (a locked OUT.partial)."""
    n_sc = len(paths)

    # Base: every parameter at its value. Keep its tables, so economic parameters need no new simulation.
    base_runs: list[list[tuple[pd.DataFrame, pd.DataFrame]]] = []
    base_rows = []
    for i, s in enumerate(loaded):
        runs = []
        for rep in range(reps):
            res = run_replication(s, seed, rep)
            runs.append((res.patients.drop(columns=list(ECONOMICS_COLUMNS)), res.resources))
            base_rows.append(_metrics(s, i, rep, res.patients, res.resources))
        base_runs.append(runs)
    base_value = outcome_of(pd.concat(base_rows, ignore_index=True), outcome, n_sc)

    def point(u: Uncertain, q: float) -> list[dict[str, Any]]:
        by_path = [{v.path: v for v in space} for space in spaces]
        return [by_path[j][u.path].values([q]) if u.path in by_path[j] else {} for j in range(n_sc)]

    settings = [(u, q) for u in scalar for q in (low, high)]
    values: dict[tuple[str, float], float] = {}
    sim_args, sim_keys = [], []
    for u, q in settings:
        ovs = point(u, q)
        if _econ_only(u):
            rows = []
            for j, path in enumerate(paths):
                s = load_scenario(path, ovs[j])
                for rep, (patients, resources) in enumerate(base_runs[j]):
                    rows.append(_metrics(s, j, rep, add_economics(patients, s), resources))
            values[(u.path, q)] = outcome_of(pd.concat(rows, ignore_index=True), outcome, n_sc)
        else:
            sim_args.append((resolved(paths, ovs), reps, seed))
            sim_keys.append((u.path, q))
    for key, frame in zip(sim_keys, _pmap(evaluate, sim_args, backend, "sensitivity analysis", "nothing was "
                                          "written; run the command again"), strict=True):
        values[key] = outcome_of(frame, outcome, n_sc)
    rows = []
    for u in scalar:
        lo_v = next(iter(point(u, low)[0].values()))
        hi_v = next(iter(point(u, high)[0].values()))
        if isinstance(lo_v, dict):  # a duration distribution: report its scale factor
            lo_v, hi_v = u._draw(1.0, low), u._draw(1.0, high)
        rows.append({"parameter": u.path, "distribution": u.describe(), "grade": u.grade, "low_value": lo_v,
                     "high_value": hi_v, "low_outcome": values[(u.path, low)],
                     "high_outcome": values[(u.path, high)]})
    oneway = pd.DataFrame(rows)
    oneway["swing"] = (oneway["high_outcome"] - oneway["low_outcome"]).abs()
    oneway = oneway.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)
    label = outcome + (" (B - A)" if n_sc == 2 else "")
    outputs.atomic_write_csv(work / "oneway.csv", oneway.assign(base_outcome=base_value, outcome=label))
    shown = outcome_title(outcome, economic_params(loaded[0]).currency, n_sc == 2)
    econ_figures.tornado(oneway, shown, base_value, work / "tornado.png", top=top)
    econ_figures.tornado(oneway, shown, base_value, work / "tornado.svg", top=top)

    sobol_table = None
    if sobol_n > 0:
        chosen = [u for u in scalar if u.path in set(oneway["parameter"].head(sobol_params))]

        def model(x: np.ndarray) -> np.ndarray:
            args = []
            for row in x:
                ovs = [{} for _ in range(n_sc)]
                for u, q in zip(chosen, row, strict=True):
                    for j, ov in enumerate(point(u, float(q))):
                        ovs[j].update(ov)
                args.append((resolved(paths, ovs), reps, seed))
            frames = _pmap(evaluate, args, backend, "Sobol analysis", "nothing was written; run the command again")
            return np.array([outcome_of(f, outcome, n_sc) for f in frames])

        idx = cea.sobol_indices(model, [u.path for u in chosen], sobol_n, seed=seed)
        sobol_table = pd.DataFrame({"parameter": [u.path for u in chosen], "S1": idx["S1"],
                                    "S1_conf95": idx["S1_conf"], "ST": idx["ST"], "ST_conf95": idx["ST_conf"],
                                    "model_runs": cea.sobol_design_size(sobol_n, len(chosen)), "outcome": label})
        outputs.atomic_write_csv(work / "sobol.csv", sobol_table)
        widest = float(np.nanmax(sobol_table[["S1_conf95", "ST_conf95"]].to_numpy()))
        # Outside [0, 1] beyond its own CI: a parameter without effect has S1 near 0, a little below at any N.
        upper = sobol_table[["S1", "ST"]].to_numpy() + sobol_table[["S1_conf95", "ST_conf95"]].to_numpy()
        lower = sobol_table[["S1", "ST"]].to_numpy() - sobol_table[["S1_conf95", "ST_conf95"]].to_numpy()
        outside = bool((upper < 0).any() or (lower > 1).any())
        if widest > SOBOL_PRECISION or outside:
            warnings.warn(f"Sobol indices are imprecise at --sobol {sobol_n} (widest 95% CI +/-{widest:.2f}"
                          + ("; an index outside [0, 1] is noise" if outside else "")
                          + f"): use a larger --sobol, e.g. {max(256, 4 * sobol_n)}", stacklevel=2)
    manifest = {
        "csfsim_sensitivity": True, "scenarios": [{"name": s.name, "file": p} for s, p in zip(loaded, paths,
                                                                                              strict=True)],
        "outcome": label, "base_outcome": base_value, "quantiles": [low, high], "replications": reps, "seed": seed,
        "parameters": len(scalar), "sobol_n": sobol_n, **outputs.provenance(command)}
    return SensitivityResult(oneway=oneway, base_value=base_value, sobol=sobol_table, out_dir=None), manifest
