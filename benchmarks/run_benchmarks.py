"""`make bench`: speed figures of csfsim in one run, printed and saved to benchmarks/results.json.

Figures are ratios measured in the same process on the same machine, so they can be compared across changes:
- patients per second per core of one replication of each shipped scenario, and SimPy events per patient;
- a bare SimPy M/M/c queue written here, as the ceiling of SimPy itself: events per second, and the ratio of
  csfsim's events per second to it (how much work csfsim adds per event). Like for like, the engine's clock
  excludes the cohort draw as the reference's excludes its draws; the whole-replication ratio is reported too.
  A lean engine lowers events per patient, and the events it drops (a granted request, a release) are the cheap
  ones, so this ratio understates the gain: read it with patients per second;
- parallel efficiency of --jobs 2 against --jobs 1 (interleaved pairs after a warm-up run, in a fresh process as a
  command-line run), on replications of ~26,000 and ~2,600 patients;
- peak memory (RSS) of a run of one million patients, in a child process;
- the variance reduction of common random numbers on the paired difference of mean time to resolution;
- the fast engine (numpy, `sim.engines.fast_engine`) against the SimPy engine on each shipped scenario made
  capacity-unlimited, on the same cohorts: engine alone (cohort drawn beforehand) and whole replications (draw,
  engine, tables).
Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.analysis.stats import replication_metrics  # noqa: E402
from sim.config.scenario import load_scenario  # noqa: E402
from sim.engines.choice import unlimited_overrides  # noqa: E402
from sim.engines.fast_engine import FastPathway  # noqa: E402
from sim.engines.simpy_engine import Pathway  # noqa: E402
from sim.model.population import draw_cohort, draw_cohorts  # noqa: E402
from sim.runs.experiment import run  # noqa: E402
from sim.runs.replication import batch_size, run_replication, run_replications  # noqa: E402

SCENARIOS = {"experienced": ROOT / "scenarios" / "experienced_center.toml",
             "low_volume": ROOT / "scenarios" / "low_volume_center.toml"}


def bare_simpy_mmc(n_customers: int = 100_000, c: int = 3, lam: float = 2.7, mean_service: float = 1.0) -> dict:
    """A plain SimPy M/M/c queue with numpy draws made up front: the reference event rate."""
    rng = np.random.default_rng(1)
    inter = rng.exponential(1 / lam, n_customers)
    service = rng.exponential(mean_service, n_customers)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=c)

    def customer(i: int):
        with server.request() as req:
            yield req
            yield env.timeout(service[i])

    def source():
        for i in range(n_customers):
            yield env.timeout(inter[i])
            env.process(customer(i))

    env.process(source())
    start = time.perf_counter()
    env.run()
    seconds = time.perf_counter() - start
    events = next(env._eid)
    return {"customers_per_second": n_customers / seconds, "events_per_second": events / seconds,
            "events_per_customer": events / n_customers}


def best_seconds(fn, rounds: int) -> float:
    """The shortest of `rounds` timed calls of `fn`: this machine's load varies by about 10% from one second to the
    next, and the shortest time is the one least disturbed."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def engine_speed(path: Path, reps: int = 5, rounds: int = 3) -> dict:
    """One replication at a time on the SimPy engine: whole replications (cohort draw, simulation, tables,
    economics) for patients per second per core, and the engine alone (the cohort drawn beforehand, as the bare
    reference draws before its clock starts) for events per second, interleaved with the bare reference so that
    both see the same machine load. Each timing, csfsim's and the reference's, is the best of `rounds`."""
    scenario = load_scenario(path, overrides={"run.horizon_days": 3650})
    patients = events = 0
    whole_seconds = engine_seconds = 0.0
    reference_events_per_second = []
    for rep in range(reps):
        runs = [run_replication(scenario, 1, rep, log_events=False, engine="simpy") for _ in range(rounds)]
        patients += len(runs[0].patients)
        events += runs[0].n_simpy_events
        whole_seconds += min(r.wall_seconds for r in runs)
        cohort = draw_cohort(scenario, 1, rep)
        engine_seconds += best_seconds(lambda c=cohort: Pathway(scenario, c).run(), rounds)
        reference_events_per_second.append(max(bare_simpy_mmc(30_000)["events_per_second"] for _ in range(rounds)))
    reference = float(np.mean(reference_events_per_second))
    return {"patients_per_second_per_core": patients / whole_seconds, "simpy_events_per_patient": events / patients,
            "engine_patients_per_second": patients / engine_seconds,
            "simpy_events_per_second": events / engine_seconds,
            "bare_simpy_events_per_second_interleaved": reference,
            "events_per_second_ratio_to_bare_simpy": events / engine_seconds / reference,
            "events_per_second_ratio_whole_replication": events / whole_seconds / reference}


def fast_path_speed(path: Path, batches: int = 2, rounds: int = 3) -> dict:
    """Fast path vs SimPy engine on the scenario made capacity-unlimited, interleaved on the same cohorts.

    `batches` batches of replications, each as many as `run` puts in one (`replication.batch_size`). Engine alone
    (cohort drawn beforehand): one replication at a time, and a batch advanced as one cohort as `run` does.
    Whole replications (draw + engine + tables): `run_replication` on the SimPy engine against
    `run_replications` on the fast path in batches. Each timing is the best of `rounds`."""
    shipped = load_scenario(path)
    scenario = load_scenario(path, overrides={**unlimited_overrides(shipped), "run.horizon_days": 3650})
    batch = batch_size(scenario)  # as `run` batches them
    reps = batches * batch
    patients = 0
    engine = {"simpy": 0.0, "fast": 0.0, "fast_batched": 0.0}
    whole = {"simpy": 0.0, "fast_batched": 0.0}
    for first in range(1000, 1000 + 4 * batch, batch):  # fill the ladder table, as a long run has (other seeds'
        run_replications(scenario, 2, list(range(first, first + batch)))  # patients: none of the measured ones)
    for first in range(0, reps, batch):
        group = list(range(first, min(first + batch, reps)))
        # The fast path's batch first: measured right after SimPy replications, its first batch ran up to twice as
        # slow (memory the SimPy runs left behind), which a run, on one engine, never sees.
        joint, sizes = draw_cohorts(scenario, 1, group)
        patients += joint.n
        engine["fast_batched"] += best_seconds(lambda j=joint, s=sizes: FastPathway(scenario, j, s).run(), rounds)
        del joint
        whole["fast_batched"] += best_seconds(lambda g=group: run_replications(scenario, 1, g), rounds)
        for rep in group:
            cohort = draw_cohort(scenario, 1, rep)
            engine["simpy"] += best_seconds(lambda c=cohort: Pathway(scenario, c).run(), rounds)
            engine["fast"] += best_seconds(lambda c=cohort: FastPathway(scenario, c).run(), rounds)
        for rep in group:
            whole["simpy"] += min(run_replication(scenario, 1, rep, engine="simpy").wall_seconds
                                  for _ in range(rounds))
    return {"patients": patients, "batch_replications": batch,
            "fast_engine_patients_per_second": patients / engine["fast"],
            "fast_engine_batched_patients_per_second": patients / engine["fast_batched"],
            "simpy_engine_patients_per_second": patients / engine["simpy"],
            "engine_speed_ratio": engine["simpy"] / engine["fast"],
            "engine_speed_ratio_batched": engine["simpy"] / engine["fast_batched"],
            "fast_replication_patients_per_second": patients / whole["fast_batched"],
            "simpy_replication_patients_per_second": patients / whole["simpy"],
            "replication_speed_ratio": whole["simpy"] / whole["fast_batched"]}


def parallel_efficiency(reps: int = 8, horizon_days: float = 36525, rounds: int = 3) -> dict:
    """--jobs 2 vs --jobs 1, each a full `run()` of the same replications with the same outputs.

    Default: replications of ~26,000 patients (100-year horizon), as in real research runs. One warm-up run first
    (imports and first-use set-up are paid once per session, not per run; before, the first timed run paid them,
    which flattered --jobs 2 since --jobs 1 went first). Then `rounds` pairs alternating which goes first, since
    the machine's two cores are shared and load drifts; figures are medians of the pairs' speedups."""
    scenario = load_scenario(SCENARIOS["low_volume"], overrides={"run.horizon_days": horizon_days})
    run(scenario, reps=2, seed=99, jobs=1, log_events=False, progress=False)
    timings: dict[int, list[float]] = {1: [], 2: []}
    patients = 0
    for i in range(rounds):
        for jobs in ((1, 2) if i % 2 == 0 else (2, 1)):
            start = time.perf_counter()
            r = run(scenario, reps=reps, seed=3, jobs=jobs, log_events=False, progress=False)
            timings[jobs].append(time.perf_counter() - start)
            patients = r.manifest["patients"]
    speedups = [a / b for a, b in zip(timings[1], timings[2], strict=True)]
    speedup = float(np.median(speedups))
    return {"seconds_jobs_1": timings[1], "seconds_jobs_2": timings[2], "speedups": speedups, "speedup": speedup,
            "efficiency": speedup / 2, "cores": os.cpu_count(), "replication_patients": round(patients / reps)}


def in_fresh_process(name: str, **kwargs: object) -> dict:
    """`name(**kwargs)` of this module in a new Python process, as a user's `csfsim run` starts.

    Why, for the parallel figures: measured in this process after the fast-path section, --jobs 2 ran at 0.86
    instead of 0.90-0.92, since this process then holds a few hundred MB of heap that the forked worker and this
    process share copy-on-write, and pay for page by page as they reuse it. A command-line run never starts so."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import run_benchmarks as rb; "
            "print(json.dumps(getattr(rb, sys.argv[2])(**json.loads(sys.argv[3]))))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent), name,
                          json.dumps(kwargs)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} in a fresh process failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def _ceiling_work(kind: str, results) -> None:
    """The same CPU-bound work in any process; puts the seconds it took on `results`."""
    start = time.perf_counter()
    if kind == "bare":
        bare_simpy_mmc(100_000)
    else:
        scenario = load_scenario(SCENARIOS["low_volume"], overrides={"run.horizon_days": 3652.5})
        for rep in range(16):
            run_replication(scenario, 1, rep, engine="simpy")
    results.put(time.perf_counter() - start)


def parallel_ceiling(rounds: int = 3) -> dict:
    """What two cores give at best: the same work in one process alone, then in two processes at once (no I/O,
    nothing shared). Two processes slow each other through the shared caches and memory bus, so this is the
    efficiency no run can beat on this machine: for the bare SimPy queue, and for csfsim replications of ~2,600
    patients (tables included). Forked processes, so each starts with this one's imports."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    results = ctx.SimpleQueue()

    def seconds(copies: int) -> float:
        procs = [ctx.Process(target=_ceiling_work, args=(kind, results)) for _ in range(copies)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return max(results.get() for _ in procs)

    out: dict[str, object] = {}
    for kind in ("bare", "csfsim"):
        seconds(1)  # warm-up
        ratios = [seconds(1) / seconds(2) for _ in range(rounds)]
        out[f"{kind}_efficiency"] = float(np.median(ratios))
        out[f"{kind}_ratios"] = ratios
    return out


MEMORY_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from sim.runs.experiment import run
from sim.config.scenario import load_scenario
s = load_scenario({path!r}, overrides={{"run.horizon_days": 3650}})
start = time.perf_counter()
r = run(s, reps={reps}, seed=1, jobs=1, out={out!r}, log_events=False, progress=False)
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec, so a child of a large
# benchmark process would report the parent's peak instead of its own.
status = open("/proc/self/status").read().splitlines() if sys.platform == "linux" else []
hwm = [int(line.split()[1]) for line in status if line.startswith("VmHWM:")]
print(r.manifest["patients"], seconds, hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory_million(target_patients: int = 1_000_000) -> dict:
    """Run enough replications for about a million patients in a child process and read its peak RSS."""
    scenario = load_scenario(SCENARIOS["experienced"], overrides={"run.horizon_days": 3650})
    per_rep = len(run_replication(scenario, 1, 0).patients)
    reps = max(1, round(target_patients / per_rep))
    with tempfile.TemporaryDirectory() as tmp:
        code = MEMORY_CHILD.format(root=str(ROOT), path=str(SCENARIOS["experienced"]), reps=reps,
                                   out=str(Path(tmp) / "run"))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    patients, seconds, rss_kib = int(out[0]), float(out[1]), int(out[2])
    return {"patients": patients, "replications": reps, "seconds": seconds, "peak_rss_mib": rss_kib / 1024}


def crn_variance_reduction(reps: int = 30) -> dict:
    """Variance of the paired difference of mean time to resolution: common vs independent random numbers."""
    exp, low = (load_scenario(SCENARIOS[k]) for k in ("experienced", "low_volume"))

    def metric(scenario, seed, rep):
        r = run_replication(scenario, seed, rep)
        m = replication_metrics(r.patients, r.resources, scenario.horizon_days)
        sel = m[(m["metric"] == "time_to_resolution_mean_days") & (m["group"] == "all")]
        return float(sel["value"].iloc[0])

    a = np.array([metric(exp, 11, r) for r in range(reps)])
    b_common = np.array([metric(low, 11, r) for r in range(reps)])
    b_indep = np.array([metric(low, 12_345, r) for r in range(reps)])
    var_common = float(np.var(b_common - a, ddof=1))
    var_indep = float(np.var(b_indep - a, ddof=1))
    return {"var_paired_common": var_common, "var_paired_independent": var_indep,
            "variance_reduction_factor": var_indep / var_common, "replications": reps}


def settle() -> None:
    """Before each section: what earlier sections left in this process goes out of the garbage collector's reach,
    so that it does not slow this section's collections (a run is a fresh process; this one holds the lot)."""
    gc.collect()
    gc.freeze()


def main() -> int:
    results: dict[str, object] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ref = bare_simpy_mmc()
    results["bare_simpy_mmc"] = ref
    print(f"bare SimPy M/M/3: {ref['customers_per_second']:,.0f} customers/s, "
          f"{ref['events_per_second']:,.0f} events/s")
    for name, path in SCENARIOS.items():
        settle()
        e = engine_speed(path)
        results[f"engine_{name}"] = e
        print(f"csfsim {name}: {e['patients_per_second_per_core']:,.0f} patients/s/core (whole replication), "
              f"{e['engine_patients_per_second']:,.0f} (engine alone); {e['simpy_events_per_patient']:.1f} SimPy "
              f"events/patient; events/s = {e['events_per_second_ratio_to_bare_simpy']:.2f} x bare SimPy "
              f"(engine alone), {e['events_per_second_ratio_whole_replication']:.2f} x (whole replication)")
    for name, path in SCENARIOS.items():
        settle()
        f = fast_path_speed(path)
        results[f"fast_path_{name}_unlimited"] = f
        print(f"fast path, {name} made unlimited: engine {f['fast_engine_batched_patients_per_second']:,.0f} "
              f"patients/s in batches of {f['batch_replications']} = {f['engine_speed_ratio_batched']:.1f} x SimPy "
              f"engine ({f['engine_speed_ratio']:.1f} x one replication at a time); whole replications "
              f"{f['fast_replication_patients_per_second']:,.0f} patients/s = {f['replication_speed_ratio']:.1f} x")
    for key, horizon in (("parallel", 36525), ("parallel_small_replications", 3652.5)):
        settle()
        par = in_fresh_process("parallel_efficiency", horizon_days=horizon)
        results[key] = par
        print(f"--jobs 2 vs --jobs 1, {par['replication_patients']:,} patients per replication: speedup "
              f"{par['speedup']:.2f}, efficiency {par['efficiency']:.2f} ({par['cores']} cores, median of "
              f"{len(par['speedups'])} interleaved pairs, in a fresh process)")
    settle()
    ceiling = in_fresh_process("parallel_ceiling")
    results["parallel_ceiling"] = ceiling
    print(f"this machine's ceiling for two processes: efficiency {ceiling['bare_efficiency']:.2f} (bare SimPy), "
          f"{ceiling['csfsim_efficiency']:.2f} (csfsim replications, no I/O)")
    mem = peak_memory_million()
    results["memory_million_patients"] = mem
    print(f"{mem['patients']:,} patients in {mem['replications']} replications: "
          f"peak RSS {mem['peak_rss_mib']:.0f} MiB, {mem['seconds']:.1f} s")
    settle()
    crn = crn_variance_reduction()
    results["common_random_numbers"] = crn
    print(f"common random numbers: {crn['variance_reduction_factor']:.1f}x lower variance of the paired "
          f"difference in mean time to resolution ({crn['replications']} replications)")
    results["max_rss_this_process_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    target = ROOT / "benchmarks" / "results.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, target)
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
