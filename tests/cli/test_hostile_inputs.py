"""Scenario files as a hostile or careless user writes them: `extends` reaching out of the scenario's folder,
files that are not regular files, byte-order marks, terminal escapes, and the way values are shown back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.config.scenario import load_scenario
from sim.errors import ScenarioError, printable, toml_text
from tests.helpers import EXPERIENCED, ROOT


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False)


def test_extends_cannot_reach_a_file_outside_the_scenarios_folder_nor_tell_whether_it_exists(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (tmp_path / "secret.toml").write_text('database = {password = "hunter2"}\n')
    messages = []
    for parent in ("../secret.toml", "../../../../../../etc/passwd", "../../../../../../etc/no_such_file",
                   str(tmp_path / "secret.toml")):
        (study / "s.toml").write_text(f'extends = "{parent}"\n')
        proc = cli("validate", str(study / "s.toml"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        line = proc.stderr.strip().splitlines()[-1]
        assert "hunter2" not in line and "password" not in line and "root:" not in line
        messages.append(line.split(": expected ")[1])
    # the same words whether the file exists or not: nothing is confirmed
    assert len(set(messages)) == 1 and "scenarios/" in messages[0]


def test_extends_reaches_its_own_folder_tree_and_the_shipped_scenarios(tmp_path):
    (tmp_path / "parents").mkdir()
    (tmp_path / "parents" / "p.toml").write_text(f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 300\n'
                                                 f'follow_up_days = 0\n')
    (tmp_path / "child.toml").write_text('extends = "parents/p.toml"\n')
    assert load_scenario(tmp_path / "child.toml").horizon_days == 300


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    inside = tmp_path / "inside"
    outside.mkdir()
    inside.mkdir()
    (outside / "p.toml").write_text(f'extends = "{EXPERIENCED}"\n')
    os.symlink(outside / "p.toml", inside / "link.toml")
    (inside / "s.toml").write_text('extends = "link.toml"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(inside / "s.toml")
    assert info.value.field == "extends"


def test_a_pipe_is_refused_at_once_instead_of_hanging(tmp_path):
    fifo = tmp_path / "s.toml"
    os.mkfifo(fifo)
    proc = cli("validate", str(fifo), timeout=30)
    assert proc.returncode == 2 and "regular file" in proc.stderr


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 400\n'
                                       f'follow_up_days = 0\n'.encode())
    assert load_scenario(path).horizon_days == 400


def test_terminal_escapes_in_names_are_printed_escaped(tmp_path):
    path = tmp_path / "esc.toml"
    path.write_text(f'extends = "{EXPERIENCED}"\n[scenario]\nname = "x\\u001b[2J\\u0007y"\n')
    proc = cli("validate", str(path))
    assert proc.returncode == 0 and "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "x\\x1b[2J\\x07y" in proc.stdout
    assert printable("a\x1b[31mb\x9b") == "a\\x1b[31mb\\x9b"


def test_values_are_shown_as_toml_writes_them():
    assert toml_text(True) == "true" and toml_text(None) == "nothing"
    assert toml_text({"capacity": 2, "a b": [1.5, "x"]}) == '{ capacity = 2, "a b" = [1.5, "x"] }'
    err = ScenarioError("f.toml", "centers.c.resources.clinic", {"capacity": 2}, "a number")
    assert str(err) == "f.toml: centers.c.resources.clinic = { capacity = 2 }: expected a number"


def test_a_comparison_of_two_scenarios_with_one_name_writes_its_report(tmp_path):
    out = tmp_path / "cmp"
    small = tmp_path / "small.toml"
    small.write_text(f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 200\nfollow_up_days = 0\n')
    proc = cli("compare", str(small), str(small), "--reps", "2", "--quiet", "--no-events", "--no-crn-check",
               "--jobs", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.html").exists()
    assert "(A)" in (out / "report.html").read_text() and "(B)" in (out / "report.html").read_text()


def test_plain_values_print_as_before():
    """Field names and values without control characters print as before."""
    err = ScenarioError(str(Path("a.toml")), "run.horizon_days", -1, "a positive number of days")
    assert str(err) == "a.toml: run.horizon_days = -1: expected a positive number of days"


def test_an_error_in_a_file_reached_by_extends_names_that_file(tmp_path):
    parent = tmp_path / "parent.toml"
    child = tmp_path / "child.toml"
    child.write_text('extends = "parent.toml"\n[run]\nhorizon_days = 300\nfollow_up_days = 0\n')
    for body, field in (("[clinical]\nnot_a_key = 1\n", "clinical.not_a_key"),
                        ("[clinical.ebp_first_success]\npost_lp = 2\n", "clinical.ebp_first_success.post_lp")):
        parent.write_text(f'extends = "{EXPERIENCED}"\n{body}')
        with pytest.raises(ScenarioError) as info:
            load_scenario(child)
        assert info.value.file == str(parent) and info.value.field == field
    # the child's own mistake is still the child's
    parent.write_text(f'extends = "{EXPERIENCED}"\n')
    child.write_text('extends = "parent.toml"\n[run]\nhorizon_days = -3\nfollow_up_days = 0\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(child)
    assert info.value.file == str(child)


def test_a_bad_set_path_of_a_sweep_blames_the_command_line(tmp_path):
    from sim.runs.sweep import sweep

    with pytest.raises(ScenarioError) as info:
        sweep(EXPERIENCED, [("nonexistent.path", [1])], reps=1)
    assert info.value.file == "(command line) --set"


def test_extends_of_a_linked_scenario_is_read_beside_the_link(tmp_path):
    """A scenario reached through a symbolic link may extend a file beside the link (where it is named)."""
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "real.toml").write_text('extends = "base.toml"\n')
    (tmp_path / "A" / "base.toml").write_text(f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 333\n'
                                              f'follow_up_days = 0\n')
    os.symlink(tmp_path / "B" / "real.toml", tmp_path / "A" / "s.toml")
    assert load_scenario(tmp_path / "A" / "s.toml").horizon_days == 333


def test_a_folder_listed_in_csfsim_scenario_path_may_be_extended(tmp_path, monkeypatch):
    library = tmp_path / "library"
    study = tmp_path / "study"
    library.mkdir()
    study.mkdir()
    (library / "p.toml").write_text(f'extends = "{EXPERIENCED}"\n[run]\nhorizon_days = 444\nfollow_up_days = 0\n')
    (study / "s.toml").write_text('extends = "../library/p.toml"\n')
    with pytest.raises(ScenarioError, match="CSFSIM_SCENARIO_PATH"):
        load_scenario(study / "s.toml")
    monkeypatch.setenv("CSFSIM_SCENARIO_PATH", str(library))
    assert load_scenario(study / "s.toml").horizon_days == 444
