"""Stream seeding: the states precomputed for many streams at once are numpy's own, and cohorts do not depend on
which way the streams were opened."""

from __future__ import annotations

import numpy as np
import pytest

import sim.model.population as population
from sim.config.scenario import load_scenario
from sim.model.population import draw_cohort
from sim.model.randomness import PURPOSE_KEYS, pcg64_states, purpose_key, stream
from tests.helpers import LOW_VOLUME, PERIOD


@pytest.mark.parametrize("root_seed", [0, 1, 20261124, 2**32 - 1])
def test_precomputed_states_are_those_of_seed_sequence_and_pcg64(root_seed):
    keys = [(rep, key, sub) for rep in (0, 3, 2**31 + 5) for key in (*PURPOSE_KEYS.values(), 105, 205)
            for sub in (0, 3)]
    states = pcg64_states(root_seed, keys)
    assert states is not None
    for key, state in zip(keys, states, strict=True):
        assert np.random.PCG64(np.random.SeedSequence(root_seed, spawn_key=key)).state == state


def test_precomputed_states_give_the_streams_draws():
    states = pcg64_states(7, [(2, purpose_key("service:3"), 1)])
    assert states is not None
    gen = np.random.Generator(np.random.PCG64(0))
    gen.bit_generator.state = states[0]
    assert np.array_equal(gen.random(100), stream(7, 2, "service:3", 1).random(100))


@pytest.mark.parametrize("root_seed, keys", [(2**32, [(0, 1, 0)]), (-1, [(0, 1, 0)]), (1, [(2**32, 1, 0)]),
                                             (1, [])])
def test_no_precomputed_states_beyond_32_bit_words(root_seed, keys):
    assert pcg64_states(root_seed, keys) is None


def test_cohort_is_the_same_with_streams_opened_one_by_one(monkeypatch):
    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 400,
                                            "population.demand.growth_per_year": 0.2})
    fast = draw_cohort(s, 5, 1)
    monkeypatch.setattr(population, "pcg64_states", lambda root_seed, keys: None)
    slow = draw_cohort(s, 5, 1)
    assert fast.n == slow.n > 0
    assert set(fast.uniforms) == set(slow.uniforms)
    for name, values in slow.uniforms.items():
        assert np.array_equal(fast.uniforms[name], values), name
    assert np.array_equal(fast.onset_day, slow.onset_day)


def test_resource_uniforms_are_the_per_resource_arrays_stacked():
    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 200})
    c = draw_cohort(s, 2, 0)
    block = c.resource_uniforms("booking")
    assert all(np.shares_memory(block, c.uniforms[f"booking:{r}"]) for r in range(block.shape[0]))
    c.by_resource.clear()  # e.g. a Cohort built by hand: stacked on first use
    assert np.array_equal(c.resource_uniforms("booking"), block)


def test_treatment_uniforms_side_by_side_cover_every_treatment():
    from sim.model.clinical import TREATMENTS
    from sim.model.population import TREATMENT_UNIFORMS

    assert set(TREATMENT_UNIFORMS) == set(TREATMENTS)
    c = draw_cohort(load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 200}), 2, 0)
    assert c.treatments is not None
    assert all(np.shares_memory(c.treatments, c.uniforms[name]) for name in TREATMENT_UNIFORMS)
