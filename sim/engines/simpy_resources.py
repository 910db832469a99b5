"""The SimPy engine's resource protocol: a center's stations and duration draws, and how a patient books, queues for
and uses a resource while her leak may close on its own.

`ResourceUse` is the part of `simpy_engine.Pathway` that moves time for one patient: waits that end early when the
leak closes, and the booking, queue, opening hours and service of one use. It is a base class of `Pathway` (same
object, no cost in the hot path), kept here so that the pathway's phases read as the clinical story.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from functools import partial
from typing import Any

import numpy as np
import simpy

from sim.config.parameters import RESOURCES, Center
from sim.engines.events import Delay
from sim.engines.lazy_days import LazyDays
from sim.engines.schedule import next_open
from sim.engines.session_book import SessionBook, background_requests
from sim.engines.station import Station
from sim.model import clinical as cl
from sim.model import rules
from sim.model.population import Cohort
from sim.model.randomness import SLOTS, stream
from sim.model.records import Records

N_RESOURCES = len(RESOURCES)
S_SERVICE, S_BOOKING = SLOTS["service"], SLOTS["booking"]


class CenterState:
    """A center during one replication: its resources and its duration draws, transformed for this center."""

    def __init__(self, env: simpy.Environment, index: int, center: Center, cohort: Cohort,
                 refer_index: int, delays: rules.Delays, horizon_days: float, root_seed: int,
                 replication: int, growth_per_year: float) -> None:
        self.index = index
        self.name = center.name
        self.profile = center.profile
        self.refer_index = refer_index
        self.specs = [center.resources[r] for r in RESOURCES]
        # A session-booked resource's list (None: servers after a booking delay); its monitor is the list's.
        self.books: list[SessionBook | None] = [
            SessionBook(env, spec, background_requests(
                spec, horizon_days, stream(root_seed, replication, "background", index * N_RESOURCES + r),
                growth_per_year),
                horizon_days) if spec.session_booked else None
            for r, spec in enumerate(self.specs)]
        self.stations = [Station(env, spec.capacity) for spec in self.specs]
        self.monitors: list[Station | SessionBook] = [
            book if book is not None else station for book, station in zip(self.books, self.stations, strict=True)]
        self.scheduled = [spec.scheduled for spec in self.specs]
        u = cohort.uniforms
        # Days transformed from the cohort's uniforms a slot column at a time, when first needed (`LazyDays`).
        self.service = [LazyDays(u[f"service:{r}"], partial(table, index))
                        for r, table in enumerate(delays.service_by_center)]
        self.booking = [LazyDays(u[f"booking:{r}"], partial(table, index))
                        for r, table in enumerate(delays.booking_by_center)]
        self.referral_delay = LazyDays(u["referral"], partial(delays.referral, index))
        self.spontaneous_seen: deque[float] = deque()  # days spontaneous leaks were diagnosed here or referred in


class PatientState:
    """Mutable per-patient state that the sub-processes share."""

    __slots__ = ("center", "consultations_before", "hist", "k", "symptomatic_since", "t_nat", "uses")

    def __init__(self, k: int, center: CenterState, hist: cl.History, t_nat: float, onset: float) -> None:
        self.k = k
        self.center = center
        self.hist = hist
        self.t_nat = t_nat
        self.symptomatic_since = onset
        self.uses = [0] * N_RESOURCES
        self.consultations_before = 0  # consultations before the current center (a second opinion restarts them)


class PathwayDays:
    """The center-independent durations of one replication, from its uniforms (`rules.Delays` says which
    distribution each is drawn from), transformed a slot column at a time when first needed (`LazyDays`)."""

    def __init__(self, cohort: Cohort, delays: rules.Delays) -> None:
        u = cohort.uniforms
        self.misdiagnosis_return = LazyDays(u["misdiagnosis_return"], delays.misdiagnosis_return.ppf)
        self.recurrence = LazyDays(u["recurrence_delay"], delays.recurrence.ppf)
        self.transient_relief = LazyDays(u["relief_days"], delays.transient_relief.ppf)
        self.rih_onset = LazyDays(u["rih_onset"], delays.rih_onset.ppf)
        self.rih_treated = LazyDays(u["rih_duration"], partial(delays.rih_duration, 1))
        self.rih_untreated = LazyDays(u["rih_duration"], partial(delays.rih_duration, 0))
        group = rules.conservative_group(cohort.etiology.astype(np.int64), cohort.severe.astype(np.int64))
        by_group = [(group == g, g) for g in np.unique(group).tolist()]

        def conservative_days(column: np.ndarray) -> np.ndarray:
            days = np.empty_like(column)
            for mask, g in by_group:
                days[mask] = delays.conservative(g, column[mask])
            return days

        self.conservative = LazyDays(u["conservative"], conservative_days)
        # First consultation of a procedure-related leak: prompt review instead of the clinic's booking delay,
        # read from the same uniform as that booking (common random numbers). None: the clinic's booking.
        review = delays.prompt_review
        self.prompt_review = review.ppf(u["booking:0"][:, 0]) if review is not None else None
        # A procedure-related leak's blood patch, booked by the procedural team: from the procedure room's booking
        # uniforms (the same slot that booking would read). None: the room's booking delay.
        recovery = delays.residual_recovery
        self.residual_recovery = None if recovery is None else LazyDays(u["residual_recovery"], recovery.ppf)
        patch = delays.procedural_patch
        self.procedural_patch = None if patch is None else LazyDays(
            u[f"booking:{RESOURCES.index('procedure_room')}"], patch.ppf)


class ResourceUse:
    """Waiting and resource use for one patient at a time (a base of `Pathway`, which sets these attributes)."""

    env: simpy.Environment
    records: Records
    events: list[tuple[int, float, str, str, str]] | None
    uses: list[tuple[int, str, str, float, float, float]] | None

    def log(self, k: int, activity: str, center: str, resource: str = "") -> None:
        self.events.append((k, self.env._now, activity, center, resource))  # type: ignore[union-attr]

    # ------------------------------------------------------------------------------------------- helpers
    # Waiting is written as "get the event, yield it if there is one" rather than as sub-generators: a generator
    # per wait, and a frame more on every resume, were a measurable share of the engine's time.
    def _wait(self, st: PatientState, delay: float) -> tuple[Delay | None, bool]:
        """What to yield to wait `delay` days (None: nothing to wait), and whether the leak is still open at its
        end. If the leak closes on its own first, the wait ends the day it closes (see `_closure`)."""
        if self.env._now + delay >= st.t_nat:
            return self._closure(st), False
        return (Delay(self.env, delay) if delay > 0.0 else None), True

    def _closure(self, st: PatientState) -> Delay | None:
        """What to yield to reach the day the leak closes on its own. If that day fell during a visit already
        under way, the closure is dated to the end of the visit (now: nothing to yield), so that recorded times
        stay ordered."""
        env = self.env
        if st.t_nat > env._now:
            return Delay(env, st.t_nat - env._now)
        st.t_nat = env._now
        return None

    def _use(self, st: PatientState, r: int, activity: str, booking: float | None = None,
             start: float | None = None) -> Generator[Any, Any, bool]:
        """Book, queue for and use resource `r` at the patient's current center. False if the leak closed
        on its own before the patient was seen (the booking or queue place is then given up). `booking`
        replaces the resource's booking delay (prompt review of a procedure-related leak). `start` is a later
        day the booking begins (presentation): the wait to it and the booking then take one timeout, not two,
        ending at the same float day."""
        # Hot path: attributes bound to locals.
        env = self.env
        center = st.center
        k = st.k
        uses = st.uses
        j = uses[r]
        uses[r] = j + 1
        t_nat = st.t_nat
        book = center.books[r]
        if book is not None:  # a booking given (prompt review, the procedural team's patch): urgent on the list
            return (yield from self._use_session(st, r, activity, book, start, j, booking is not None))
        if booking is None:
            booking = center.booking[r].item(k, j % S_BOOKING)
        if start is None:
            if env._now + booking >= t_nat:
                closure = self._closure(st)
                if closure is not None:
                    yield closure
                return False
            if booking > 0.0:
                yield Delay(env, booking)
        else:
            booked = start + booking
            if booked >= t_nat:
                yield Delay(env, start - env._now)
                closure = self._closure(st)
                if closure is not None:
                    yield closure
                return False
            yield Delay(env, booked - env._now)
        mon = center.stations[r]
        t_request = env._now
        ticket = mon.arrive(t_request, t_nat - t_request)
        now = t_request
        if ticket is not None:  # every server is taken: wait in line (until the leak closes, if it would)
            granted = yield ticket
            now = env._now
            if not mon.called(now, granted):
                return False
        if center.scheduled[r] and now < t_nat:  # hold the server until the resource opens (still waiting)
            t_open = next_open(now, center.specs[r])
            if t_open > now:
                mon.n_waiting += 1
                yield Delay(env, min(t_open, t_nat) - now)
                now = env._now
                mon.advance(now)
                mon.n_waiting -= 1
        if now >= t_nat:  # granted (or opened) at or after the day the leak closed: give the slot back
            mon.give_back()
            return False
        wait = now - t_request
        mon.start(wait)
        self.records.waiting_days[k] += wait
        service = center.service[r].item(k, j % S_SERVICE)
        if self.events is not None:
            self.log(k, activity, center.name, RESOURCES[r])
            self.uses.append((k, center.name, RESOURCES[r], t_request, now, now + service))  # type: ignore[union-attr]
        yield Delay(env, service)
        mon.finish(env._now)
        return True

    def _use_session(self, st: PatientState, r: int, activity: str, book: SessionBook, start: float | None,
                     j: int, urgent: bool) -> Generator[Any, Any, bool]:
        """`_use` of a session-booked resource: join its list (from `start`, if later; `urgent`: ahead of the
        routine list), wait for a session until the leak closes, then the patient's own service time."""
        env = self.env
        t_nat = st.t_nat
        if start is not None and start > env._now:
            yield Delay(env, start - env._now)
        if env._now >= t_nat:  # the leak closed before she could join the list
            closure = self._closure(st)
            if closure is not None:
                yield closure
            return False
        t_request = env._now
        granted = yield book.request(t_request, t_nat, urgent)
        now = env._now
        if not book.called(now, granted):
            return False
        if now >= t_nat:  # called on the day her leak closed
            book.give_back()
            return False
        wait = now - t_request
        book.start(wait)
        k = st.k
        self.records.waiting_days[k] += wait
        center = st.center
        service = center.service[r].item(k, j % S_SERVICE)
        if self.events is not None:
            self.log(k, activity, center.name, RESOURCES[r])
            self.uses.append((k, center.name, RESOURCES[r], t_request, now, now + service))  # type: ignore[union-attr]
        yield Delay(env, service)
        book.finish(env._now)
        return True
