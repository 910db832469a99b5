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
