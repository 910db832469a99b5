"""Bad input, tried hard: a corpus of broken scenario files, and a fuzz of the scenario loader.

Every file in tests/bad_inputs/ starts with `# BAD: <what is wrong>; field: <field>` (and `file: <name>` when the
error is in another file, e.g. a bad parent reached through `extends`). The files directly in tests/bad_inputs/ go
through the real command line (`python -m sim validate` and `python -m sim run`); those in loader_only/ are
variants of the same mistakes, checked in-process only to keep the suite fast. Either way the loader must raise a
`ScenarioError` naming the declared field, and the CLI must exit 2 with exactly one line on stderr, no traceback
and no output folder.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config.parameters import Scenario
from sim.config.scenario import build_scenario, load_scenario
from sim.config.schema import base_tree, flatten
from sim.errors import ScenarioError
from tests.helpers import ROOT

BAD = ROOT / "tests" / "bad_inputs"
CLI_FILES = sorted(BAD.glob("*.toml"))
ALL_FILES = CLI_FILES + sorted((BAD / "loader_only").glob("*.toml"))
HEADER = re.compile(r"^# BAD: (?P<what>.+?); field: (?P<field>\S+)$")


def header(path: Path) -> tuple[str, str]:
    """(field that the error must name, name of the file the error must name) from the first line."""
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    m = HEADER.match(first)
    assert m, f"{path.name}: first line must be '# BAD: <what>; field: <field>'"
    named = re.search(r"file: (\S+)", m["what"])
    return m["field"], named[1] if named else path.name


def test_corpus_is_large_and_every_file_says_what_is_wrong():
    assert len(CLI_FILES) >= 35 and len(ALL_FILES) >= 60
    for path in ALL_FILES:
        header(path)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.stem)
def test_loader_refuses_with_the_declared_field(path: Path):
    field, named = header(path)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert err.field == field, str(err)
    assert named in err.file and "\n" not in str(err)


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[Path, Any]]:
    """Run both commands on every CLI corpus file, concurrently (each process mostly imports numpy and pandas)."""
    out_root = tmp_path_factory.mktemp("bad_out")
    jobs: dict[tuple[str, str], tuple[Path, list[str]]] = {}
    for path in CLI_FILES:
        out = out_root / path.stem
        jobs[(path.name, "validate")] = (out, ["validate", str(path)])
        jobs[(path.name, "run")] = (out, ["run", str(path), "--reps", "1", "--out", str(out), "--jobs", "1"])
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {key: (out, pool.submit(_cli, args)) for key, (out, args) in jobs.items()}
        return {key: (out, fut.result()) for key, (out, fut) in futures.items()}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: p.stem)
def test_cli_exits_2_with_one_line_naming_file_and_field(cli_results, path: Path, command: str):
    field, named = header(path)
    out, proc = cli_results[(path.name, command)]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("csfsim: error: ") and named in lines[0]
    assert f": {field} = " in lines[0], lines[0]
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


# ------------------------------------------------------------------------------------------------ fuzzing
def toml_value(v: object) -> str:
    """A tiny TOML writer: any value as an inline TOML value (tables become nested inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


def test_tiny_toml_writer_round_trips():
    import tomllib

    doc = {"a": {"b c": [1, 2.5, True], "d": {"e": "x\"\n\u0001", "f": dt.date(2020, 1, 2)}}, "g": -3}
    assert tomllib.loads(toml_document(doc)) == doc
    assert math.isnan(tomllib.loads(toml_document({"x": math.nan}))["x"])


VALID = {
    "scenario": {"name": "fuzz"},
    "run": {"horizon_days": 365, "follow_up_days": 0},
    "population": {"catchment": {"adults": 100_000}, "incidence_per_100k_per_year": {"spontaneous": 20},
                   "care_seeking_days": {"post_lp": {"family": "gamma", "mean": 2.0, "sd": 1.0}}},
    "clinical": {"ebp_first_success": {"post_lp": {"value": 0.7, "grade": "M", "source": "fuzz"}}},
    "profiles": {"regional": {"like": "low_volume", "offers_embolization": True}},
    "centers": {
        "district": {"profile": "regional", "catchment_share": {"post_lp": 1.0, "epidural": 1.0,
                                                                "spinal_surgery": 1.0, "spontaneous": 0.5},
                     "refers_to": "specialist", "resources": {"myelography": {"capacity": 2}}},
        "specialist": {"profile": "experienced", "catchment_share": {"spontaneous": 0.5}},
    },
}
BASE_PATHS = sorted(flatten(base_tree()))
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
WEIRD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), TEXT, st.dates(),
    st.sampled_from(["fixed", "gamma", "weibull", "refined", "experienced", "low_volume", "district", "", "..",
                     "specialist", "base.toml", "valid.toml"]),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["family", "value", "mean", "sd", "median", "sigma", "shape", "scale", "low",
                                     "mode", "high", "unit", "grade", "source", "like", "x"]),
                    st.one_of(st.floats(-1e3, 1e6), st.sampled_from(["lognormal", "weibull", "days", "H"])),
                    max_size=4),
)
PATH = st.one_of(
    st.sampled_from(BASE_PATHS),
    st.sampled_from(["centers.district.profile", "centers.district.catchment_share", "centers.district.refers_to",
                     "centers.specialist.refers_to", "centers.specialist.catchment_share.spontaneous",
                     "profiles.regional.like", "extends", "scenario.name", "scenario", "centers", "profiles",
                     "centers.district.resources.clinic.capacity", "centers.x.profile", "run", "profiles.new.like"]),
    st.lists(st.sampled_from(["centers", "district", "profiles", "run", "clinical", "x", "all", "value"]),
             min_size=1, max_size=4).map(".".join),
)


def mutate(doc: dict[str, Any], dotted: str, value: object, delete: bool) -> None:
    node: Any = doc
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(part, {})
    if not isinstance(node, dict):
        return
    if delete:
        node.pop(parts[-1], None)
    elif value is not None:
        node[parts[-1]] = value


def test_the_fuzzed_seed_scenario_is_valid(tmp_path: Path):
    path = tmp_path / "valid.toml"
    path.write_text(toml_document(VALID), encoding="utf-8")
    s = load_scenario(path)
    assert s.center("district").profile.offers_embolization and s.horizon_days == 365


def _load_only_scenario_errors(path: Path) -> None:
    try:
        result = load_scenario(path)
    except ScenarioError as err:
        assert "\n" not in str(err) and err.file
    else:
        assert isinstance(result, Scenario)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(PATH, WEIRD, st.booleans()), min_size=1, max_size=4))
def test_fuzz_mutated_valid_scenarios_raise_only_scenario_error(tmp_path: Path, mutations):
    doc = json.loads(json.dumps(VALID))
    for dotted, value, delete in mutations:
        mutate(doc, dotted, value, delete)
    path = tmp_path / "mutated.toml"
    path.write_text(toml_document(doc), encoding="utf-8")
    _load_only_scenario_errors(path)


@settings(max_examples=100, deadline=None)
@given(mutations=st.lists(st.tuples(PATH, WEIRD, st.booleans()), min_size=1, max_size=4))
def test_fuzz_build_scenario_on_mutated_dicts(mutations):
    doc = json.loads(json.dumps(VALID))
    for dotted, value, delete in mutations:
        mutate(doc, dotted, value, delete)
    doc.pop("extends", None)  # `extends` is resolved by load_scenario, not build_scenario
    try:
        build_scenario(doc, "<fuzz>")
    except ScenarioError as err:
        assert err.file == "<fuzz>"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(max_size=200),
    st.text(alphabet="[]{}=\"'.,#\n abc_0123456789eE+-:", max_size=200),
    st.builds(lambda a, b: a + b, st.sampled_from([toml_document(VALID), "[centers.c]\n", "extends = \"x\"\n"]),
              st.text(max_size=60)),
))
def test_fuzz_random_text_raises_only_scenario_error(tmp_path: Path, text: str):
    path = tmp_path / "text.toml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    _load_only_scenario_errors(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_scenario_error(tmp_path: Path, data: bytes):
    path = tmp_path / "bytes.toml"
    path.write_bytes(data)
    _load_only_scenario_errors(path)


# ------------------------------------------------------------------------------------------------ regressions
@pytest.mark.parametrize(("text", "field"), [
    # unhashable values used to escape as TypeError from `x in dict`
    ('[centers.c]\nprofile = ["experienced"]\ncatchment_share = 1.0\n', "centers.c.profile"),
    ('[profiles.p]\nlike = { a = 1 }\n[centers.c]\nprofile = "p"\ncatchment_share = 1.0\n', "profiles.p.like"),
    ('[centers.c]\nprofile = "experienced"\ncatchment_share = 1.0\n'
     'referral_delay_days = { family = { a = 1 }, value = 1 }\n', "centers.c.referral_delay_days.family"),
    # a NUL or over-long path in `extends` used to escape as ValueError / OSError
    ('extends = "a\\u0000"\n', "extends"),
    ('extends = "' + "x" * 5000 + '"\n', "extends"),
])
def test_regression_loader_bugs_are_scenario_errors(write_toml, text: str, field: str):
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_toml(text))
    assert info.value.field == field


def test_regression_missing_parent_names_the_child_and_extends(write_toml):
    child = write_toml('extends = "gone.toml"\n', "child.toml")
    with pytest.raises(ScenarioError) as info:
        load_scenario(child)
    assert info.value.file == str(child) and info.value.field == "extends"


def test_regression_extends_cycle_shows_the_chain(write_toml):
    write_toml('extends = "b.toml"\n', "a.toml")
    b = write_toml('extends = "a.toml"\n', "b.toml")
    with pytest.raises(ScenarioError, match=r"cycle b\.toml -> a\.toml -> b\.toml"):
        load_scenario(b)


def test_regression_memory_guard_cannot_be_lifted(write_toml):
    text = '[run]\nmax_expected_patients = 10_000_000\n[centers.c]\nprofile = "experienced"\ncatchment_share = 1\n'
    with pytest.raises(ScenarioError) as info:
        load_scenario(write_toml(text))
    assert info.value.field == "run.max_expected_patients"
