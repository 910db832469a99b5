"""Scale check (issue: ten million patients): run a long experienced-center scenario on all cores with tables
written per replication, and report patients, wall time and the peak memory of the main and worker processes.

    .venv/bin/python benchmarks/scale.py [--patients 10000000] [--jobs 2]

Not part of `make bench` (it takes several minutes); its figures go to benchmarks/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.config.scenario import load_scenario  # noqa: E402
from sim.runs.experiment import run  # noqa: E402
from sim.runs.replication import run_replication  # noqa: E402


class WorkerPeaks:
    """The peak memory (VmHWM) of this process's child processes, read from /proc five times a second while the
    run goes on (a peak in a worker's last 0.2 s, as it exits, can be missed). Not RUSAGE_CHILDREN: Linux
    carries ru_maxrss over from the parent across fork and exec, so any child started late (the `git` of the
    manifest) reported this process's own peak as a worker's. The polling thread exists when the run forks its
    workers; it holds no lock the workers could need (it only reads /proc)."""

    def __init__(self) -> None:
        self.peaks_kib: dict[int, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.wait(0.2):
            self.read()

    def read(self) -> None:
        for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
            try:  # a thread (or child) of this process may exit between the listing and the reading
                pids = children.read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text().splitlines()
                except OSError:
                    continue
                if any(line.startswith("Name:") and "git" in line for line in status):
                    continue
                hwm = [int(line.split()[1]) for line in status if line.startswith("VmHWM:")]
                if hwm:
                    self.peaks_kib[int(pid)] = max(self.peaks_kib.get(int(pid), 0), hwm[0])

    def __enter__(self) -> WorkerPeaks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        if not self.peaks_kib:
            print("scale.py: no worker process seen in /proc (one job, or no /proc/*/children here): "
                  "peak_rss_largest_worker_mib is 0", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10_000_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--horizon-days", type=float, default=36525.0, help="100 years per replication")
    args = parser.parse_args()
    scenario = load_scenario(ROOT / "scenarios" / "experienced_center.toml",
                             overrides={"run.horizon_days": args.horizon_days})
    per_rep = len(run_replication(scenario, 1, 0).patients)
    reps = max(1, round(args.patients / per_rep))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with WorkerPeaks() as workers:
            r = run(scenario, reps=reps, seed=1, jobs=args.jobs, out=Path(tmp) / "scale", log_events=False,
                    progress=None)
        seconds = time.perf_counter() - start
        size_mib = sum(p.stat().st_size for p in (Path(tmp) / "scale").iterdir()) / 2**20
    figures = {
        "patients": r.manifest["patients"], "replications": reps, "patients_per_replication": per_rep,
        "jobs": args.jobs, "wall_seconds": round(seconds, 1),
        "patients_per_second": round(r.manifest["patients"] / seconds),
        "peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_largest_worker_mib": round(max(workers.peaks_kib.values(), default=0) / 1024),
        "output_mib": round(size_mib, 1),
    }
    print(json.dumps(figures, indent=2))
    target = ROOT / "benchmarks" / "scale.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(figures, indent=2) + "\n")
    os.replace(tmp, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
