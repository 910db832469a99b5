"""The `csfsim` command. Bad input exits 2 with one line naming file, field, value and expectation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.errors import ScenarioError

HEADLINE = [
    ("diagnosis_delay_median_days", "spontaneous", "Diagnosis delay, spontaneous, median (days)"),
    ("diagnosis_delay_mean_days", "all", "Diagnosis delay, all, mean (days)"),
    ("time_to_resolution_median_days", "spontaneous", "Onset to resolution, spontaneous, median (days)"),
    ("share_resolved_by_365_days", "spontaneous", "Resolved within a year, spontaneous (share)"),
    ("share_persistent", "spontaneous", "Persistent symptoms, spontaneous (share)"),
    ("share_in_pathway_at_horizon", "spontaneous", "Still in pathway at horizon, spontaneous (share)"),
    ("ebp_per_patient", "all", "Blood patches per patient"),
    ("surgery_per_patient", "all", "Surgeries per patient"),
    ("embolization_per_patient", "spontaneous", "Embolizations per patient, spontaneous"),
    ("share_rih", "spontaneous", "Rebound hypertension, spontaneous (share)"),
    ("share_referred", "all", "Referred (share)"),
    ("symptom_days_mean", "all", "Symptom days per patient, mean"),
]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole-number seed, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2**63-1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from sim.experiment import default_jobs

    parser = argparse.ArgumentParser(prog="csfsim", description="Spinal CSF-leak care-pathway simulation.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reps", type=_positive_int, default=10, help="replications (default 10)")
        p.add_argument("--seed", type=_seed, default=1, help="root seed (default 1)")
        p.add_argument("--jobs", type=_positive_int, default=default_jobs(),
                       help="worker processes (default: all cores)")
        p.add_argument("--no-events", action="store_true", help="skip the event log (faster, smaller)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--engine", choices=["auto", "simpy", "fast"], default="auto",
                       help="auto (default): the numpy fast path when no capacity can make anyone wait and with "
                            "--no-events, else SimPy; fast requires both")

    p_run = sub.add_parser("run", help="run one scenario")
    p_run.add_argument("scenario")
    p_run.add_argument("--out", required=False, help="output folder (default results/<scenario file stem>)")
    p_run.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
    common(p_run)

    p_cmp = sub.add_parser("compare", help="compare scenarios on common random numbers")
    p_cmp.add_argument("scenarios", nargs="+")
    p_cmp.add_argument("--out", default="results/compare", help="output folder (default results/compare)")
    common(p_cmp)

    p_val = sub.add_parser("validate", help="check a scenario file and print its resolved summary")
    p_val.add_argument("scenario")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = "csfsim " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        if args.command == "validate":
            return _validate(args.scenario)
        if args.command == "run":
            return _run(args, command)
        if args.command == "compare":
            return _compare(args, command)
    except ScenarioError as err:
        print(f"csfsim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("csfsim: interrupted; finished replications are kept, rerun with --resume", file=sys.stderr)
        return 130
    return 0  # pragma: no cover


def _validate(path: str) -> int:
    from sim.scenario import load_scenario

    s = load_scenario(path)
    rate = sum(s.population.arrivals_per_year.values())
    print(f"{path}: valid. '{s.name}': {len(s.centers)} center(s) "
          f"({', '.join(f'{c.name}={c.profile_name}' for c in s.centers)}), horizon {s.horizon_days:g} days, "
          f"{rate:g} arrivals per year")
    return 0


def _run(args: argparse.Namespace, command: str) -> int:
    from sim.experiment import run
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    out = Path(args.out) if args.out else Path("results") / Path(args.scenario).stem
    result = run(scenario, reps=args.reps, seed=args.seed, jobs=args.jobs, out=out, log_events=not args.no_events,
                 resume=args.resume, progress=False if args.quiet else None, command=command, engine=args.engine)
    print(f"{scenario.name}: {args.reps} replications, {result.manifest['patients']} patients, "
          f"{result.manifest['wall_seconds']:.1f} s, engine {result.manifest['engine']}")
    for metric, group, label in HEADLINE:
        row = result.metric(metric, group)
        print(f"  {label:<52} {row['mean']:10.3f}  (95% CI {row['ci95_low']:.3f} to {row['ci95_high']:.3f})")
    print(f"Written to {out}/")
    return 0


def _compare(args: argparse.Namespace, command: str) -> int:
    from sim.compare import compare

    result = compare(args.scenarios, reps=args.reps, seed=args.seed, jobs=args.jobs, out=args.out,
                     log_events=not args.no_events, progress=False if args.quiet else None, command=command,
                     engine=args.engine)
    print(format_comparison(result.comparison, [r.scenario.name for r in result.runs]))
    print("Engine: " + ", ".join(f"{r.scenario.name}: {r.manifest['engine']}" for r in result.runs))
    print(f"Written to {args.out}/ (comparison.csv, and one run folder per scenario)")
    return 0


def format_comparison(table, names: list[str]) -> str:
    """Side-by-side text table of headline metrics with the paired difference from the first scenario."""
    width = 26
    lines = [f"{'':<50}" + "".join(f"{n[:width]:>{width}}" for n in names) + f"{'difference (95% CI)':>30}"]
    for metric, group, label in HEADLINE:
        sel = table[(table["metric"] == metric) & (table["group"] == group)].sort_values("scenario_index")
        if sel.empty:
            continue
        cells = "".join(f"{row['mean']:>{width}.3f}" for _, row in sel.iterrows())
        last = sel.iloc[-1]
        diff = f"{last['diff_vs_first']:+.3f} ({last['diff_ci95_low']:+.3f}, {last['diff_ci95_high']:+.3f})"
        lines.append(f"{label:<50}{cells}{diff:>30}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
