"""A session-booked resource: sessions a week with slots each, shared with the hospital's other patients.

Why. A myelography list or a theatre list is not a server waiting for whoever comes: it runs on fixed sessions,
and most of its slots go to other patient groups. The wait for a slot is then the waiting list itself, and it
grows with demand and shrinks with sessions, which a fixed booking delay in front of a rarely busy server cannot
show. Here every request joins one first-come-first-served list; at each session the `slots_per_session` oldest
requests made at least `notice_days` before it are served.

The hospital's other patients are a Poisson stream of `background_requests_per_week` (growing from day 0 with
the catchment's demand growth, without its seasonality), drawn from their own random stream: the same seed gives the
same other patients whatever the CSF patients do and however many sessions there are. More sessions serve that
demand sooner; they do not create it. The other patients never leave the list; a CSF patient whose leak closes on
its own does. The list is run for `BURN_IN_DAYS` of other patients before day 0, so that day 0 finds the list of an
ordinary working year rather than an empty one.

A prompt review of a procedure-related leak on a session-booked clinic is an urgent request: the next session's
first free slots, without notice, ahead of the routine list.

Sessions are evenly spaced in the week (the first half a spacing after the week starts) and none is held in the
resource's `closed_periods`. The patient's own `service_days` runs from her session (recovery, reporting): it does
not hold a slot of a later session.

`SessionBook` keeps the monitor `station.Station` keeps for the resources table (counts, waits, time-integrals of
CSF patients waiting and in service) and the list's own figures: slots offered and used, the other patients
served, and the time-integral of the whole list.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import simpy
from simpy.events import PENDING

from sim.config.parameters import ResourceSpec
from sim.engines.events import Delay
from sim.engines.schedule import DAYS_PER_YEAR, next_open
from sim.engines.station import GRANTED, Monitor, leave_after

DAYS_PER_WEEK = 7.0
BURN_IN_DAYS = 365.0


def session_days(spec: ResourceSpec, start_day: float, end_day: float) -> np.ndarray:
    """The days in [start_day, end_day) on which the resource holds a session."""
    spacing = DAYS_PER_WEEK / spec.sessions_per_week
    first = (np.floor(start_day / DAYS_PER_WEEK) * DAYS_PER_WEEK) + spacing / 2
    days = first + spacing * np.arange(int(np.ceil((end_day - first) / spacing)) + 1)
    days = days[(days >= start_day) & (days < end_day)]
    if spec.closed_periods:
        days = np.array([d for d in days.tolist() if next_open(d, spec) == d])
    return days


def background_rate_per_day(spec: ResourceSpec) -> float:
    """Requests a day from the hospital's other patients."""
    return spec.background_requests_per_week / DAYS_PER_WEEK


def background_requests(spec: ResourceSpec, horizon_days: float, rng: np.random.Generator,
                        growth_per_year: float = 0.0) -> np.ndarray:
    """Request days of the other patients in [-BURN_IN_DAYS, horizon_days): a Poisson stream at the day-0 rate
    before day 0 (the ordinary year the list starts from), then growing with the catchment's demand
    (`growth_per_year`). Drawn as unit exponentials mapped through the inverse of the cumulative rate, so that a
    scenario with more background demand sees the same requests, closer together (common random numbers across a
    sweep)."""
    rate = background_rate_per_day(spec)
    if rate <= 0.0:
        return np.zeros(0)
    before = rate * BURN_IN_DAYS  # expected requests before day 0
    if growth_per_year <= -1.0:  # demand gone from day 0 on
        g, after = -math.inf, 0.0
    else:
        g = math.log1p(growth_per_year) / DAYS_PER_YEAR  # growth per day on the log scale
        after = rate * horizon_days if g == 0.0 else rate / g * math.expm1(g * horizon_days)
    expected = before + after
    n = int(expected + 10.0 * math.sqrt(expected) + 20.0)
    total = np.cumsum(rng.standard_exponential(n))
    while total[-1] < expected:  # pragma: no cover - the draw above covers the span but for ~1e-20 of runs
        total = np.concatenate([total, total[-1] + np.cumsum(rng.standard_exponential(n))])
    total = total[total < expected]
    days = total / rate - BURN_IN_DAYS
    later = total > before
    if later.any() and g != 0.0:
        days[later] = np.log1p((total[later] - before) * g / rate) / g
    return days


class SessionBook(Monitor):
    """The waiting list and sessions of one session-booked resource at one center during one replication."""

    def __init__(self, env: simpy.Environment, spec: ResourceSpec, background_days: np.ndarray,
                 horizon_days: float) -> None:
        super().__init__(env)
        self.slots = spec.slots_per_session
        self.notice = spec.notice_days
        self.sessions_per_week = spec.sessions_per_week
        self.capacity = spec.slots_per_session
        self.horizon = horizon_days
        self.queue: deque[tuple[float, simpy.Event]] = deque()  # (request day, ticket) of CSF patients
        self.urgent: deque[simpy.Event] = deque()  # tickets served first, without notice
        self.background = background_days
        self.background_list: list[float] = background_days.tolist()  # items of a list are cheaper to read
        self.background_served_day = np.full(len(background_days), np.inf)
        self.next_background = 0  # the list is first come, first served: the served ones are a prefix
        self.slots_offered = 0  # sessions in [0, horizon) x slots
        self.slots_used_background = 0
        days = session_days(spec, -BURN_IN_DAYS, horizon_days)
        for day in days[days < 0.0].tolist():  # the year before day 0: the other patients only
            self._hold_session(day)
        self.sessions = days[days >= 0.0].tolist()

    def process(self):
        """The SimPy process that holds the sessions from day 0 to the horizon."""
        env = self.env
        for day in self.sessions:
            yield Delay(env, day - env._now)
            self.slots_offered += self.slots
            self._hold_session(day)

    def _hold_session(self, day: float) -> None:
        """Serve the oldest requests made at least `notice` days before `day`, up to the session's slots."""
        cutoff = day - self.notice
        queue, background = self.queue, self.background_list
        b = self.next_background
        free = self.slots
        counted = day >= 0.0
        urgent = self.urgent
        while free and urgent:
            ticket = urgent.popleft()
            if ticket._value is PENDING:
                ticket.succeed(GRANTED)
                free -= 1
        while free:
            while queue and queue[0][1]._value is not PENDING:  # left the list: her leak closed
                queue.popleft()
            t_csf = queue[0][0] if queue and queue[0][0] <= cutoff else np.inf
            t_other = background[b] if b < len(background) and background[b] <= cutoff else np.inf
            if t_csf == np.inf and t_other == np.inf:
                break
            free -= 1
            if t_csf <= t_other:
                queue.popleft()[1].succeed(GRANTED)
            else:
                self.background_served_day[b] = day
                b += 1
                if counted:
                    self.slots_used_background += 1
        self.next_background = b

    # ------------------------------------------------------------------ the patient's side (advance, called, start)
    def request(self, now: float, leak_closes_day: float, urgent: bool = False) -> simpy.Event:
        """A patient joins the list at day `now`: a ticket whose value is GRANTED at her session, or LEFT on the
        day her leak closes if that comes first. An `urgent` request takes the next session's first free slot,
        without notice, ahead of the routine list."""
        self.advance(now)
        self.n_arrived += 1
        self.n_waiting += 1
        ticket = simpy.Event(self.env)
        if urgent:
            self.urgent.append(ticket)
        else:
            self.queue.append((now, ticket))
        if leak_closes_day != np.inf:
            leave_after(self.env, ticket, leak_closes_day - now)
        return ticket

    def give_back(self) -> None:
        """She was called on the day her leak closed: the slot goes unused and she counts as having left."""
        self.n_abandoned += 1

    def finish(self, now: float) -> None:
        """Her service ends at `now`."""
        self.advance(now)
        self.n_busy -= 1

    # ------------------------------------------------------------------------------------------ the list's figures
    def utilization(self, horizon_days: float) -> float:
        """Share of the slots offered in [0, horizon) that were used, by CSF patients and the others."""
        used = self.n_served + self.slots_used_background
        return used / self.slots_offered if self.slots_offered else float("nan")

    def area_list(self, horizon_days: float) -> float:
        """Time-integral over [0, horizon) of the whole list (CSF patients and the others)."""
        start = np.maximum(self.background, 0.0)
        end = np.minimum(self.background_served_day, horizon_days)
        return self.area_waiting + float(np.clip(end - start, 0.0, None).sum())
