"""The compiled engine (sim/engine_build.py, setup.py) against its Python source, which the rest of the suite runs.

- Which build may run: the guard, on fake package folders (a build is used only if complete and made from the files
  present, dependencies included).
- Same results: every shipped scenario (and variants) run on the compiled build and on the source, in two child
  processes; every record, event, resource use and monitor figure must be identical (repr, so value and type).
- The engine's tests again, in a child process on the compiled build.
Where no compiled build exists (a machine without a C compiler) the last two are skipped with the reason, unless
CSFSIM_EXPECT_COMPILED=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim import engine_build
from tests.conftest import ROOT

ENGINE_TESTS = ["tests/test_backtest.py", "tests/test_pathway.py", "tests/test_station.py", "tests/test_clinical.py",
                "tests/test_lazy_days.py", "tests/test_fastpath.py", "tests/test_properties.py",
                "tests/test_verification.py", "tests/test_events.py"]
SHIM_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _compiled_or_skip() -> None:
    reason = engine_build.python_reason(honour_variable=False)
    if reason is None:
        return
    if os.environ.get("CSFSIM_EXPECT_COMPILED") == "1":
        pytest.fail(f"CSFSIM_EXPECT_COMPILED=1 but the engine cannot run compiled: {reason} (`make setup` builds it)")
    pytest.skip(f"no compiled engine here: {reason}")


def _child(args: list[str], pure: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, engine_build.PURE_VARIABLE: "1" if pure else "0"}
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True)


# ------------------------------------------------------------------------------------------ which build may run
@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """A package folder holding copies of the engine's sources, a complete fake build of them and its record."""
    package = tmp_path / "sim"
    package.mkdir()
    for source in engine_build.source_files():
        (package / source.name).write_bytes(source.read_bytes())
    library = tmp_path / f"{engine_build.LIBRARY}{SHIM_SUFFIX}"
    library.write_bytes(b"library")
    outputs = {engine_build.LIBRARY: library}
    for module in engine_build.COMPILED_MODULES:
        shim = package / (engine_build.source_path(module).stem + SHIM_SUFFIX)
        shim.write_bytes(module.encode())
        outputs[module] = shim
    record = {"sources": engine_build.source_hashes(package),
              "outputs": {name: engine_build.sha256_of(path) for name, path in outputs.items()}}
    (package / engine_build.record_name()).write_text(json.dumps(record))
    monkeypatch.setattr(engine_build, "PACKAGE_DIR", package)
    monkeypatch.setattr(engine_build, "library_path", lambda: library if library.exists() else None)
    monkeypatch.delenv(engine_build.PURE_VARIABLE, raising=False)
    return package, library


def test_a_complete_current_build_is_used(fake_build):
    assert engine_build.python_reason() is None


def test_the_variable_asks_for_the_source(fake_build, monkeypatch):
    monkeypatch.setenv(engine_build.PURE_VARIABLE, "1")
    assert engine_build.python_reason() == f"{engine_build.PURE_VARIABLE} is set"
    assert engine_build.python_reason(honour_variable=False) is None


@pytest.mark.parametrize("edited", ["pathway.py", "station.py", "parameters.py", "distributions.py", "events.py"])
def test_an_edited_source_or_dependency_makes_the_build_unusable(fake_build, edited):
    """mypyc compiles the types of the modules the engine imports too (a tuple turned list broke a compiled
    build whose own five files were unchanged)."""
    package, _ = fake_build
    (package / edited).write_text((package / edited).read_text() + "\n# edited\n")
    assert engine_build.python_reason() == f"sim/{edited} changed since the engine was compiled"


def test_a_partial_or_foreign_build_is_not_used(fake_build):
    package, library = fake_build
    (package / f"station{SHIM_SUFFIX}").unlink()
    assert "sim.station is missing" in engine_build.python_reason()
    (package / f"station{SHIM_SUFFIX}").write_bytes(b"sim.station")
    assert engine_build.python_reason() is None
    library.write_bytes(b"another checkout's library")
    assert f"{engine_build.LIBRARY} is missing or is not the one built" in engine_build.python_reason()
    library.unlink()
    assert f"{engine_build.LIBRARY} is missing" in engine_build.python_reason()


def test_a_build_without_its_record_or_without_files_is_not_used(fake_build):
    package, _ = fake_build
    (package / engine_build.record_name()).write_text("{}")
    assert "no readable" in engine_build.python_reason()
    (package / engine_build.record_name()).unlink()
    assert "no readable" in engine_build.python_reason()
    for module in engine_build.COMPILED_MODULES:
        (package / (engine_build.source_path(module).stem + SHIM_SUFFIX)).unlink()
    assert engine_build.python_reason() == "not compiled"


def test_the_record_is_per_interpreter():
    assert engine_build.record_name().startswith("_compiled.cpython-")
    assert engine_build.record_name().endswith(".json")


def test_the_sources_include_what_the_engine_imports():
    names = {p.name for p in engine_build.source_files()}
    assert {"pathway.py", "station.py", "clinical.py", "lazy_days.py", "schedule.py", "parameters.py",
            "population.py", "events.py", "distributions.py", "randomness.py"} <= names
    assert "report.py" not in names and "engine_build.py" not in names


def test_an_unusable_build_is_said_on_stderr_and_the_source_is_found_first(monkeypatch, capsys):
    monkeypatch.setattr(engine_build, "python_reason", lambda: "sim/pathway.py changed since the engine was compiled")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(engine_build, "BUILD", engine_build.BUILD)
    assert engine_build.select() == "python (sim/pathway.py changed since the engine was compiled)"
    engine_build.select()
    assert sum(isinstance(f, engine_build._SourceFinder) for f in sys.meta_path) == 1
    err = capsys.readouterr().err
    assert "sim/pathway.py changed since the engine was compiled: running the engine as Python" in err
    assert sys.meta_path[0].find_spec("sim.station").origin.endswith("station.py")
    assert sys.meta_path[0].find_spec("sim.report") is None


def test_the_suite_itself_runs_the_python_source():
    """All five engine modules, or none, come from source."""
    assert engine_build.BUILD.startswith("python")
    for module in engine_build.COMPILED_MODULES:
        assert importlib.import_module(module).__file__.endswith(".py")


def test_the_manifest_says_which_build_ran(tmp_path):
    from sim import outputs
    from sim.experiment import run
    from sim.scenario import load_scenario
    from tests.conftest import EXPERIENCED

    assert outputs.versions()["csfsim_engine_build"] == engine_build.BUILD
    scenario = load_scenario(EXPERIENCED, overrides={"run.horizon_days": 200})
    result = run(scenario, reps=2, seed=1, jobs=1, progress=False, out=tmp_path / "run")
    assert result.manifest["engine_builds"] == [engine_build.BUILD]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["engine_builds"] == [engine_build.BUILD]


# ------------------------------------------------------------------------------------------ same results
SAME_RESULTS = r"""
import hashlib, json, sys
from pathlib import Path
import sim
from sim.engine_build import BUILD
from sim.pathway import Pathway
from sim.population import draw_cohort
from sim.scenario import load_scenario

root = Path(sys.argv[1])
cases = [(p, {}) for p in sorted(root.glob("scenarios/**/*.toml")) if p.name != "base.toml"]
cases += [(root / "scenarios" / name, {"volume_outcome.enabled": True})
          for name in ("regional_network.toml", "examples/sessions_and_closures.toml", "low_volume_center.toml")]
digests = {}
for path, overrides in cases:
    scenario = load_scenario(path, overrides={"run.horizon_days": 1500, **overrides})
    for rep in range(2):
        model = Pathway(scenario, draw_cohort(scenario, 7, rep), log_events=True)
        model.run()
        rec = model.records
        parts = [repr(getattr(rec, name)) for name in sorted(n for n in dir(rec) if not n.startswith("_"))]
        parts += [repr(model.events), repr(model.uses)]
        for center in model.centers:
            for st in center.monitors:
                parts.append(repr((st.n_arrived, st.n_served, st.n_abandoned, st.area_waiting, st.area_busy, st.waits)))
        key = f"{path.relative_to(root)} {overrides} rep {rep}"
        digests[key] = hashlib.sha256("\n".join(parts).encode()).hexdigest()
print(json.dumps({"build": BUILD, "digests": digests}))
"""


def test_the_compiled_build_gives_the_same_tables_as_the_source():
    _compiled_or_skip()
    runs = {}
    for pure in (True, False):
        done = _child(["-c", SAME_RESULTS, str(ROOT)], pure)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[pure] = json.loads(done.stdout)
    assert runs[True]["build"].startswith("python") and runs[False]["build"] == "compiled"
    assert len(runs[True]["digests"]) >= 2 * 12
    assert runs[False]["digests"] == runs[True]["digests"]


def test_the_engine_tests_pass_on_the_compiled_build():
    _compiled_or_skip()
    check = _child(["-c", "import json, sim, sim.engine_build as b, sim.pathway as p, sim.station as s; "
                          "print(json.dumps([b.BUILD, p.__file__, s.__file__]))"], pure=False)
    build, pathway_file, station_file = json.loads(check.stdout)
    assert build == "compiled"
    assert Path(pathway_file).suffix != ".py" and Path(station_file).suffix != ".py"
    tests = _child(["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:cov", *ENGINE_TESTS], pure=False)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]


NUMPY_SCALARS = r"""
import dataclasses, sys
import numpy as np
from sim.engine_build import BUILD
from sim.replication import run_replication
from sim.scenario import load_scenario

scenario = load_scenario(sys.argv[1], overrides={"run.horizon_days": 700})
pop = scenario.population
by_hand = dataclasses.replace(
    scenario, horizon_days=np.float64(700),
    population=dataclasses.replace(pop, max_consultations=np.int64(pop.max_consultations)),
    clinical=dataclasses.replace(scenario.clinical, max_recurrences=np.int32(scenario.clinical.max_recurrences),
                                 ebp_max_blind={k: np.int64(v) for k, v in scenario.clinical.ebp_max_blind.items()}))
a, b = (run_replication(s, 3, 0, engine="simpy").patients for s in (scenario, by_hand))
print(BUILD, a.equals(b))
"""


def test_numpy_scalars_put_into_a_scenario_by_hand_run_on_the_compiled_engine():
    """The compiled engine checks the types its annotations promise; parameter objects make numpy scalars
    Python numbers, so a scenario edited by hand with numpy values runs, with the same results."""
    _compiled_or_skip()
    from tests.conftest import LOW_VOLUME

    done = _child(["-c", NUMPY_SCALARS, str(LOW_VOLUME)], pure=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["compiled", "True"]
