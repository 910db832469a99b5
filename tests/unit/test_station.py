"""sim.engines.station: the lean FIFO multi-server station against simpy.Resource and its own rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engines.station import GRANTED, LEFT, Station


def test_a_free_server_is_granted_without_an_event_and_a_release_without_one_either():
    env = simpy.Environment()
    station = Station(env, capacity=2)
    assert station.arrive(0.0, math.inf) is None
    assert station.arrive(0.0, 5.0) is None
    assert station.free == 0
    station.start(0.0)
    station.start(0.0)
    station.finish(1.0)
    station.finish(2.0)
    assert station.free == 2
    assert next(env._eid) == 0  # nothing was scheduled
    assert (station.n_arrived, station.n_served, station.area_busy, station.area_waiting) == (2, 2, 3.0, 0.0)


def test_the_longest_waiting_patient_gets_the_server_and_those_who_left_are_skipped():
    env = simpy.Environment()
    station = Station(env, capacity=1)
    log: list[tuple[str, float, bool]] = []

    def patient(name: str, arrive: float, patience: float, service: float):
        yield env.timeout(arrive)
        ticket = station.arrive(env.now, patience)
        value = GRANTED if ticket is None else (yield ticket)
        if ticket is not None:
            station.called(env.now, value)
        log.append((name, env.now, value))
        if value is GRANTED:
            station.start(0.0)
            yield env.timeout(service)
            station.finish(env.now)

    env.process(patient("a", 0.0, math.inf, 10.0))
    env.process(patient("b", 1.0, 2.0, 1.0))  # leaves at day 3, before the server frees at 10
    env.process(patient("c", 2.0, math.inf, 1.0))
    env.process(patient("d", 4.0, 100.0, 1.0))
    env.run()
    assert log == [("a", 0.0, GRANTED), ("b", 3.0, LEFT), ("c", 10.0, GRANTED), ("d", 11.0, GRANTED)]
    assert station.free == 1 and not any(t._value is simpy.events.PENDING for t in station.queue)


def simulate_queue(lean: bool, capacity: int, customers: list[tuple[float, float, float]],
                   give_back: bool, station: Station | None = None) -> list[tuple[float, bool]]:
    """Customers (gap before arrival, service, patience) through `Station` (lean) or `simpy.Resource` with
    reneging; each customer's (day she started or left, served?). `give_back`: the pathway's rule, a server granted
    at or after the end of her patience is handed back at once. Pass `station` to read its monitor afterwards."""
    env = simpy.Environment()
    station = Station(env, capacity) if station is None else station
    station.env = env
    resource = simpy.Resource(env, capacity)
    out: list[tuple[float, bool]] = [(math.nan, False)] * len(customers)

    def customer(i: int, service: float, patience: float):
        t0 = env.now
        if lean:
            ticket = station.arrive(env.now, patience)
            granted = True
            if ticket is not None:
                value = yield ticket
                granted = station.called(env.now, value)
            if granted and give_back and env.now >= t0 + patience:
                station.give_back()
                granted = False
            out[i] = (env.now, granted)
            if granted:
                station.start(env.now - t0)
                yield env.timeout(service)
                station.finish(env.now)
        else:
            req = resource.request()
            yield req if req.triggered or patience == math.inf else req | env.timeout(patience)
            granted = req.triggered
            if granted and give_back and env.now >= t0 + patience:
                resource.release(req)
                granted = False
            elif not granted:
                req.cancel()
            out[i] = (env.now, granted)
            if granted:
                yield env.timeout(service)
                resource.release(req)

    def source():
        for i, (gap, service, patience) in enumerate(customers):
            if gap:
                yield env.timeout(gap)
            env.process(customer(i, service, patience))

    env.process(source())
    env.run()
    return out


@settings(max_examples=40, deadline=None)
@given(capacity=st.integers(1, 3),
       customers=st.lists(st.tuples(st.floats(0.01, 3.0), st.floats(0.01, 5.0), st.floats(0.01, 20.0)),
                          min_size=1, max_size=40))
def test_same_start_days_as_simpy_resource_with_reneging(capacity, customers):
    """Arrivals (gap, service, patience): every customer starts (or leaves) on the same day with both."""
    assert simulate_queue(True, capacity, customers, give_back=False) == \
        simulate_queue(False, capacity, customers, give_back=False)


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 3),
       customers=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4),
                                    st.one_of(st.integers(1, 5), st.just(math.inf))), min_size=1, max_size=12))
def test_same_outcomes_as_simpy_resource_when_times_tie_under_the_pathways_give_back_rule(capacity, customers):
    """Whole-day arrivals, services and patience: ties everywhere. The station breaks exact ties in another order
    than `simpy.Resource` (a free server costs no event), and the pathway's rule — a server granted at or after the
    day the leak closed is given back — is what makes every customer's outcome the same. This holds that rule."""
    assert simulate_queue(True, capacity, customers, give_back=True) == \
        simulate_queue(False, capacity, customers, give_back=True)


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 3),
       customers=st.lists(st.tuples(st.floats(0.01, 3.0), st.floats(0.01, 5.0),
                                    st.one_of(st.floats(0.01, 20.0), st.just(math.inf))), min_size=1, max_size=30))
def test_the_monitor_adds_up_every_wait_and_every_service(capacity, customers):
    """Run to the end: the integral of busy servers is the sum of services given, the integral of the line is the
    sum of the waits (served or not), and every arrival is counted once as served or abandoned."""
    station = Station(simpy.Environment(), capacity)
    out = simulate_queue(True, capacity, customers, give_back=True, station=station)
    arrivals = np.cumsum([gap for gap, _, _ in customers])
    served = [service for (_, service, _), (_, ok) in zip(customers, out, strict=True) if ok]
    waited = [day - arrived for arrived, (day, _) in zip(arrivals, out, strict=True)]
    assert station.n_arrived == len(customers) == station.n_served + station.n_abandoned
    assert station.n_served == len(served) and station.n_busy == 0 and station.n_waiting == 0
    assert station.area_busy == pytest.approx(sum(served), rel=1e-9, abs=1e-9)
    assert station.area_waiting == pytest.approx(sum(waited), rel=1e-9, abs=1e-9)
    assert sorted(station.waits) == pytest.approx(sorted(w for w, (_, ok) in zip(waited, out, strict=True) if ok))
