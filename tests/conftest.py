"""Shared fixtures: paths of the shipped scenarios and a helper to write small scenario files."""

from __future__ import annotations

import os
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


def group_outlives(leader_pid: int, seconds: float = 10.0) -> list[str]:
    """After the process `leader_pid` (started with start_new_session=True) was killed: the ids of processes of
    its group still alive `seconds` later, killed then so that no test leaves them behind."""
    import signal
    import subprocess
    import time

    deadline = time.time() + seconds
    while time.time() < deadline and subprocess.run(["pgrep", "-g", str(leader_pid)], capture_output=True).stdout:
        time.sleep(0.1)
    left = subprocess.run(["pgrep", "-g", str(leader_pid)], capture_output=True, text=True).stdout.split()
    for pid in left:
        os.kill(int(pid), signal.SIGKILL)
    return left
