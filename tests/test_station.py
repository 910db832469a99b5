"""sim.station: the lean FIFO multi-server station against simpy.Resource and its own rules."""

from __future__ import annotations

import math

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.station import GRANTED, LEFT, Station


def test_a_free_server_is_granted_without_an_event_and_a_release_without_one_either():
    env = simpy.Environment()
    station = Station(env, capacity=2)
    assert station.request(math.inf) is None
    assert station.request(5.0) is None
    assert station.free == 0
    station.release()
    station.release()
    assert station.free == 2
    assert next(env._eid) == 0  # nothing was scheduled


def test_the_longest_waiting_patient_gets_the_server_and_those_who_left_are_skipped():
    env = simpy.Environment()
    station = Station(env, capacity=1)
    log: list[tuple[str, float, bool]] = []

    def patient(name: str, arrive: float, patience: float, service: float):
        yield env.timeout(arrive)
        ticket = station.request(patience)
        value = GRANTED if ticket is None else (yield ticket)
        log.append((name, env.now, value))
        if value is GRANTED:
            yield env.timeout(service)
            station.release()

    env.process(patient("a", 0.0, math.inf, 10.0))
    env.process(patient("b", 1.0, 2.0, 1.0))  # leaves at day 3, before the server frees at 10
    env.process(patient("c", 2.0, math.inf, 1.0))
    env.process(patient("d", 4.0, 100.0, 1.0))
    env.run()
    assert log == [("a", 0.0, GRANTED), ("b", 3.0, LEFT), ("c", 10.0, GRANTED), ("d", 11.0, GRANTED)]
    assert station.free == 1 and not any(t._value is simpy.events.PENDING for t in station.queue)


@settings(max_examples=40, deadline=None)
@given(capacity=st.integers(1, 3),
       customers=st.lists(st.tuples(st.floats(0.01, 3.0), st.floats(0.01, 5.0), st.floats(0.01, 20.0)),
                          min_size=1, max_size=40))
def test_same_start_days_as_simpy_resource_with_reneging(capacity, customers):
    """Arrivals (gap, service, patience): every customer starts (or leaves) on the same day with both."""

    def simulate(lean: bool) -> list[tuple[float, bool]]:
        env = simpy.Environment()
        station = Station(env, capacity)
        resource = simpy.Resource(env, capacity)
        out: list[tuple[float, bool]] = [(math.nan, False)] * len(customers)

        def customer(i: int, service: float, patience: float):
            if lean:
                ticket = station.request(patience)
                value = GRANTED if ticket is None else (yield ticket)
                out[i] = (env.now, value)
                if value is GRANTED:
                    yield env.timeout(service)
                    station.release()
            else:
                req = resource.request()
                yield req | env.timeout(patience)
                out[i] = (env.now, req.triggered)
                if req.triggered:
                    yield env.timeout(service)
                    resource.release(req)
                else:
                    req.cancel()

        def source():
            for i, (gap, service, patience) in enumerate(customers):
                yield env.timeout(gap)
                env.process(customer(i, service, patience))

        env.process(source())
        env.run()
        return out

    assert simulate(lean=True) == simulate(lean=False)
