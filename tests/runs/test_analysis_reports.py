"""Reports of sweep, PSA and sensitivity folders: written by each command, rebuilt by `csfsim report`, every
number from the folder's tables, figures embedded, no link out."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from sim.cli import main
from sim.report.html import build_report
from tests.helpers import EXPERIENCED, LOW_VOLUME


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyses")
    out = {kind: root / kind for kind in ("sweep", "psa", "sensitivity")}
    assert main(["sweep", str(LOW_VOLUME), "--set", "centers.district.resources.myelography.capacity=1,2",
                 "--reps", "2", "--out", str(out["sweep"]), "--quiet", "--jobs", "1"]) == 0
    assert main(["psa", str(EXPERIENCED), str(LOW_VOLUME), "--samples", "3", "--reps", "1", "--out",
                 str(out["psa"]), "--jobs", "1"]) == 0
    assert main(["sensitivity", str(EXPERIENCED), str(LOW_VOLUME), "--reps", "1", "--out", str(out["sensitivity"]),
                 "--params", "utilities", "--jobs", "1"]) == 0
    return out


def _self_contained(html: str) -> None:
    assert not re.search(r"(src|href)=['\"]https?://", html)
    assert "data:image/png;base64," in html


def test_a_sweep_report_shows_the_grid_and_its_paired_differences(folders):
    html = (folders["sweep"] / "report.html").read_text()
    _self_contained(html)
    table = pd.read_csv(folders["sweep"] / "sweep.csv")
    row = table[(table["metric"] == "diagnosis_delay_median_days") & (table["group"] == "spontaneous")].iloc[1]
    assert f"{row['mean']:.4g}" in html
    assert "Diagnosis delay, median among the diagnosed, spontaneous (days from onset)" in html
    assert "centers.district.resources.myelography.capacity" in html and "common random numbers" in html


def test_a_psa_report_states_the_verdict_and_never_a_negative_evpi(folders):
    html = (folders["psa"] / "report.html").read_text()
    _self_contained(html)
    cea = pd.read_csv(folders["psa"] / "cea.csv").iloc[0]
    assert str(cea["verdict"]) in html and f"{cea['inc_nmb']:,.0f}" in html
    assert re.search(r"expected value of perfect information [0-9][0-9,.]* GBP", html)
    assert "fig-ce_plane" in html and "fig-ceac" in html and "fig-evpi" in html


def test_a_sensitivity_report_shows_the_tornado_and_its_table(folders):
    html = (folders["sensitivity"] / "report.html").read_text()
    _self_contained(html)
    oneway = pd.read_csv(folders["sensitivity"] / "oneway.csv")
    assert oneway.iloc[0]["parameter"] in html and "fig-tornado" in html


def test_csfsim_report_rebuilds_each_kind(folders, capsys):
    for folder in folders.values():
        (folder / "report.html").unlink()
        assert main(["report", str(folder)]) == 0
        assert (folder / "report.html").exists()
    assert build_report(folders["sweep"]) == folders["sweep"] / "report.html"
    assert "Report:" in capsys.readouterr().out
