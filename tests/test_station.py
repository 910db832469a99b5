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


def simulate_queue(lean: bool, capacity: int, customers: list[tuple[float, float, float]],
                   give_back: bool) -> list[tuple[float, bool]]:
    """Customers (gap before arrival, service, patience) through `Station` (lean) or `simpy.Resource` with
    reneging; each customer's (day she started or left, served?). `give_back`: the pathway's rule, a server granted
    at or after the end of her patience is handed back at once."""
    env = simpy.Environment()
    station = Station(env, capacity)
    resource = simpy.Resource(env, capacity)
    out: list[tuple[float, bool]] = [(math.nan, False)] * len(customers)

    def customer(i: int, service: float, patience: float):
        t0 = env.now
        if lean:
            ticket = station.request(patience)
            granted = (GRANTED if ticket is None else (yield ticket)) is GRANTED
            if granted and give_back and env.now >= t0 + patience:
                station.release()
                granted = False
            out[i] = (env.now, granted)
            if granted:
                yield env.timeout(service)
                station.release()
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
