"""Figures and the HTML report: every figure is written, the report is self-contained and holds every figure and
table, its headline sentences carry the numbers of comparison.csv, and it renders in a real browser."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from sim.analysis.headline import HEADLINE
from sim.analysis.planning import MONTH_DAYS
from sim.cli import main
from sim.figures import plots
from sim.report import html as report
from tests.helpers import EXPERIENCED, LOW_VOLUME, ROOT, run_cli

HORIZON_DAYS = 540  # long enough for "resolved within a year" to be estimable, short enough to be fast
COMPARISON_FIGURES = {"km_diagnosis", "km_resolution", "forest_differences", "procedures_per_patient",
                      "pathway_flow", "rih_persistent", "waits", "utilization"}


def _short(path: Path, base: Path) -> Path:
    path.write_text(f'extends = "{base.as_posix()}"\n[run]\nhorizon_days = {HORIZON_DAYS}\n'
                    f'follow_up_days = 0\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def comparison_dir(tmp_path_factory) -> Path:
    """A small comparison made by the CLI, which writes the report by default."""
    root = tmp_path_factory.mktemp("cmp")
    a = _short(root / "exp.toml", EXPERIENCED)
    b = _short(root / "low.toml", LOW_VOLUME)
    out = root / "out"
    assert main(["compare", str(a), str(b), "--reps", "3", "--seed", "5", "--jobs", "1", "--quiet",
                 "--out", str(out)]) == 0
    return out


class _Collector(HTMLParser):
    """Tags with their attributes, and the text of each headline finding."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.findings: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "li" and "data-metric" in a:
            self._current, self._text = a, []

    def handle_endtag(self, tag):
        if tag == "li" and self._current is not None:
            self.findings.append((self._current, "".join(self._text)))
            self._current = None

    def handle_data(self, data):
        if self._current is not None:
            self._text.append(data)


def _parse(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8"))
    return c


def test_each_figure_function_writes_png_and_svg(comparison_dir, tmp_path):
    target = report.load_target(comparison_dir)
    metrics = report.series_metrics(target)
    made = report.make_figures(target, metrics, HEADLINE, tmp_path / "figs")
    assert {p.stem for p, _ in made} == COMPARISON_FIGURES
    for png, _ in made:
        image = mpimg.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 400
        assert image[..., :3].std() > 0.05, f"{png.name} looks blank"
        svg = png.with_suffix(".svg").read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert not list((tmp_path / "figs").glob(".*tmp*"))


def test_cli_compare_writes_report_with_every_figure_and_table(comparison_dir):
    page = comparison_dir / "report.html"
    assert page.exists()
    assert {p.stem for p in (comparison_dir / "figures").glob("*.png")} == COMPARISON_FIGURES
    assert {p.stem for p in (comparison_dir / "figures").glob("*.svg")} == COMPARISON_FIGURES
    parsed = _parse(page)
    images = [a for tag, a in parsed.tags if tag == "img"]
    assert len(images) == len(COMPARISON_FIGURES)
    for stem in COMPARISON_FIGURES:
        assert ("figure", {"id": f"fig-{stem}"}) in parsed.tags
    text = page.read_text(encoding="utf-8")
    for heading in ("What was run", "Headline findings", "Key results", "Outcomes by patient group", "Resources",
                    "Parameters that differ between the scenarios", "Weak-evidence (grade L) parameters",
                    "STRESS-DES items", "Run manifest"):
        assert heading in text, heading
    for _, _, label in HEADLINE:
        assert f"<td>{html.escape(label)}</td>" in text, label
    # the first-contact centers differ in experience, and the weak evidence is flagged
    assert "First-contact center: recognition_probability_spontaneous" in text
    assert "weak evidence" in text
    assert f"{HORIZON_DAYS}" in text and "Experienced high-volume center" in text


def test_report_is_self_contained(comparison_dir):
    page = comparison_dir / "report.html"
    parsed = _parse(page)
    for tag, attrs in parsed.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for key in ("src", "href"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith("data:image/png;base64,") or value.startswith("#"), (tag, value[:60])
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", text)
    assert "@import" not in text and "url(" not in text
    for _, attrs in (t for t in parsed.tags if t[0] == "img"):
        data = base64.b64decode(str(attrs["src"]).split(",", 1)[1])
        image = mpimg.imread(io.BytesIO(data), format="png")
        assert image.shape[0] > 100 and image.shape[1] > 100


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+(?:\.\d+)?", text)]


def _decimals(kind: str, value: float) -> int:
    if kind == "days":
        return 0 if abs(value) >= 10 else 1
    if kind == "pp":
        return 1
    return 2 if abs(value) >= 1 else 3


def test_headline_sentences_carry_the_numbers_of_comparison_csv(comparison_dir):
    table = pd.read_csv(comparison_dir / "comparison.csv")
    findings = _parse(comparison_dir / "report.html").findings
    assert len(findings) >= 6
    seen = set()
    for attrs, sentence in findings:
        row = table[(table["metric"] == attrs["data-metric"]) & (table["group"] == attrs["data-group"])
                    & (table["scenario"] == attrs["data-scenario"])].iloc[0]
        kind = report.SENTENCES[row["metric"]][0]
        scale = 100.0 if kind == "share" else 1.0
        delta_kind = "pp" if kind == "share" else kind
        diff, lo, hi = (row[c] * scale for c in ("diff_vs_first", "diff_ci95_low", "diff_ci95_high"))
        numbers = _numbers(sentence.replace("−", "-"))
        if lo <= 0 <= hi:
            assert "did not differ clearly" in sentence
            expected = [diff, lo, hi]
        else:
            # a clear difference reads as a positive size with a positive CI
            expected = [abs(diff), lo, hi] if diff > 0 else [abs(diff), -hi, -lo]
            assert "at " + str(row["scenario"]) in sentence
        for value in expected:  # each number is rounded by its own size (19.1 days reads 19, 9.8 reads 9.8)
            tol = 0.5 * 10 ** -_decimals(delta_kind, value) + 1e-9
            assert any(abs(n - value) <= tol * 1.01 for n in numbers), (sentence, value)
        seen.add(attrs["data-metric"])
    assert {"diagnosis_cif_365_days", "time_to_resolution_rmst_365_days"} <= seen
    spontaneous = [s for a, s in findings if a["data-metric"] == "diagnosis_cif_365_days"
                   and a["data-group"] == "spontaneous"]
    assert spontaneous and "of spontaneous leaks were diagnosed within a year of onset at" in spontaneous[0]


def test_finding_orients_differences_and_admits_no_difference():
    first = pd.Series({"metric": "diagnosis_delay_median_days", "group": "spontaneous", "scenario": "A",
                       "mean": 20.0})

    def later(**values: object) -> pd.Series:
        return pd.Series({**first.to_dict(), "scenario": "B", **values})

    assert report.finding(first, later(mean=61.0, diff_vs_first=41.0, diff_ci95_low=30.2, diff_ci95_high=52.4)) \
        == "Spontaneous leaks were diagnosed a median of 41 days sooner at A than at B (95% CI 30 to 52 days)."
    faster = later(mean=5.0, diff_vs_first=-15.0, diff_ci95_low=-18.0, diff_ci95_high=-12.0)
    assert "15 days sooner at B than at A (95% CI 12 to 18 days)" in str(report.finding(first, faster))
    unclear = later(mean=5.0, diff_vs_first=-15.0, diff_ci95_low=-18.0, diff_ci95_high=3.0)
    assert "did not differ clearly" in str(report.finding(first, unclear))
    assert report.finding(first, later(mean=5.0, diff_vs_first=float("nan"), diff_ci95_low=1.0,
                                       diff_ci95_high=2.0)) is None


def test_monthly_utilization_is_busy_time_over_capacity_times_days():
    month = MONTH_DAYS
    uses = pd.DataFrame({"resource": ["mri", "mri"], "start_day": [0.0, month - 1.0],
                         "end_day": [10.0, month + 3.0]})
    resources = pd.DataFrame({"resource": ["mri"], "capacity": [2]})
    util = report.monthly_utilization(uses, resources, horizon_days=2 * month)
    assert util["month"].tolist() == [1, 2]
    assert util["utilization"].to_numpy() == pytest.approx([11.0 / (2 * month), 3.0 / (2 * month)])


def test_monthly_utilization_agrees_with_resources_csv(comparison_dir):
    run = report.load_target(comparison_dir).runs[1]
    uses, res = run.table("resource_uses.parquet"), run.table("resources.csv")
    assert uses is not None and res is not None
    horizon = float(run.manifest["horizon_days"])
    for center, u in uses.groupby("center"):
        monthly = report.monthly_utilization(u, res[res["center"] == center], horizon)
        edges = np.append(np.arange(0.0, horizon, MONTH_DAYS), horizon)
        widths = np.diff(edges)
        for resource, g in monthly.groupby("resource"):
            overall = float(np.nansum(g["utilization"].to_numpy() * widths) / widths.sum())
            expected = res[(res["center"] == center) & (res["resource"] == resource)]["utilization"].mean()
            # resource_uses holds completed uses only; a use still running at the horizon is the difference
            assert overall == pytest.approx(expected, abs=0.01), (center, resource)


def test_monthly_utilization_leaves_out_session_booked_lists():
    uses = pd.DataFrame({"resource": ["mri", "theatre"], "start_day": [0.0, 1.0], "end_day": [10.0, 2.0]})
    resources = pd.DataFrame({"resource": ["mri", "theatre"], "capacity": [2, 3], "sessions_per_week": [0, 2]})
    util = report.monthly_utilization(uses, resources, horizon_days=MONTH_DAYS)
    assert util["resource"].tolist() == ["mri"]


def test_report_shows_a_session_list_in_sessions_and_slots(tmp_path):
    scenario = _short(tmp_path / "lists.toml", ROOT / "scenarios" / "examples" / "congested_myelography.toml")
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--reps", "2", "--jobs", "1", "--quiet", "--out", str(out)]) == 0
    text = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert "1 a week x 2 slots" in text and "Mean waiting list, everyone on it (patients)" in text


def test_a_network_run_draws_its_curves_by_home_center(tmp_path):
    scenario = _short(tmp_path / "net.toml", ROOT / "scenarios" / "regional_network.toml")
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--reps", "2", "--jobs", "1", "--quiet", "--no-events", "--out",
                 str(out)]) == 0
    km = pd.read_csv(out / "km.csv")
    homes = set(km.loc[km["group_by"] == "home_center", "group"])
    assert homes == {"specialist", "district_north", "district_east", "district_west"}
    svg = (out / "figures" / "km_diagnosis.svg").read_text(encoding="utf-8")
    assert "By home center" in svg and "where care ended" not in svg
    page = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert "By home center (where patients first presented)" in page
    assert all(f"<td>{home}</td>" in page for home in homes)


def test_a_network_comparison_shows_each_home_centers_paired_difference(tmp_path):
    a = _short(tmp_path / "net.toml", ROOT / "scenarios" / "regional_network.toml")
    b = tmp_path / "net_b.toml"
    b.write_text(f'extends = "{a.as_posix()}"\n[scenario]\nname = "North refers at diagnosis"\n'
                 '[referral.district_north]\nat_diagnosis = true\n', encoding="utf-8")
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--reps", "3", "--jobs", "1", "--quiet", "--no-events",
                 "--no-crn-check", "--out", str(out)]) == 0
    table = report.home_centers_table(report.load_target(out))
    comp = pd.read_csv(out / "comparison.csv")
    row = comp[(comp["metric"] == "share_referred") & (comp["group"] == "home:district_north/spontaneous")
               & (comp["scenario_index"] == 1)].iloc[0]
    assert row["diff_vs_first"] > 0  # the policy refers more of North's spontaneous leaks
    shown = report.mean_ci(row["diff_vs_first"], row["diff_ci95_low"], row["diff_ci95_high"], "pp", signed=True)
    assert "<td>district_north</td><td>Referred, spontaneous</td>" in table and shown in table
    assert "North refers at diagnosis − " in html.unescape(table)


def test_a_run_folder_written_before_the_productivity_columns_still_gets_its_report(tmp_path):
    scenario = _short(tmp_path / "exp.toml", EXPERIENCED)
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--reps", "2", "--jobs", "1", "--quiet", "--no-report", "--out",
                 str(out)]) == 0
    patients = pd.read_parquet(out / "patients.parquet")
    patients.drop(columns=["work_days_lost", "productivity_cost"]).to_parquet(out / "patients.parquet")
    assert main(["report", str(out)]) == 0 and (out / "report.html").exists()


def test_run_without_report_then_report_command(tmp_path, capsys):
    scenario = _short(tmp_path / "low.toml", LOW_VOLUME)
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--reps", "2", "--jobs", "1", "--quiet", "--no-events", "--no-report",
                 "--out", str(out)]) == 0
    assert not (out / "report.html").exists() and not (out / "figures").exists()
    assert main(["report", str(out)]) == 0
    assert f"Report: {out / 'report.html'}" in capsys.readouterr().out
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "No resource-use table" in text  # run with --no-events: no waits or utilization figures
    stems = {p.stem for p in (out / "figures").glob("*.png")}
    assert stems == COMPARISON_FIGURES - {"forest_differences", "waits", "utilization"}
    assert "By center (where care ended)" in (out / "figures" / "km_diagnosis.svg").read_text(encoding="utf-8")


def test_report_on_a_folder_that_is_not_a_run_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text('{"something": "else"}')
    proc = run_cli("report", str(tmp_path), cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(tmp_path) in lines[0]
    assert "expected a csfsim run, comparison, explain, sweep, psa or sensitivity folder" in lines[0]
    assert not (tmp_path / "report.html").exists()
    for folder in (tmp_path / "missing", ROOT / "scenarios"):
        assert main(["report", str(folder)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(folder) in err[0]


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
IMAGE_CHECK = ("<script>addEventListener('load', () => { const imgs = [...document.images];"
               " document.body.setAttribute('data-images', String(imgs.length));"
               " document.body.setAttribute('data-broken', String(imgs.filter("
               "i => !i.complete || i.naturalWidth === 0).length)); });</script>")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="csfsim-chromium-") as profile:
        return subprocess.run([shutil.which("chromium") or "/usr/bin/chromium", *CHROMIUM_FLAGS,
                               f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120,
                              check=False)


def test_report_renders_in_headless_chromium(comparison_dir, tmp_path):
    if shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists():
        pytest.skip("Chromium is not installed (Debian package `chromium`); the browser check cannot run")
    page = comparison_dir / "report.html"
    shot = tmp_path / "shot.png"
    proc = _chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    not_white = (pixels < 0.9).any(axis=2).mean()
    assert not_white > 0.02 and pixels.std() > 0.05, "the screenshot is blank"
    # Every embedded image decodes in the browser: a copy of the page with a check that runs after load.
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"),
                     encoding="utf-8")
    dom = _chromium("--dump-dom", "--virtual-time-budget=10000", probe.as_uri()).stdout
    found = re.search(r"data-images=\"(\d+)\" data-broken=\"(\d+)\"", dom)
    assert found, dom[:500]
    assert int(found.group(1)) == len(COMPARISON_FIGURES) and int(found.group(2)) == 0


def test_a_centers_own_overrides_reach_the_manifest_and_the_differing_parameters(tmp_path):
    """A per-center override (a session schedule at the district hospital) is part of the resolved scenario, and the
    report's table of differing parameters shows it against the scenario without it."""
    from sim.config.scenario import load_scenario
    from sim.config.schema import to_jsonable

    plain = load_scenario(LOW_VOLUME)
    sessions = load_scenario(ROOT / "scenarios" / "examples" / "sessions_and_closures.toml")
    resolved = to_jsonable(sessions.resolved)
    own = resolved["centers"]["district"]["overrides"]["resources"]
    assert own["myelography"]["open_windows"]["value"] == [[0.0, 1.0], [3.0, 4.0]]
    assert own["theatre"]["closed_periods"]["value"] == [[213.0, 244.0]]
    assert to_jsonable(plain.resolved)["centers"]["district"]["overrides"] == {}
    runs = [report.RunData(s.name, tmp_path, {"scenario": to_jsonable(s.resolved)}) for s in (plain, sessions)]
    differing = {path: cells for path, cells in report.parameter_rows(runs, only_differing=True)}
    first_contact = [p for p in differing if p.endswith("resources.myelography.open_windows")]
    assert len(first_contact) == 1
    before, after = differing[first_contact[0]]
    assert before[0] != after[0] and "0" in after[0]
    assert any(p.endswith("resources.theatre.closed_periods") for p in differing)


def test_figures_drawn_on_two_processes_are_the_same_images_as_on_one(comparison_dir, tmp_path):
    target = report.load_target(comparison_dir)
    metrics = report.series_metrics(target)
    one = report.make_figures(target, metrics, HEADLINE, tmp_path / "one")
    two = report.make_figures(target, metrics, HEADLINE, tmp_path / "two", jobs=2)
    assert [(p.name, caption) for p, caption in one] == [(p.name, caption) for p, caption in two]
    for (a, _), (b, _) in zip(one, two, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
        assert b.with_suffix(".svg").stat().st_size > 0


def test_figures_have_the_pixels_of_savefig_with_a_tight_bounding_box(comparison_dir, tmp_path, monkeypatch):
    """`plots.save` measures the tight box once for PNG and SVG; the images are those of the plain recipe."""
    import io

    import matplotlib.pyplot as plt
    import numpy as np


    target = report.load_target(comparison_dir)
    metrics = report.series_metrics(target)
    ours = report.make_figures(target, metrics, HEADLINE, tmp_path / "ours")

    def reference_save(fig, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=plots.DPI, bbox_inches="tight")
        path.with_suffix(".png").write_bytes(buf.getvalue())
        plt.close(fig)
        return path.with_suffix(".png")

    monkeypatch.setattr(plots, "save", reference_save)
    reference = report.make_figures(target, metrics, HEADLINE, tmp_path / "reference")
    for (a, _), (b, _) in zip(ours, reference, strict=True):
        assert np.array_equal(mpimg.imread(a), mpimg.imread(b)), a.name


def test_each_headline_sentence_carries_the_numbers_of_its_row_in_the_key_table(comparison_dir):
    """The findings are sentences about headline measures, and the key table shows the same measures: a
    sentence's difference and CI are those of the table row of the same metric and group (the report once said
    "diagnosed 0.5 days sooner" beside a table row of +24 days)."""
    target = report.load_target(comparison_dir)
    table = report.headline_table(target, report.series_metrics(target), HEADLINE)
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        cells = [html.unescape(re.sub("<[^>]+>", "", c)) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr,
                                                                            flags=re.S)]
        rows[cells[0]] = cells
    titles = {(m, g): title for m, g, title in HEADLINE}
    findings = report.headline_findings(target.comparison)
    assert len(findings) >= 6
    for attrs, sentence in findings:
        difference_cell = rows[titles[(attrs["metric"], attrs["group"])]][-1]
        in_table = {abs(x) for x in _numbers(difference_cell.replace("−", "-"))}
        assert len(in_table) >= 2 and in_table <= {abs(x) for x in _numbers(sentence.replace("−", "-"))}, \
            (sentence, difference_cell)


def test_the_report_says_where_the_replications_ran_and_keeps_no_stale_caveat(comparison_dir):
    text = (comparison_dir / "report.html").read_text(encoding="utf-8")
    assert "None worker process" not in text and "is not recorded in the manifest" not in text
    backend = report.load_target(comparison_dir).runs[0].manifest["backend"]
    assert f": {backend}, " in text


def test_a_number_that_rounds_to_zero_never_prints_as_minus_zero():
    assert report.fmt_value("pp", -0.0004) == "0.0" and report.fmt_value("pp", -0.0004, signed=True) == "+0.0"
    assert report.fmt_value("share", -0.00001) == "0.0%" and report.fmt_value("days", -0.04) == "0.0"
    assert report.fmt_value("count", -0.0001, signed=True) == "+0.000"
    assert report.fmt_value("pp", -0.02) == "-2.0"  # a real negative keeps its sign


def test_a_single_runs_findings_state_the_key_tables_numbers(comparison_dir):
    """A single run's report states its headline measures in words, each the key table's mean and CI."""
    run = comparison_dir / next(p.name for p in comparison_dir.iterdir() if (p / "summary.csv").exists())
    target = report.load_target(run)
    metrics = report.series_metrics(target)
    sentences = report.single_findings(metrics, HEADLINE)
    assert sentences
    table = report.headline_table(target, metrics, HEADLINE)
    for metric, group, _ in HEADLINE:
        if metric not in report.SENTENCES:
            continue
        row = metrics[(metrics["metric"] == metric) & (metrics["group"] == group)].iloc[0]
        kind = report.display_kind(metric)
        shown = report.fmt_value(kind, row["mean"])
        assert any(report.SENTENCES[metric][1] in s and f"was {shown}" in s for s in sentences), metric
        assert shown in table
