"""The compiled engine (sim/engine_build.py, setup.py) against its Python source, which the rest of the suite runs.

The engine's tests run again in a child process on the compiled build: the back-tests (whole runs, patient by patient
against stored results), the pathway, station, clinical and fast-path tests, the property tests and the queueing
theory checks. Where no compiled build exists (a machine without a C compiler) this is skipped with the reason,
unless CSFSIM_EXPECT_COMPILED=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import subprocess
import sys

import pytest

from sim import engine_build
from tests.conftest import ROOT

ENGINE_TESTS = ["tests/test_backtest.py", "tests/test_pathway.py", "tests/test_station.py", "tests/test_clinical.py",
                "tests/test_fastpath.py", "tests/test_properties.py", "tests/test_verification.py",
                "tests/test_events.py"]


def _compiled_or_skip() -> None:
    reason = engine_build.python_reason(honour_variable=False)
    if reason is None:
        return
    if os.environ.get("CSFSIM_EXPECT_COMPILED") == "1":
        pytest.fail(f"CSFSIM_EXPECT_COMPILED=1 but the engine cannot run compiled: {reason} (`make setup` builds it)")
    pytest.skip(f"no compiled engine here: {reason}")


def _child_env() -> dict[str, str]:
    return {**os.environ, engine_build.PURE_VARIABLE: "0"}


def test_the_suite_itself_runs_the_python_source():
    """All five engine modules, or none, come from source."""
    assert engine_build.BUILD.startswith("python")
    for module in engine_build.COMPILED_MODULES:
        assert importlib.import_module(module).__file__.endswith(".py")


def test_the_engine_tests_pass_on_the_compiled_build():
    _compiled_or_skip()
    check = subprocess.run(
        [sys.executable, "-c", "import json, sim, sim.engine_build as b, sim.pathway as p, sim.station as s; "
                               "print(json.dumps([b.BUILD, p.__file__, s.__file__]))"],
        env=_child_env(), cwd=ROOT, capture_output=True, text=True, check=True)
    build, pathway_file, station_file = json.loads(check.stdout)
    assert build == "compiled"
    assert not pathway_file.endswith(".py") and not station_file.endswith(".py")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:cov",
                            *ENGINE_TESTS], env=_child_env(), cwd=ROOT, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]


def test_an_edited_engine_file_runs_as_python_with_a_warning(tmp_path, monkeypatch):
    """A build made from other sources than the files now present is not used, and the user is told why."""
    record = {f"sim/{engine_build.source_path(m).name}": "0" * 64 for m in engine_build.COMPILED_MODULES}
    fake_package = tmp_path / "sim"
    fake_package.mkdir()
    for module in engine_build.COMPILED_MODULES:
        name = engine_build.source_path(module).name
        (fake_package / name).write_text("# edited\n")
        (fake_package / name.replace(".py", importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"")
    (fake_package / engine_build.RECORD_FILE).write_text(json.dumps(record))
    monkeypatch.setattr(engine_build, "PACKAGE_DIR", fake_package)
    monkeypatch.delenv(engine_build.PURE_VARIABLE, raising=False)
    reason = engine_build.python_reason()
    assert reason is not None and "changed since the engine was compiled" in reason
    (fake_package / engine_build.RECORD_FILE).unlink()
    assert "no readable" in engine_build.python_reason()
    monkeypatch.setenv(engine_build.PURE_VARIABLE, "1")
    assert engine_build.python_reason() == f"{engine_build.PURE_VARIABLE} is set"


def test_a_stale_build_is_said_once_on_stderr_and_the_source_is_found_first(monkeypatch, capsys):
    monkeypatch.setattr(engine_build, "python_reason", lambda: "sim/pathway.py changed since the engine was compiled")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(engine_build, "BUILD", engine_build.BUILD)
    assert engine_build.select() == "python (sim/pathway.py changed since the engine was compiled)"
    engine_build.select()
    assert sum(isinstance(f, engine_build._SourceFinder) for f in sys.meta_path) == 1
    err = capsys.readouterr().err
    assert "sim/pathway.py changed since the engine was compiled: running the engine as Python" in err
    spec = sys.meta_path[0].find_spec("sim.station")
    assert spec.origin.endswith("station.py")
    assert sys.meta_path[0].find_spec("sim.report") is None
