"""Documentation that is generated must be current."""

from __future__ import annotations

import importlib.util

from tests.helpers import ROOT


def test_parameter_table_is_current():
    spec = importlib.util.spec_from_file_location("make_parameter_table", ROOT / "tools" / "make_parameter_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    assert current == module.render(), "docs/parameters.md is stale: run `make docs`"


def test_readme_documents_every_patient_column():
    from sim.model.records import PATIENT_COLUMNS
    from sim.runs.replication import EVENT_COLUMNS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for col in (*PATIENT_COLUMNS, *EVENT_COLUMNS):
        assert f"`{col}`" in readme, col


def test_the_readme_column_table_is_the_record_schema():
    """The README's patient-table section is `records.PATIENT_SCHEMA`, row for row (one definition of a column)."""
    from sim.model.records import readme_table

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "| column | meaning (unit) |\n|---|---|\n" + readme_table() + "\n" in readme, \
        "README.md's patient columns differ from sim/model/records.py: copy `records.readme_table()` into it"


def test_the_metric_table_is_current():
    from sim.analysis.metrics import markdown

    assert (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8") == markdown(), \
        "docs/metrics.md is stale: run `make docs`"
