"""Shared fixtures: paths of the shipped scenarios and a helper to write small scenario files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

# The suite runs the engine's Python source, the reference (and what coverage can see), here and in the commands it
# starts; tests/test_compiled.py runs the engine's tests again on the compiled build (sim/engine_build.py).
os.environ.setdefault("CSFSIM_PURE", "1")

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
