"""sim.engines.events.Delay: the same SimPy event as simpy.Timeout, scheduled in one call (uses SimPy internals)."""

from __future__ import annotations

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from simpy.events import Timeout

from sim.engines.events import Delay


def trace(kind: type[Timeout], delays: list[list[float]]) -> tuple[list[tuple[float, int]], list[tuple]]:
    """Processes that each wait through their own delays; the (day, process) of every wake-up and the queue's
    entries (day, priority, event id) right after the first round of scheduling."""
    env = simpy.Environment()
    log: list[tuple[float, int]] = []

    def process(i: int, waits: list[float]):
        for wait in waits:
            value = yield kind(env, wait, value=i)
            log.append((env.now, value))

    for i, waits in enumerate(delays):
        env.process(process(i, waits))
    env.step()  # the first initialization
    snapshot = [entry[:3] for entry in sorted(env._queue)]
    env.run()
    return log, snapshot


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5]), max_size=5), min_size=1, max_size=6))
def test_delay_wakes_the_same_processes_in_the_same_order_as_timeout(delays):
    assert trace(Delay, delays) == trace(Timeout, delays)


def test_delay_is_a_timeout_and_refuses_a_negative_delay():
    env = simpy.Environment()
    assert isinstance(Delay(env, 1.0), Timeout)
    with pytest.raises(ValueError, match="Negative delay"):
        Delay(env, -1.0)
