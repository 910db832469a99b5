"""An Excel workbook of a comparison's summary tables, with the metric dictionary as a sheet, for planners who
take the numbers on in a spreadsheet."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from sim.analysis.metrics import METRICS

README = ("Written by csfsim from the run folder's CSV tables. comparison: each scenario's mean and 95% CI per "
          "metric and patient group, and the paired difference from the first scenario (shares as proportions "
          "0-1, their differences as proportions too: 0.05 = 5 percentage points). summary_*: each scenario's "
          "own summary. resources_*: waits and utilization per center and resource. metrics: what each metric "
          "counts (population, denominator, censoring).")


def _sheet_name(text: str, taken: set[str]) -> str:
    """Excel's limits: 31 characters, none of []:*?/\\, unique in the workbook."""
    name = "".join("_" if c in "[]:*?/\\" else c for c in text)[:31]
    base, n = name, 2
    while name in taken:
        name = f"{base[:28]}_{n}"
        n += 1
    taken.add(name)
    return name


def comparison_workbook(folder: Path, scenario_folders: list[tuple[str, Path]]) -> bytes:
    """The workbook (.xlsx bytes) of a comparison folder: comparison.csv, each scenario's summary.csv and
    resources.csv, and the metric dictionary."""
    taken: set[str] = set()
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        pd.DataFrame({"about": [README]}).to_excel(writer, sheet_name=_sheet_name("about", taken), index=False)
        pd.read_csv(folder / "comparison.csv").to_excel(writer, sheet_name=_sheet_name("comparison", taken),
                                                        index=False)
        for label, sub in scenario_folders:
            for table in ("summary", "resources"):
                path = sub / f"{table}.csv"
                if path.exists():
                    pd.read_csv(path).to_excel(writer, sheet_name=_sheet_name(f"{table}_{label}", taken),
                                               index=False)
        pd.DataFrame([{"metric": m.name, "label": m.label, "unit": m.unit, "kind": m.kind,
                       "population": m.population, "denominator": m.denominator, "censoring": m.censoring}
                      for m in METRICS.values()]).to_excel(writer, sheet_name=_sheet_name("metrics", taken),
                                                           index=False)
    return buffer.getvalue()
