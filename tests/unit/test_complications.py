"""Complications of treatment: who has one, and what it costs."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config.scenario import load_scenario
from sim.model import complications as cx
from sim.runs.replication import run_replication
from tests.helpers import EXPERIENCED, only


def test_the_chance_of_one_or_more_grows_with_the_procedures():
    assert cx.at_least_one(0, 0.3) == 0.0
    assert cx.at_least_one(1, 0.3) == pytest.approx(0.3)
    assert cx.at_least_one(np.array([2, 3]), 0.5) == pytest.approx([0.75, 0.875])


def test_flags_follow_the_counts_the_uniform_and_the_etiology():
    counts = {"n_ebp": np.array([0, 1, 2, 0]), "n_targeted_patch": np.array([0, 0, 1, 0]),
              "n_fibrin_patch": np.zeros(4, dtype=int), "n_surgery": np.array([1, 1, 0, 0]),
              "n_embolization": np.array([0, 0, 0, 1])}
    spontaneous = np.array([False, True, True, True])
    u = np.full((4, 3), 0.5)
    flags = cx.complication_flags(counts, spontaneous, u, {"intracranial_bleed": 0.3, "neurological_deficit": 0.6,
                                                           "embolization_pain": 0.6})
    # bleeding: 1 - 0.7^n against 0.5: none for 0 or 1 patch, yes for 3 (0.657)
    assert flags["complication_intracranial_bleed"].tolist() == [False, False, True, False]
    # a deficit after leak surgery only: patient 0's operation is a durotomy repair
    assert flags["complication_neurological_deficit"].tolist() == [False, True, False, False]
    assert flags["complication_embolization_pain"].tolist() == [False, False, False, True]


def test_shipped_probabilities_are_the_sources():
    p = cx.probabilities(load_scenario(EXPERIENCED).resolved)
    assert p == {"intracranial_bleed": 0.0046, "neurological_deficit": 0.017, "embolization_pain": 0.30}
    assert cx.probabilities({}) == dict.fromkeys(p, 0.0)


def test_a_certain_bleed_after_every_patch_costs_and_lowers_qalys(write_toml):
    def patients(extra: str):
        s = load_scenario(write_toml(only("epidural", extra), "c.toml"))
        return run_replication(s, 2, 0).patients
    certain = "[complications.intracranial_bleed]\nprobability = 1.0\ncost = 1000\nutility_decrement = 0.5\n"
    none = "[complications.intracranial_bleed]\nprobability = 0.0\ncost = 1000\nutility_decrement = 0.5\n"
    a, b = patients(certain), patients(none)
    patched = (a["n_ebp"] + a["n_fibrin_patch"] > 0).to_numpy()
    assert patched.sum() > 100
    assert (a["complication_intracranial_bleed"].to_numpy() == patched).all()
    assert not b["complication_intracranial_bleed"].any()
    extra_cost = (a["cost"] - b["cost"]).to_numpy()
    assert (extra_cost[patched] > 900).all() and (extra_cost[patched] <= 1000).all()  # discounted from the patch
    assert np.allclose(extra_cost[~patched], 0.0)
    lost = (b["qaly"] - a["qaly"]).to_numpy()
    assert (lost[patched] > 0).all() and (lost[patched] <= 0.5 * 90 / 365.25 + 1e-12).all()


def test_a_leak_complication_happens_only_while_the_leak_is_open_and_for_its_leak_types():
    """Patients 0-3 spontaneous (ventral, ventral, fistula, indeterminate), 4 procedure-related. A haematoma forms
    10 days after onset for all spontaneous leaks with probability 1; siderosis 100 days after, ventral only."""
    from sim.config.distributions import Distribution
    from sim.config.parameters import LEAK_TYPES

    onset = np.array([0.0, 0.0, 5.0, 5.0, 0.0])
    first_resolved = np.array([np.nan, 50.0, 12.0, 20.0, np.nan])  # open: to the horizon, 50, 12, 20, -
    leak = np.array([LEAK_TYPES.index(t) for t in ("ventral_dural_tear", "ventral_dural_tear", "csf_venous_fistula",
                                                   "indeterminate")] + [-1])
    params = {"subdural_haematoma": (1.0, Distribution("fixed", (("value", 10.0),))),
              "superficial_siderosis": (1.0, Distribution("fixed", (("value", 100.0),)))}
    u = np.full((5, 4), 0.5)
    out = cx.leak_complications(onset, first_resolved, leak, 365.0, u, params)
    assert out["complication_subdural_haematoma"].tolist() == [True, True, False, True, False]  # 15 > 12: sealed
    assert out["complication_subdural_haematoma_day"][[0, 1, 3]].tolist() == [10.0, 10.0, 15.0]
    assert np.isnan(out["complication_subdural_haematoma_day"][[2, 4]]).all()
    assert out["complication_superficial_siderosis"].tolist() == [True, False, False, False, False]
    # the horizon closes the window too; a draw above the probability never happens
    assert not cx.leak_complications(onset, first_resolved, leak, 80.0, u, params)[
        "complication_superficial_siderosis"].any()
    rare = {**params, "subdural_haematoma": (0.4, params["subdural_haematoma"][1])}
    assert not cx.leak_complications(onset, first_resolved, leak, 365.0, u, rare)[
        "complication_subdural_haematoma"].any()


def test_siderosis_follows_its_weibull_among_ventral_tears_left_open():
    """The shipped onset distribution reproduces the published cumulative risk of a persistent ventral leak
    (Schievink 2021): about 12% by 96 months and 33% by 144 (0.105 and 0.327 published)."""
    from sim.config.parameters import LEAK_TYPES

    params = cx.leak_parameters(load_scenario(EXPERIENCED).resolved)
    n = 200_000
    rng = np.random.default_rng(1)
    for months, published in ((96, 0.105), (144, 0.327), (192, 0.579)):
        out = cx.leak_complications(np.zeros(n), np.full(n, np.nan), np.full(n, LEAK_TYPES.index("ventral_dural_tear")),
                                    months * 365.25 / 12, rng.random((n, 4)), params)
        assert out["complication_superficial_siderosis"].mean() == pytest.approx(published, abs=0.025)
    probability, delay = params["subdural_haematoma"]
    within_18_days = probability * float(np.mean(delay.ppf(rng.random(n)) <= 18.0))
    assert within_18_days == pytest.approx(0.079, abs=0.005)  # the share with a haematoma at <= 18 days


def test_a_haematoma_costs_and_lowers_qalys_from_the_day_it_formed(write_toml):
    def patients(probability: float):
        extra = (f"[complications.subdural_haematoma]\nprobability = {probability}\ncost = 1000\n"
                 "utility_decrement = 0.5\n")
        s = load_scenario(write_toml(only("spontaneous", extra), "s.toml"))
        return run_replication(s, 2, 0).patients
    a, b = patients(1.0), patients(0.0)
    had = a["complication_subdural_haematoma"].to_numpy()
    assert 0.3 < had.mean() < 1.0 and not b["complication_subdural_haematoma"].any()
    extra_cost = (a["cost"] - b["cost"]).to_numpy()
    assert (extra_cost[had] > 900).all() and (extra_cost[had] <= 1000).all()
    assert np.allclose(extra_cost[~had], 0.0)
    assert ((b["qaly"] - a["qaly"]).to_numpy()[had] > 0).all()


def test_a_bleed_after_a_patch_in_a_patient_whose_leak_made_a_haematoma_is_counted_once():
    flags = {"complication_intracranial_bleed": np.array([True, True, False])}
    leak = {"complication_subdural_haematoma": np.array([True, False, True])}
    cx.one_haematoma(flags, leak)
    assert flags["complication_intracranial_bleed"].tolist() == [False, True, False]
