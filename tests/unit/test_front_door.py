"""The shared front door: first-contact visits before any center, drawn with the cohort, the same in every
scenario with the same population."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config.parameters import ETIOLOGIES
from sim.config.scenario import load_scenario
from sim.errors import ScenarioError
from sim.model.front_door import VISIT_SLOTS, through_front_door
from sim.model.population import draw_cohort
from sim.runs.replication import run_replication
from tests.helpers import EXPERIENCED, LOW_VOLUME

SPONTANEOUS = ETIOLOGIES.index("spontaneous")


def test_procedure_related_leaks_present_on_their_first_contact_day():
    c = draw_cohort(load_scenario(EXPERIENCED), 3, 0)
    iatrogenic = c.etiology != SPONTANEOUS
    assert iatrogenic.sum() > 100
    np.testing.assert_array_equal(c.presented_day[iatrogenic], c.first_contact_day[iatrogenic])
    assert (c.front_door_visits[iatrogenic] == 1).all()


def test_visits_are_geometric_and_the_delay_is_the_sum_of_return_intervals():
    s = load_scenario(EXPERIENCED, overrides={"population.front_door.max_visits": VISIT_SLOTS,
                                              "population.front_door.return_days": {"family": "fixed", "value": 10},
                                              "population.front_door.self_referral_probability": 0.0})
    rng = np.random.default_rng(1)
    n = 200_000
    first = rng.uniform(0, 100, n)
    path = through_front_door(first, "spontaneous", s.population, rng.random((n, VISIT_SLOTS)),
                              rng.random((n, VISIT_SLOTS)), rng.random(n))
    p = 0.33
    referred = np.isfinite(path.presented_day)
    assert referred.mean() == pytest.approx(1 - (1 - p) ** VISIT_SLOTS, abs=0.002)
    np.testing.assert_allclose(path.presented_day[referred] - first[referred], 10 * (path.visits[referred] - 1))
    k = np.arange(1, VISIT_SLOTS + 1)
    geometric = p * (1 - p) ** (k - 1)
    observed = np.bincount(path.visits[referred], minlength=VISIT_SLOTS + 1)[1:] / n
    np.testing.assert_allclose(observed, geometric, atol=0.003)
    # who was never referred gave up on the day of her last visit
    np.testing.assert_allclose(path.gave_up_day[~referred], first[~referred] + 10 * (VISIT_SLOTS - 1))


def test_self_referral_after_the_last_visit():
    s = load_scenario(EXPERIENCED, overrides={"population.front_door.referral_probability_per_visit.spontaneous": 0.0,
                                              "population.front_door.max_visits": 2,
                                              "population.front_door.return_days": {"family": "fixed", "value": 7},
                                              "population.front_door.self_referral_probability": 1.0})
    first = np.array([5.0, 9.0])
    path = through_front_door(first, "spontaneous", s.population, np.zeros((2, VISIT_SLOTS)),
                              np.zeros((2, VISIT_SLOTS)), np.zeros(2))
    np.testing.assert_allclose(path.presented_day, first + 14.0)  # two visits, then one interval more
    assert path.visits.tolist() == [2, 2] and np.isinf(path.gave_up_day).all()


def test_the_front_door_is_the_same_in_both_arms():
    """Same population, same seed: every spontaneous patient reaches her center on the same day in the
    experienced and the low-volume scenario (what differs is what the center does from then on)."""
    a = draw_cohort(load_scenario(EXPERIENCED), 5, 1)
    b = draw_cohort(load_scenario(LOW_VOLUME), 5, 1)
    np.testing.assert_array_equal(a.presented_day, b.presented_day)
    np.testing.assert_array_equal(a.front_door_visits, b.front_door_visits)


def test_fewer_visits_allowed_keeps_every_earlier_visit():
    six = draw_cohort(load_scenario(EXPERIENCED), 5, 0)
    three = draw_cohort(load_scenario(EXPERIENCED, overrides={"population.front_door.max_visits": 3}), 5, 0)
    early = (six.front_door_visits <= 3) & np.isfinite(six.presented_day) & (six.etiology == SPONTANEOUS)
    assert early.sum() > 100
    np.testing.assert_array_equal(six.presented_day[early], three.presented_day[early])


def test_who_gives_up_at_the_front_door_is_persistent_and_never_seen():
    s = load_scenario(EXPERIENCED, overrides={"population.front_door.referral_probability_per_visit.spontaneous": 0.05,
                                              "population.front_door.self_referral_probability": 0.0})
    p = run_replication(s, 9, 0).patients
    gave_up = (p["etiology"] == "spontaneous") & p["presented_day"].isna() & (p["final_state"] == "persistent")
    assert gave_up.sum() > 50
    rows = p[gave_up]
    assert (rows["persistent_reason"] == "undiagnosed").all() and (rows["n_consultations"] == 0).all()
    assert (rows["n_front_door_visits"] == 6).all()


def test_a_second_opinion_needs_a_center_to_refer_to_and_a_draw_under_the_probability():
    from sim.model.rules import gives_up, seeks_second_opinion

    u = np.array([0.1, 0.6, 0.1, 0.6])
    refers = np.array([True, True, False, False])
    assert seeks_second_opinion(u, refers, 0.5).tolist() == [True, False, False, False]
    assert not seeks_second_opinion(u, refers, 0.0).any()
    assert seeks_second_opinion(u, refers, 1.0).tolist() == [True, True, False, False]
    assert gives_up(np.array([9, 10, 11]), 10).tolist() == [False, True, True]


def test_the_second_opinion_probability_is_read_and_checked():
    s = load_scenario(LOW_VOLUME, overrides={"population.second_opinion.probability": 0.2})
    assert s.population.second_opinion_probability == 0.2
    assert load_scenario(LOW_VOLUME).population.second_opinion_probability == 0.5
    with pytest.raises(ScenarioError) as info:
        load_scenario(LOW_VOLUME, overrides={"population.second_opinion.probability": 1.5})
    assert "population.second_opinion.probability" in str(info.value)
