"""tools/validate_model.py: its figures and table rendering on a tiny run (the full run is `make validate`)."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest

from sim import compare
from sim.config.scenario import load_scenario
from tests.helpers import EXPERIENCED, LOW_VOLUME, PERIOD, ROOT


@pytest.fixture(scope="module")
def vm():
    spec = importlib.util.spec_from_file_location("validate_model", ROOT / "tools" / "validate_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["validate_model"] = module
    spec.loader.exec_module(module)
    return module


def test_table_rendering_on_a_tiny_run(vm):
    small = {**PERIOD, "run.horizon_days": 500}
    runs = compare([load_scenario(EXPERIENCED, small), load_scenario(LOW_VOLUME, small)], reps=2, seed=3,
                   log_events=True, progress=False).runs
    outcomes = vm.evaluate(runs)
    assert len(outcomes) == len(vm.CHECKS)
    for kind in ("face", "external"):
        table = vm.render_table(outcomes, kind)
        lines = table.splitlines()
        n = sum(c.kind == kind for c in vm.CHECKS)
        assert len(lines) == n + 2 and all(line.count(" | ") == 7 for line in lines[2:])
        assert all(line.split(" | ")[6] in ("yes", "**no**", "n/a") for line in lines[2:])
    # shares are shares and the paired difference row is the difference of the two scenario rows
    by_figure = {o.check.figure: o for o in outcomes}
    iatrogenic = by_figure["procedure-related leaks resolved within 1 year of onset"]
    assert 0 <= iatrogenic.mean <= 1 and iatrogenic.low <= iatrogenic.mean <= iatrogenic.high
    assert any(o.check.scenario == vm.DIFF and not math.isnan(o.mean) for o in outcomes)
    doc = vm.render_document(outcomes, reps=2, seed=3)
    assert "--reps 2 --seed 3" in doc and "## External validation" in doc


def test_figures_on_a_hand_made_table(vm):
    import pandas as pd

    p = pd.DataFrame({
        "patient_id": [0, 1, 2, 3], "etiology": ["spontaneous"] * 4, "onset_day": [0.0, 0.0, 10.0, 500.0],
        "presented_day": [5.0, 5.0, 20.0, float("nan")], "diagnosed_day": [30.0, 200.0, float("nan"), float("nan")],
        "final_state": ["resolved", "persistent", "in_pathway_at_horizon", "resolved_without_care"],
        "resolved_day": [100.0, float("nan"), float("nan"), 520.0], "resolved_by": ["surgery", None, None, None],
        "persistent_reason": [None, "treatment_exhausted", None, None],
        "n_ebp": [2, 3, 0, 0], "n_targeted_patch": [0, 1, 0, 0], "n_fibrin_patch": [0, 1, 0, 0],
        "n_surgery": [1, 1, 0, 0], "n_embolization": [0, 0, 0, 0], "n_spinal_imaging": [1, 2, 0, 0],
        "n_control_imaging": [0, 1, 0, 0],
        "leak_localized": [True, True, False, False], "rih": [True, False, False, False],
        "recurred": [False, False, False, False], "residual_symptoms": [False] * 4,
        "residual_days": [float("nan")] * 4,
    })
    r = vm.Rep(p, pd.Series({0: 95.0, 1: 150.0}), horizon=1000.0)
    assert vm.without_care(r) == 0.25
    assert vm.median_diagnosis_delay(r) == 115.0
    assert vm.not_diagnosed_within(r, 90) == pytest.approx(2 / 3)
    assert vm.surgery_success(r) == 0.5 and vm.repeat_ebp(r, "spontaneous") == 1.0
    assert vm.long_symptoms_before_surgery(r) == 1.0
    assert vm.symptomatic_year_after_surgery(r) == 0.5
    assert vm.residual_after_sealing(r) == 0.0  # the one sealed patient has none
    # residual symptoms past a year after surgery count as symptomatic then; ending before, not
    p.loc[0, ["residual_symptoms", "residual_days"]] = [True, 400.0]
    assert vm.residual_after_sealing(r) == 1.0 and vm.symptomatic_year_after_surgery(r) == 1.0
    p.loc[0, "residual_days"] = 300.0
    assert vm.symptomatic_year_after_surgery(r) == 0.5
    assert vm.exhausted(r) == pytest.approx(1 / 3) and vm.interventions_if_exhausted(r) == 6
    assert vm.localized_per_study(r) == pytest.approx(2 / 2)  # the control study of a found site does not count
