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


def test_the_planner_tutorials_python_runs_as_written():
    """docs/tutorials/planner.md's Python section is a doctest: the page shows what the code does."""
    import doctest

    result = doctest.testfile(str(ROOT / "docs" / "tutorials" / "planner.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0


def test_the_researcher_notebook_runs_cell_by_cell(monkeypatch):
    """Each code cell of docs/tutorials/researcher.ipynb, in order, in one namespace (as a kernel would run them;
    `make docs` executes it with a real kernel when it builds the site)."""
    import json

    notebook = ROOT / "docs" / "tutorials" / "researcher.ipynb"
    monkeypatch.chdir(notebook.parent)
    cells = [c for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 6
    namespace: dict = {}
    for i, cell in enumerate(cells):
        exec(compile("".join(cell["source"]), f"{notebook.name} cell {i}", "exec"), namespace)
    assert namespace["uncertain"].cea["samples"] == 8
    assert 0.0 < namespace["mean"] < 1.0


def test_the_site_lists_every_page_and_every_page_exists():
    import re

    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = set(re.findall(r":\s+([\w/]+\.(?:md|ipynb))\s*$", config, flags=re.M))
    docs = ROOT / "docs"
    assert all((docs / page).exists() for page in pages), pages
    written = {p.relative_to(docs).as_posix() for p in docs.rglob("*") if p.suffix in (".md", ".ipynb")}
    assert written <= pages, f"pages not in mkdocs.yml's nav: {sorted(written - pages)}"
