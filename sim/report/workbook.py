"""An Excel workbook of a run's or a comparison's summary tables, with the metric dictionary as a sheet, for
planners who take the numbers on in a spreadsheet (`--xlsx`, and the web app's download)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from sim.analysis.metrics import METRICS
from sim.errors import ScenarioError

WORKBOOK = "summary.xlsx"
ABOUT = ("Written by csfsim from the folder's CSV tables. comparison (a comparison only): each scenario's mean and "
         "95% CI per metric and patient group, and the paired difference from the first scenario. summary: each "
         "scenario's own summary over replications. resources: waits and utilization per center and resource, "
         "per replication. Shares are proportions from 0 to 1, and so are their differences (0.05 = 5 percentage "
         "points). metrics: what each metric counts (population, denominator, censoring).")


def _sheet_name(text: str, taken: set[str]) -> str:
    """Excel's limits: 31 characters, none of []:*?/\\, unique in the workbook."""
    name = "".join("_" if c in "[]:*?/\\" else c for c in text)[:31]
    base, n = name, 2
    while name in taken:
        name = f"{base[:28]}_{n}"
        n += 1
    taken.add(name)
    return name


def _tables(folder: Path) -> list[tuple[str, Path]]:
    """(sheet title, CSV) of a run or comparison folder, in reading order."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ScenarioError(str(folder), "manifest.json", None, "a finished csfsim run or comparison folder") from None
    if manifest.get("csfsim_compare"):
        out = [("comparison", folder / "comparison.csv")]
        for entry in manifest.get("scenarios", []):
            sub = folder / entry["folder"]
            out += [(f"summary {entry['folder']}", sub / "summary.csv"),
                    (f"resources {entry['folder']}", sub / "resources.csv")]
        return out
    if manifest.get("csfsim_run"):
        return [("summary", folder / "summary.csv"), ("resources", folder / "resources.csv")]
    raise ScenarioError(str(folder), "manifest.json", None, "a finished csfsim run or comparison folder")


def summary_workbook(folder: Path) -> bytes:
    """The workbook (.xlsx bytes) of a run or comparison folder."""
    try:
        import openpyxl  # noqa: F401 - pandas writes .xlsx through it
    except ImportError:
        raise ScenarioError("(command line)", "--xlsx", "openpyxl not installed",
                            "the app's packages: pip install -e '.[app]' (make setup installs them)") from None
    taken: set[str] = set()
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame({"about": [ABOUT]}).to_excel(writer, sheet_name=_sheet_name("about", taken), index=False)
        for title, path in _tables(folder):
            if path.exists():
                pd.read_csv(path).to_excel(writer, sheet_name=_sheet_name(title, taken), index=False)
        pd.DataFrame([{"metric": m.name, "label": m.label, "unit": m.unit, "kind": m.kind,
                       "population": m.population, "denominator": m.denominator, "censoring": m.censoring}
                      for m in METRICS.values()]).to_excel(writer, sheet_name=_sheet_name("metrics", taken),
                                                           index=False)
    return buffer.getvalue()
