"""Session-booked resources against queueing theory, and as the planner uses them.

A list served by `c` slots a session, every `T` days, with Poisson requests at rate lambda and no notice, is the
bulk-service queue whose list just before a session follows the embedded chain
Y(n+1) = max(Y(n) - c, 0) + A(n), A(n) ~ Poisson(lambda T). Its stationary law gives the time-average list length
E[max(Y - c, 0)] + lambda T / 2 (the requests of an interval arrive uniformly within it), and Little's law the
mean wait L / lambda, the same for every patient group on a first-come-first-served list.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import simpy
from scipy import stats

from sim.config.distributions import parse_distribution
from sim.config.parameters import ResourceSpec
from sim.config.scenario import load_scenario
from sim.engines.session_book import BURN_IN_DAYS, SessionBook, background_requests, session_days
from sim.runs.replication import run_replication
from tests.helpers import PERIOD, SCENARIOS

CONGESTED = SCENARIOS / "examples" / "congested_myelography.toml"
MYELOGRAPHY = "centers.specialist.resources.myelography."


def spec(sessions: int, slots: int, background_per_week: float = 0.0, notice: float = 0.0,
         closed: tuple = ()) -> ResourceSpec:
    fixed = parse_distribution({"family": "fixed", "value": 0.1}, "t", "t")
    return ResourceSpec(1, fixed, fixed, closed_periods=closed, sessions_per_week=sessions, slots_per_session=slots,
                        background_requests_per_week=background_per_week, notice_days=notice)


def run_book(s: ResourceSpec, horizon: float, seed: int, csf_rate_per_day: float = 0.0,
             closes_after_days: float = np.inf) -> SessionBook:
    """A book with its background stream and, optionally, Poisson CSF requests that leave after a fixed time."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    book = SessionBook(env, s, background_requests(s, horizon, rng), horizon)
    env.process(book.process())

    def csf():
        while True:
            yield env.timeout(rng.exponential(1 / csf_rate_per_day))
            ticket = book.request(env.now, env.now + closes_after_days)
            env.process(patient(env.now, ticket))

    def patient(t0, ticket):
        granted = yield ticket
        if book.called(env.now, granted):
            book.start(env.now - t0)
            book.finish(env.now)

    if csf_rate_per_day:
        env.process(csf())
    env.run(until=horizon)
    book.advance(horizon)
    return book


def stationary_list_before_session(slots: int, arrivals_per_session: float, size: int = 400) -> np.ndarray:
    """The embedded chain's stationary law, by power iteration on a truncated state space."""
    pmf = stats.poisson.pmf(np.arange(size), arrivals_per_session)
    law = np.zeros(size)
    law[0] = 1.0
    for _ in range(5000):
        left = np.zeros(size)
        after = np.maximum(np.arange(size) - slots, 0)
        np.add.at(left, after, law)
        law = np.convolve(left, pmf)[:size]
        law /= law.sum()
    return law


def test_sessions_are_evenly_spaced_and_skip_closures():
    days = session_days(spec(2, 1), 0.0, 28.0)
    assert days.tolist() == [1.75, 5.25, 8.75, 12.25, 15.75, 19.25, 22.75, 26.25]
    closed = session_days(spec(7, 1, closed=((10.0, 20.0),)), 0.0, 30.0)
    assert len(closed) == 30 - 10 and not ((closed >= 10) & (closed < 20)).any()


def test_background_requests_are_poisson_and_shared_across_a_sweep():
    s = spec(2, 2, background_per_week=7.0)
    days = background_requests(s, 3650.0, np.random.default_rng(1))
    assert days.min() >= -BURN_IN_DAYS and days.max() < 3650.0
    n = len(days)
    expected = (3650.0 + BURN_IN_DAYS) * 1.0
    assert abs(n - expected) < 4 * np.sqrt(expected)
    assert stats.kstest(np.diff(days), "expon").pvalue > 0.001
    # the same stream at twice the demand: the same requests, twice as close together
    doubled = background_requests(dataclasses.replace(s, background_requests_per_week=14.0), 3650.0,
                                  np.random.default_rng(1))
    k = min(len(days), len(doubled)) // 2
    np.testing.assert_allclose(doubled[:k] + BURN_IN_DAYS, (days[:k] + BURN_IN_DAYS) / 2)


def test_growing_background_demand_follows_its_rate():
    s = spec(2, 2, background_per_week=7.0)
    days = background_requests(s, 3650.0, np.random.default_rng(2), growth_per_year=0.10)
    first, last = ((days >= 0) & (days < 365.25)).sum(), ((days >= 9 * 365.25) & (days < 3650)).sum()
    assert abs(last / first - 1.1 ** 9) < 0.25


def test_light_load_waits_the_notice_and_half_a_session_gap():
    s = spec(sessions=2, slots=50, notice=3.0)
    book = run_book(s, 20_000.0, seed=3, csf_rate_per_day=0.2)
    waits = np.asarray(book.waits)
    gap = 7.0 / 2
    # nobody is turned away, so a request waits the notice, then the rest of the session gap it lands in
    assert waits.min() >= 3.0 and waits.max() <= 3.0 + gap + 1e-9
    assert abs(waits.mean() - (3.0 + gap / 2)) < 4 * waits.std() / np.sqrt(len(waits))


@pytest.mark.parametrize(("sessions", "slots", "per_week"), [(1, 3, 2.4), (3, 1, 2.55)])
def test_list_length_and_wait_match_the_bulk_service_queue(sessions, slots, per_week):
    """rho = 0.8 and 0.85: the simulated list against the embedded Markov chain, and Little's law."""
    s = spec(sessions, slots, background_per_week=per_week - 0.3)
    book = run_book(s, 60_000.0, seed=4, csf_rate_per_day=0.3 / 7)
    gap = 7.0 / sessions
    lam = per_week / 7
    law = stationary_list_before_session(slots, lam * gap)
    theory = float((np.maximum(np.arange(len(law)) - slots, 0) * law).sum() + lam * gap / 2)
    simulated = book.area_list(60_000.0) / 60_000.0
    assert simulated == pytest.approx(theory, rel=0.08)
    # first come, first served: a CSF patient waits what everyone waits, L / lambda
    assert np.mean(book.waits) == pytest.approx(theory / lam, rel=0.12)
    assert book.utilization(60_000.0) == pytest.approx(per_week / (sessions * slots), rel=0.03)


def test_an_overloaded_list_grows_at_the_excess_of_demand():
    s = spec(sessions=1, slots=2, background_per_week=3.0)
    book = run_book(s, 3000.0, seed=5)
    on_list = len(book.background) - book.next_background
    excess_per_day = (3.0 - 2.0) / 7
    expected = excess_per_day * (3000.0 + BURN_IN_DAYS)
    assert abs(on_list - expected) < 4 * np.sqrt(3.0 / 7 * (3000 + BURN_IN_DAYS))
    assert book.utilization(3000.0) == 1.0


def test_a_patient_whose_leak_closes_leaves_the_list():
    s = spec(sessions=1, slots=1, background_per_week=0.5)
    book = run_book(s, 5000.0, seed=6, csf_rate_per_day=0.02, closes_after_days=5.0)
    assert book.n_abandoned > 10 and book.n_served > 10
    assert book.n_served + book.n_abandoned + book.n_waiting == book.n_arrived
    assert max(book.waits) <= 5.0


# ------------------------------------------------------------------------------------ the model, as planners use it
def _myelography_waits(overrides: dict, reps: int = 6) -> np.ndarray:
    s = load_scenario(CONGESTED, overrides={**PERIOD, "run.horizon_days": 1095, **overrides})
    waits = []
    for rep in range(reps):
        res = run_replication(s, 21, rep).resources
        waits.append(res.loc[res["resource"] == "myelography", "mean_wait_days"].iloc[0])
    return np.asarray(waits)


def _ci(values: np.ndarray) -> tuple[float, float]:
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def test_more_sessions_shorten_the_wait_with_separate_intervals():
    one, four = (_myelography_waits({MYELOGRAPHY + "sessions_per_week": n}) for n in (1, 4))
    assert _ci(four)[1] < _ci(one)[0]
    assert (four < one).all()  # common random numbers: every replication agrees


def test_growing_demand_lengthens_the_wait():
    flat = _myelography_waits({})
    growing = _myelography_waits({"population.demand.growth_per_year": 0.15})
    assert _ci(growing - flat)[0] > 0  # paired on common random numbers


def test_session_booked_rows_report_the_list_in_planner_units():
    s = load_scenario(CONGESTED, overrides={**PERIOD, "run.horizon_days": 730})
    res = run_replication(s, 21, 0).resources.set_index("resource")
    m = res.loc["myelography"]
    assert m["sessions_per_week"] == 1 and m["slots_per_session"] == 2 and m["capacity"] == 2
    assert m["slots_offered"] == 2 * len(session_days(s.centers[0].resources["myelography"], 0.0, 730.0))
    assert m["utilization"] == pytest.approx((m["n_served"] + m["background_slots_used"]) / m["slots_offered"])
    assert m["mean_list_length"] > m["mean_queue_length"] > 0  # the other patients are on the list too
    assert m["mean_wait_weeks"] == pytest.approx(m["mean_wait_days"] / 7)
    clinic = res.loc["clinic"]  # servers: no sessions, and the list is the queue
    assert clinic["sessions_per_week"] == 0 and clinic["mean_list_length"] == clinic["mean_queue_length"]


def test_the_fast_path_refuses_a_session_booked_resource():
    from sim.engines.choice import capacity_unlimited, unlimited_overrides

    s = load_scenario(CONGESTED)
    unlimited = load_scenario(CONGESTED, overrides=unlimited_overrides(s))
    assert not capacity_unlimited(unlimited, 10)


def test_background_before_day_zero_runs_at_the_day_zero_rate_whatever_the_growth():
    s = spec(2, 2, background_per_week=7.0)
    for growth in (-0.5, 0.0, 0.3):
        days = background_requests(s, 3650.0, np.random.default_rng(7), growth_per_year=growth)
        before = (days < 0).sum()
        assert abs(before - BURN_IN_DAYS) < 4 * np.sqrt(BURN_IN_DAYS), growth
    gone = background_requests(s, 3650.0, np.random.default_rng(7), growth_per_year=-1.0)
    assert len(gone) and gone.max() < 0.0  # demand that vanishes at day 0: only the year before


def test_prompt_reviews_on_a_session_booked_clinic_are_urgent_requests_on_its_list():
    clinic = "centers.specialist.resources.clinic."
    s = load_scenario(CONGESTED, overrides={**PERIOD, "run.horizon_days": 730, clinic + "sessions_per_week": 5,
                                            clinic + "slots_per_session": 4,
                                            clinic + "background_requests_per_week": 15.0})
    r = run_replication(s, 21, 0, log_events=True)
    row = r.resources.set_index("resource").loc["clinic"]
    uses = r.resource_uses[r.resource_uses["resource"] == "clinic"]
    assert row["n_served"] == len(uses)  # every consultation went through the list
    p = r.patients.set_index("patient_id")
    first = uses.sort_values("start_day").groupby("patient_id").first()
    iatrogenic = first[p.loc[first.index, "etiology"].ne("spontaneous").to_numpy()]
    spontaneous = first[p.loc[first.index, "etiology"].eq("spontaneous").to_numpy()]
    wait = lambda t: (t["start_day"] - t["request_day"]).mean()  # noqa: E731
    assert wait(iatrogenic) <= 7 / 5 + 1e-9 < wait(spontaneous)  # the next session, ahead of the notice


def test_too_many_other_patients_are_refused_before_the_run():
    from sim.errors import ScenarioError

    with pytest.raises(ScenarioError) as info:
        load_scenario(CONGESTED, overrides={"run.horizon_days": 73_000,
                                            MYELOGRAPHY + "background_requests_per_week": 9_999.0})
    assert info.value.field == MYELOGRAPHY + "background_requests_per_week"
