"""The `csfsim` command. Bad input exits 2 with one line naming file, field, value and expectation."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from sim.analysis.headline import HEADLINE
from sim.errors import RunInterrupted, ScenarioError, printable


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _reps(text: str) -> int | str:
    if text == "auto":
        return text
    return _positive_int(text)


def _precision(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.05, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a relative half-width between 0 and 1, got {text!r}")
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
    from sim.runs.backends import default_jobs

    parser = argparse.ArgumentParser(prog="csfsim", description="Spinal CSF-leak care-pathway simulation.")
    sub = parser.add_subparsers(dest="command", required=True)

    def overwrite(p: argparse.ArgumentParser) -> None:
        p.add_argument("--overwrite", action="store_true",
                       help="replace --out if it holds a finished csfsim output of this command (only that: a "
                            "folder holding anything else is never replaced)")

    def backends(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--backend", choices=("processes", "serial", "dask"), default="processes",
                       help=f"where {what} run (default: worker processes on this machine)")
        p.add_argument("--scheduler", default=None,
                       help="Dask scheduler address tcp://HOST:PORT (implies --backend dask)")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reps", type=_reps, default=10,
                       help="replications, or 'auto' to add them until --precision is met (default 10)")
        p.add_argument("--precision", type=_precision, default=0.05,
                       help="with --reps auto: target 95%% CI half-width relative to the mean (default 0.05)")
        p.add_argument("--max-reps", type=_positive_int, default=200, help="with --reps auto: cap (default 200)")
        p.add_argument("--seed", type=_seed, default=1, help="root seed (default 1)")
        p.add_argument("--jobs", type=_positive_int, default=default_jobs(),
                       help="worker processes (default: all cores)")
        backends(p, "replications")
        p.add_argument("--no-events", action="store_true", help="skip the event log (faster, smaller)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.add_argument("--no-report", action="store_true", help="skip report.html and figures/")
        p.add_argument("--engine", choices=["auto", "simpy", "fast"], default="auto",
                       help="auto (default): the numpy fast path when no capacity can make anyone wait and with "
                            "--no-events, else SimPy; fast requires both")

    p_run = sub.add_parser("run", help="run one scenario")
    p_run.add_argument("scenario")
    p_run.add_argument("--out", required=False, help="output folder (default results/<scenario file stem>)")
    p_run.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
    p_run.add_argument("--xlsx", action="store_true", help="also write summary.xlsx (summary tables and the "
                                                           "metric dictionary) into --out")
    common(p_run)
    overwrite(p_run)

    p_cmp = sub.add_parser("compare", help="compare scenarios on common random numbers")
    p_cmp.add_argument("scenarios", nargs="+")
    p_cmp.add_argument("--out", default="results/compare", help="output folder (default results/compare)")
    p_cmp.add_argument("--xlsx", action="store_true", help="also write summary.xlsx (the comparison, each "
                                                           "scenario's summary and the metric dictionary)")
    p_cmp.add_argument("--no-crn-check", action="store_true",
                       help="skip measuring the variance reduction of common random numbers")
    p_cmp.add_argument("--explain", action="store_true",
                       help="share out each difference from the first scenario among parameter groups (as csfsim "
                            "explain; explain.csv and a section of the report)")
    common(p_cmp)
    overwrite(p_cmp)

    p_exp = sub.add_parser("explain", help="share out the difference B - A among the parameter groups that make it")
    p_exp.add_argument("scenario_a", metavar="A")
    p_exp.add_argument("scenario_b", metavar="B")
    p_exp.add_argument("--method", choices=("shapley", "sequential"), default="shapley",
                       help="shapley (default): every order of swaps averaged, 2**k counterfactuals for k groups "
                            "that differ; sequential: the groups swapped once each in a fixed order (k + 1)")
    p_exp.add_argument("--reps", type=_positive_int, default=10, help="replications of each counterfactual "
                                                                      "(default 10)")
    p_exp.add_argument("--seed", type=_seed, default=1, help="root seed (default 1)")
    p_exp.add_argument("--jobs", type=_positive_int, default=default_jobs(), help="worker processes (default: all)")
    backends(p_exp, "replications")
    p_exp.add_argument("--engine", choices=["auto", "simpy", "fast"], default="auto", help="as for run")
    p_exp.add_argument("--quiet", action="store_true", help="no progress bar")
    p_exp.add_argument("--out", default="results/explain", help="output folder (default results/explain)")
    p_exp.add_argument("--no-report", action="store_true", help="skip report.html and figures/")
    overwrite(p_exp)

    p_sw = sub.add_parser("sweep", help="run a grid of parameter values on common random numbers")
    p_sw.add_argument("scenario")
    p_sw.add_argument("--set", action="append", default=[], dest="settings", metavar="PATH=V1,V2",
                      help="a parameter path and the values to try (repeat for a grid)")
    p_sw.add_argument("--out", default="results/sweep", help="output folder (default results/sweep)")
    p_sw.add_argument("--metric", default="diagnosis_delay_median_days", help="metric to plot over the grid")
    p_sw.add_argument("--group", default="spontaneous", help="group of the plotted metric (default spontaneous)")
    p_sw.add_argument("--resume", action="store_true", help="go on with an interrupted sweep in --out")
    common(p_sw)
    overwrite(p_sw)

    p_wu = sub.add_parser("warmup", help="choose a warm-up period (running mean and MSER-5 truncation point)")
    p_wu.add_argument("scenario")
    p_wu.add_argument("--reps", type=_positive_int, default=5, help="replications (default 5)")
    p_wu.add_argument("--seed", type=_seed, default=1, help="root seed (default 1)")
    p_wu.add_argument("--jobs", type=_positive_int, default=default_jobs(), help="worker processes")
    p_wu.add_argument("--out", default="results/warmup", help="output folder (default results/warmup)")
    overwrite(p_wu)

    p_val = sub.add_parser("validate", help="check a scenario file and print its resolved summary")
    p_val.add_argument("scenario")

    def uncertain(p: argparse.ArgumentParser, reps: int) -> None:
        p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="one scenario, or A B (B compared with A)")
        p.add_argument("--reps", type=_positive_int, default=reps, help=f"replications per evaluation (default {reps})")
        p.add_argument("--seed", type=_seed, default=1, help="root seed (default 1)")
        p.add_argument("--jobs", type=_positive_int, default=default_jobs(), help="worker processes (default: all)")
        backends(p, "evaluations")
        p.add_argument("--params", default="", help="comma-separated parameter paths or prefixes to vary "
                                                    "(default: every uncertain parameter)")

    p_psa = sub.add_parser("psa", help="probabilistic sensitivity analysis (and cost-effectiveness of B vs A)")
    uncertain(p_psa, 5)
    p_psa.add_argument("--samples", type=_positive_int, default=50, help="parameter samples K (default 50)")
    p_psa.add_argument("--method", choices=("lhs", "sobol"), default="lhs", help="design (default lhs)")
    p_psa.add_argument("--out", default="results/psa", help="output folder (default results/psa)")
    overwrite(p_psa)

    p_sen = sub.add_parser("sensitivity", help="one-way (tornado) and Sobol sensitivity analysis")
    uncertain(p_sen, 5)
    p_sen.add_argument("--outcome", default="nmb", help="metric (default nmb: net monetary benefit per patient)")
    p_sen.add_argument("--sobol", type=int, default=0, metavar="N", help="Sobol indices on N x (d + 2) runs (0: off)")
    p_sen.add_argument("--sobol-params", type=_positive_int, default=6, help="d: widest tornado parameters")
    p_sen.add_argument("--out", default="results/sensitivity", help="output folder (default results/sensitivity)")
    overwrite(p_sen)
    p_ev = sub.add_parser("events", help="write a run's event log for process mining (pm4py, bupaR): a case per "
                                         "patient and replication, schedule/start/complete, datetimes")
    p_ev.add_argument("folder", help="a run folder written with its event log")
    p_ev.add_argument("--start-date", default="2025-01-01", help="the date of day 0 (default 2025-01-01)")
    p_ev.add_argument("--layout", choices=["csfsim", "pm4py", "bupar"], default="csfsim",
                      help="column names: csfsim's, pm4py's XES attributes, or bupaR's eventlog() (default csfsim)")
    p_ev.add_argument("--out", default=None, help="CSV or .parquet file (default FOLDER/process_log.csv)")
    p_app = sub.add_parser("app", help="start the planners' web app on this machine (http://127.0.0.1:PORT)")
    p_app.add_argument("--port", type=_positive_int, default=8501, help="port on 127.0.0.1 (default 8501)")
    p_rep = sub.add_parser("report", help="write report.html (and figures/) for a run, comparison, explain, sweep, "
                                          "psa or sensitivity folder")
    p_rep.add_argument("folder")
    p_rep.add_argument("--jobs", type=_positive_int, default=default_jobs(),
                       help="processes drawing the figures (default: all cores)")
    return parser


# What is left of an interrupted command, and how to go on (a run resumes with --resume, a PSA by itself).
KEPT = {"run": "finished replications are kept in OUT.partial/; rerun with --resume to finish",
        "psa": "finished samples are kept in OUT.partial/; run the same command again to go on from them",
        "sweep": "finished combinations are kept in OUT.partial/; rerun with --resume to go on from them"}
NOT_KEPT = "nothing was published; run the command again"


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: object = None, line: str | None = None) -> None:
    """A warning as one plain line (not Python's file:line: Category: text, with a source line under it)."""
    text = " ".join(str(message).split())
    print(f"csfsim: warning: {printable(text)}", file=sys.stderr)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler or `kill` stopping the job) is handled as Ctrl-C: one line, work kept."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = "csfsim " + " ".join(argv if argv is not None else sys.argv[1:])
    kept = KEPT.get(args.command, NOT_KEPT)
    shown_before = warnings.showwarning
    warnings.showwarning = _one_line_warning
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return _dispatch(args, command, kept)
    finally:
        warnings.showwarning = shown_before
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _events(args: argparse.Namespace) -> int:
    from sim.io import outputs
    from sim.io.process_log import in_layout, read_process_log

    folder = Path(args.folder)
    out = Path(args.out) if args.out else folder / "process_log.csv"
    log = in_layout(read_process_log(folder, args.start_date), args.layout)
    if out.suffix == ".parquet":
        outputs.atomic_write_bytes(out, _parquet_bytes(log))
    else:
        outputs.atomic_write_csv(out, log)
    cases = log.iloc[:, 0].nunique()
    print(f"{len(log)} rows, {cases} cases ({args.layout} layout) written to {out}")
    return 0


def _parquet_bytes(frame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _app(port: int) -> int:
    """Streamlit serving sim/app/main.py on localhost only (a planner's own machine, not the network)."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("streamlit") is None:
        raise ScenarioError("(command line)", "app", "Streamlit not installed",
                            "the app's packages: pip install -e '.[app]' (make app installs them)")
    if port > 65535:
        raise ScenarioError("(command line)", "--port", port, "a port from 1 to 65535")
    main_file = Path(__file__).parent / "app" / "main.py"
    print(f"csfsim app: http://127.0.0.1:{port} (Ctrl-C stops it)", file=sys.stderr)
    return subprocess.call([sys.executable, "-m", "streamlit", "run", str(main_file), "--server.address",
                            "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
                            "--browser.gatherUsageStats", "false", "--server.maxUploadSize", "1",
                            "--server.fileWatcherType", "none", "--theme.base", "light",
                            "--client.toolbarMode", "minimal"])


def _cap_jobs(args: argparse.Namespace) -> None:
    """More worker processes than cores only share the cores (and each holds a replication in memory)."""
    from sim.runs.backends import default_jobs

    cores = default_jobs()
    if getattr(args, "jobs", 1) > cores and not getattr(args, "scheduler", None):
        print(f"csfsim: note: --jobs {args.jobs} is more than this machine's {cores} cores; using {cores}",
              file=sys.stderr)
        args.jobs = cores


def _dispatch(args: argparse.Namespace, command: str, kept: str) -> int:
    _cap_jobs(args)
    try:
        if args.command == "validate":
            return _validate(args.scenario)
        if args.command == "run":
            return _run(args, command)
        if args.command == "compare":
            return _compare(args, command)
        if args.command == "explain":
            return _explain(args, command)
        if args.command == "sweep":
            return _sweep(args, command)
        if args.command == "warmup":
            return _warmup(args)
        if args.command == "psa":
            return _psa(args, command)
        if args.command == "sensitivity":
            return _sensitivity(args, command)
        if args.command == "report":
            return _report(args.folder, args.jobs)
        if args.command == "app":
            return _app(args.port)
        if args.command == "events":
            return _events(args)
    except ScenarioError as err:
        print(f"csfsim: error: {err}", file=sys.stderr)
        return 2
    except RunInterrupted as err:
        print(f"csfsim: error: {err}", file=sys.stderr)
        return 3
    except ReportFailed as err:
        print(f"csfsim: error: {err}", file=sys.stderr)
        return err.code
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0
    except OSError as err:  # disk full, permissions changed mid-run...: one clear line, finished work kept
        where = f" ({err.filename})" if err.filename else ""
        print(f"csfsim: error: could not write results{where}: {err.strerror or err}; {kept}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        from sim.io.runfolder import InterruptedAfterPublish

        if isinstance(err, InterruptedAfterPublish):
            print(f"csfsim: interrupted just after the results were published in {err}/ (they are complete)",
                  file=sys.stderr)
        else:
            print(f"csfsim: interrupted; {kept}", file=sys.stderr)
        return 130
    except Exception as err:
        arrow = sys.modules.get("pyarrow")
        if arrow is None or not isinstance(err, arrow.ArrowException):
            raise
        where = getattr(args, "folder", None) or getattr(args, "out", None) or "the output folder"
        first = printable(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        print(f"csfsim: error: {where}: a table could not be read ({first}): expected a complete csfsim table; "
              "the file was damaged after csfsim wrote it: run the command again without --resume",
              file=sys.stderr)
        return 2
    return 0  # pragma: no cover


def _validate(path: str) -> int:
    from sim.config.scenario import load_scenario

    s = load_scenario(path)
    rate = sum(s.population.arrivals_per_year.values())
    print(f"{printable(path)}: valid. '{printable(s.name)}': {len(s.centers)} center(s) "
          f"({', '.join(f'{c.name}={c.profile_name}' for c in s.centers)}), horizon {s.horizon_days:g} days, "
          f"{s.population.catchment_adults:,} adults, {rate:g} arrivals per year")
    return 0


def _run(args: argparse.Namespace, command: str) -> int:
    from sim.config.scenario import load_scenario
    from sim.runs.experiment import run

    scenario = load_scenario(args.scenario)
    out = Path(args.out) if args.out else Path("results") / Path(args.scenario).stem
    result = run(scenario, reps=args.reps, seed=args.seed, jobs=args.jobs, out=out, log_events=not args.no_events,
                 resume=args.resume, progress=False if args.quiet else None, command=command,
                 backend=_backend(args), precision=args.precision, max_reps=args.max_reps, engine=args.engine,
                 overwrite=args.overwrite)
    print(f"{printable(scenario.name)}: {result.reps} replications ({result.manifest['backend']}, engine "
          f"{result.manifest['engine']}), {result.manifest['patients']} patients, "
          f"{result.manifest['wall_seconds']:.1f} s")
    _print_rule(result.manifest["replication_rule"])
    _say_if_empty(result.manifest, scenario.name)
    width = max(len(label) for _, _, label in HEADLINE)
    for metric, group, label in HEADLINE:
        row = result.metric(metric, group)
        print(f"  {label:<{width}} {row['mean']:10.3f}  (95% CI {row['ci95_low']:.3f} to {row['ci95_high']:.3f})")
    for line in busiest_resources(result.summary):
        print(line)
    print(f"Written to {out}/")
    _workbook_of_published(out, args.xlsx)
    return 0 if args.no_report else _report_of_published(out, _report_jobs(args))


def _compare(args: argparse.Namespace, command: str) -> int:
    from sim.runs.compare import compare

    result = compare(args.scenarios, reps=args.reps, seed=args.seed, jobs=args.jobs, out=args.out,
                     log_events=not args.no_events, progress=False if args.quiet else None, command=command,
                     backend=_backend(args), precision=args.precision, max_reps=args.max_reps,
                     measure_crn=not args.no_crn_check, engine=args.engine, overwrite=args.overwrite,
                     explain=args.explain)
    for r in result.runs:
        print(f"{printable(r.scenario.name)}: {r.reps} replications, {r.manifest['patients']} patients, "
              f"{r.manifest['wall_seconds']:.1f} s ({r.manifest['backend']}, engine {r.manifest['engine']})")
        _print_rule(r.manifest["replication_rule"])
        _say_if_empty(r.manifest, r.scenario.name)
        for line in busiest_resources(r.summary, top=3):
            print(line)
    print()
    print(format_comparison(result.comparison, [r.scenario.name for r in result.runs]))
    if result.crn is not None:
        print(f"\ncommon random numbers: {result.crn_factor:.1f}x fewer replications for the same precision "
              "(median variance reduction of the paired differences over the primary metrics)")
    if result.explanation is not None:
        from sim.runs.explain import EXPLAINED

        for i, r in enumerate(result.runs[1:], start=1):
            print(f"\nWhy {printable(r.scenario.name)} differs from {printable(result.runs[0].scenario.name)}:")
            print(format_explanation(result.explanation[result.explanation["scenario_index"] == i], EXPLAINED[:2]))
    extra = ", explain.csv" if result.explanation is not None else ""
    print(f"Written to {args.out}/ (comparison.csv{extra}, and one run folder per scenario)")
    _workbook_of_published(args.out, args.xlsx)
    return 0 if args.no_report else _report_of_published(args.out, _report_jobs(args))


def busiest_resources(summary, top: int = 5) -> list[str]:
    """Console lines for the `top` busiest resources (mean utilization over replications), with their mean wait:
    what a planner looks at first. `summary`: a run's summary (across replications), or summary.csv."""
    across = summary[summary["level"] == "across"] if "level" in summary else summary  # summary.csv, or a run's
    use = across[(across["metric"] == "resource_utilization") & ~across["group"].str.startswith("all centers/")]
    if use.empty:
        return []
    wait = across[across["metric"] == "resource_mean_wait_days"].set_index("group")
    listed = across[across["metric"] == "resource_mean_list_length"].set_index("group")
    lines = ["  Busiest resources (utilization, 95% CI; mean queue wait; mean waiting list, everyone on it):"]
    for row in use.sort_values("mean", ascending=False, kind="stable").head(top).itertuples(index=False):
        days = wait["mean"].get(row.group, float("nan"))
        length = listed["mean"].get(row.group, float("nan"))
        waited = "not used" if days != days else f"wait {days:.1f} days ({days / 7:.1f} weeks)"
        if length == length:
            waited += f"; list {length:.1f}"
        lines.append(f"    {printable(row.group):<34} {row.mean:6.1%} ({row.ci95_low:.1%} to {row.ci95_high:.1%}); "
                     f"{waited}")
    return lines


def _report(folder: str | Path, jobs: int = 1) -> int:
    from sim.report.html import build_report

    print(f"Report: {Path(build_report(folder, jobs)).resolve()}")
    return 0


class ReportFailed(Exception):
    """The results were published, but their report could not be written (told without "--resume")."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code  # the exit code: 1 for a write error, 130 for Ctrl-C


def _report_of_published(folder: str | Path, jobs: int) -> int:
    """The report of results just published: a failure here loses nothing, and says how to write it later."""
    again = f"the results are complete in {folder}/; `csfsim report {folder}` writes the report again"
    try:
        return _report(folder, jobs)
    except OSError as err:
        raise ReportFailed(f"report.html could not be written ({err.strerror or err}); {again}", 1) from None
    except KeyboardInterrupt:
        raise ReportFailed(f"interrupted while writing the report; {again}", 130) from None


def _workbook_of_published(folder: str | Path, wanted: bool) -> None:
    """--xlsx: summary.xlsx beside the published tables (csfsim's own output: replaced with --overwrite)."""
    if not wanted:
        return
    from sim.io.outputs import atomic_write_bytes
    from sim.report.workbook import WORKBOOK, summary_workbook

    atomic_write_bytes(Path(folder) / WORKBOOK, summary_workbook(Path(folder)))
    print(f"Workbook: {Path(folder) / WORKBOOK}")


def _report_jobs(args: argparse.Namespace) -> int:
    """Processes for drawing the report's figures: this machine's share of --jobs (none with --backend serial;
    with Dask the workers may be elsewhere, so at most this machine's cores)."""
    from sim.runs.backends import default_jobs

    return 1 if args.backend == "serial" else min(args.jobs, default_jobs())


def _explain(args: argparse.Namespace, command: str) -> int:
    from sim.runs.explain import EXPLAINED, explain

    r = explain(args.scenario_a, args.scenario_b, reps=args.reps, seed=args.seed, jobs=args.jobs, out=args.out,
                method=args.method, progress=False if args.quiet else None, command=command, backend=_backend(args),
                engine=args.engine, overwrite=args.overwrite)
    m = r.manifest or {}
    print(f"A = {printable(m['scenario_a']['name'])}\nB = {printable(m['scenario_b']['name'])}")
    same = ", ".join(m["groups_equal"]) or "none"
    print(f"{len(r.groups)} parameter groups differ ({args.method}: {r.counterfactuals} scenarios on common random "
          f"numbers, {args.reps} replications each); the same in both: {same}")
    print(format_explanation(r.table, EXPLAINED))
    print(f"Written to {args.out}/ (explain.csv: every metric)")
    return 0 if args.no_report else _report_of_published(args.out, 1)


def format_explanation(table, explained: Sequence[tuple[str, str]]) -> str:
    """Per explained metric: B - A, then each part with its 95% CI and its share of the gap (95% CI)."""
    from sim.analysis.metrics import metric as metric_entry

    lines = []
    for metric, group in explained:
        sel = table[(table["metric"] == metric) & (table["group"] == group)]
        if sel.empty:
            continue
        total = sel[sel["kind"] == "total"].iloc[0]
        lines += ["", f"{metric_entry(metric).title(group)}: B - A {total['contribution']:+.3f} "
                      f"(95% CI {total['ci95_low']:+.3f} to {total['ci95_high']:+.3f})"]
        for row in sel[sel["kind"] != "total"].itertuples(index=False):
            c, lo, hi, sh, sh_lo, sh_hi = (round(x, 9) + 0.0 for x in (row.contribution, row.ci95_low, row.ci95_high,
                                                                      row.share_of_gap, row.share_ci95_low,
                                                                      row.share_ci95_high))  # no "-0.0"
            share = "" if sh != sh else f"{sh:7.1%} ({sh_lo:.1%} to {sh_hi:.1%})"
            lines.append(f"  {row.label[:44]:<44} {c:+9.3f} ({lo:+.3f} to {hi:+.3f})  {share}")
    return "\n".join(lines)


def _sweep(args: argparse.Namespace, command: str) -> int:
    from sim.runs.sweep import parse_set, sweep

    settings = [parse_set(text) for text in args.settings]
    result = sweep(args.scenario, settings, reps=args.reps, seed=args.seed, jobs=args.jobs, out=args.out,
                   backend=_backend(args), metric=args.metric, group=args.group,
                   progress=False if args.quiet else None, command=command, overwrite=args.overwrite,
                   resume=args.resume)
    t = result.table
    sel = t[(t["metric"] == args.metric) & (t["group"] == args.group)]
    cols = [p for p, _ in settings] + ["mean", "ci95_low", "ci95_high", "diff_vs_first"]
    print(f"{args.metric} ({args.group}) over {t['combination'].nunique()} combinations, common random numbers:")
    print(sel[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"Written to {args.out}/ (sweep.csv, sweep.png, sweep.svg)")
    return _report_of_published(args.out, 1)


def _warmup(args: argparse.Namespace) -> int:
    from sim.config.scenario import load_scenario
    from sim.runs.warmup import choose_warmup

    scenario = load_scenario(args.scenario)
    _, cut = choose_warmup(scenario, reps=args.reps, seed=args.seed, out=args.out, jobs=args.jobs,
                           overwrite=args.overwrite)
    print(f"MSER-5 truncation point: day {cut:.0f}. To leave the start-up out of the statistics, set\n"
          f"  [run]\n  warmup_days = {cut:.0f}\nWritten to {args.out}/ (warmup.csv, warmup.png, warmup.svg)")
    return 0


def _backend(args: argparse.Namespace):
    from sim.runs.backends import Backend

    kind = "dask" if args.scheduler else args.backend
    return Backend(kind, args.jobs, args.scheduler)


def _say_if_empty(manifest: dict, name: str) -> None:
    if not manifest.get("patients"):
        print(f"csfsim: warning: {printable(name)}: no patient arrived in any replication (are the arrival rates "
              "zero?): every outcome below is empty (nan)", file=sys.stderr)


def _print_rule(rule: dict) -> None:
    if rule.get("rule") != "auto":
        return
    if rule.get("cap_reached"):
        print(f"  --reps auto: CAP REACHED at {rule['replications']} replications; precision "
              f"{rule['precision']:.0%} not met for every primary metric (see manifest.json)")
    else:
        print(f"  --reps auto: {rule['replications']} replications bring every primary metric's 95% CI "
              f"within {rule['precision']:.0%} of its mean")


def _params(text: str) -> list[str] | None:
    return [p.strip() for p in text.split(",") if p.strip()] or None


def _psa(args: argparse.Namespace, command: str) -> int:
    from sim.runs.psa import EVPPI_MIN_SAMPLES, psa

    r = psa(args.scenarios, samples=args.samples, reps=args.reps, seed=args.seed, out=args.out, method=args.method,
            jobs=args.jobs, only=_params(args.params), command=command, overwrite=args.overwrite,
            backend=_backend(args))
    print(f"PSA: {args.samples} samples x {args.reps} replications ({args.method})")
    print(f"{'':<5}{'outcome':<32}{'mean':>14}{'var total':>13}{'parameters':>12}{'noise':>8}")
    means = r.samples.groupby(["scenario", "outcome"], sort=False)["mean"].mean()
    for row in r.variance.itertuples(index=False):
        print(f"{row.scenario:<5}{row.outcome:<32}{means[(row.scenario, row.outcome)]:>14.4f}{row.var_total:>13.4g}"
              f"{row.share_parameters:>12.1%}{row.share_noise:>8.1%}")
    if r.cea:
        c = r.cea
        print(f"B vs A: incremental cost {c['inc_cost']:+.2f} {c['currency']}, incremental QALYs {c['inc_qaly']:+.5f}, "
              f"ICER {c['icer']:.0f}, incremental NMB {c['inc_nmb']:+.2f} at {c['wtp']:,.0f}/QALY; "
              f"P(B cost-effective) {c['prob_b_cost_effective']:.2f}; EVPI {c['evpi_per_patient']:.2f} per patient")
        print(f"  {c['verdict']}")
        if r.evppi is not None and len(r.evppi):
            print(f"  Largest EVPPI (per patient; sort and split, Strong & Oakley 2013; noise floor "
                  f"{r.evppi['noise_floor_per_patient'].iloc[0]:.2f}):")
            if args.samples < EVPPI_MIN_SAMPLES:
                print(f"  (with {args.samples} samples the largest of many EVPPIs is mostly noise: use "
                      f"{EVPPI_MIN_SAMPLES} or more samples before reading them)")
            for row in r.evppi.head(5).itertuples(index=False):
                print(f"    {printable(row.parameter):<58} {row.evppi_per_patient:10.2f} "
                      f"({row.share_of_evpi:.0%} of EVPI)")
    print(f"Written to {args.out}/")
    return _report_of_published(args.out, 1)




def _sensitivity(args: argparse.Namespace, command: str) -> int:
    from sim.runs.psa import sensitivity

    r = sensitivity(args.scenarios, reps=args.reps, seed=args.seed, out=args.out, outcome=args.outcome,
                    only=_params(args.params), sobol_n=args.sobol, sobol_params=args.sobol_params, jobs=args.jobs,
                    command=command, overwrite=args.overwrite, backend=_backend(args))
    print(f"One-way sensitivity of {args.outcome} (base {r.base_value:.4g}); widest swings:")
    for row in r.oneway.head(10).itertuples(index=False):
        print(f"  {row.parameter:<58} {row.low_outcome:>12.4g} to {row.high_outcome:<12.4g}")
    if r.sobol is not None:
        print("Sobol indices (first order S1, total ST; +/- the 95% bootstrap CI half-width):")
        for row in r.sobol.itertuples(index=False):
            print(f"  {row.parameter:<58} S1 {row.S1:6.3f} (+/-{row.S1_conf95:.3f})  ST {row.ST:6.3f} "
                  f"(+/-{row.ST_conf95:.3f})")
    extra = ", sobol.csv" if r.sobol is not None else ""
    print(f"Written to {args.out}/ (oneway.csv, tornado.png, tornado.svg{extra})")
    return _report_of_published(args.out, 1)


WAIT_SHOWN_DAYS = 0.05  # a resource whose mean queue wait is below this in every scenario is left out


def format_comparison(table, names: list[str]) -> str:
    """Side-by-side text table of headline metrics (scenarios as columns A, B, ...) with the paired difference
    of each later scenario from the first, then the queue wait of each resource anyone waited for."""
    from sim.config.parameters import RESOURCES

    letters = [chr(ord("A") + i) for i in range(len(names))]
    lines = [f"  {letter} = {printable(name)}" for letter, name in zip(letters, names, strict=True)]
    width = max(len(label) for _, _, label in HEADLINE) + 2
    header = f"{'':<{width}}" + "".join(f"{letter:>11}" for letter in letters)
    header += "".join(f"{f'{letter} - A (95% CI)':>30}" for letter in letters[1:])
    lines += ["", header]
    # Then the queue wait of every resource someone waited for, pooled over centers: what capacity changes move.
    waits = [("resource_mean_wait_days", f"all centers/{r}", f"Mean queue wait, {r} (days)") for r in RESOURCES]
    waited = table[(table["metric"] == "resource_mean_wait_days") & (table["mean"] > WAIT_SHOWN_DAYS)]
    for metric, group, label in [*HEADLINE, *(w for w in waits if w[1] in set(waited["group"]))]:
        sel = table[(table["metric"] == metric) & (table["group"] == group)].sort_values("scenario_index")
        if sel.empty:
            continue
        cells = "".join(f"{row['mean']:>11.3f}" for _, row in sel.iterrows())
        diffs = "".join(f"{row['diff_vs_first']:+.3f} ({row['diff_ci95_low']:+.3f}, {row['diff_ci95_high']:+.3f})"
                        .rjust(30) for _, row in sel.iloc[1:].iterrows())
        lines.append(f"{label:<{width}}{cells}{diffs}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
