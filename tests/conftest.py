"""Shared fixtures: paths of the shipped scenarios and a helper to write small scenario files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
EXPERIENCED = SCENARIOS / "experienced_center.toml"
LOW_VOLUME = SCENARIOS / "low_volume_center.toml"

ONE_CENTER = """
[scenario]
name = "test"
[centers.c]
profile = "experienced"
catchment_share = 1.0
"""


@pytest.fixture
def write_toml(tmp_path: Path):
    """write_toml(text, name="s.toml") -> path of a scenario file holding `text`."""

    def _write(text: str, name: str = "s.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write
