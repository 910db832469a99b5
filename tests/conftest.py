"""Fixtures shared by every test (paths and helpers are in tests/helpers.py), and the tiers: each test is marked
with its folder (unit, engines, runs, cli), so that `pytest -m unit` runs one tier."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TIERS = ("unit", "engines", "runs", "cli", "app")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def write_toml(tmp_path: Path):
    """write_toml(text, name="s.toml") -> path of a scenario file holding `text`."""

    def _write(text: str, name: str = "s.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write
