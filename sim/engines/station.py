"""A station: `capacity` identical servers in front of one FIFO queue, with its monitor, built on SimPy events.

Why not `simpy.Resource`. It costs two SimPy events per use even when nobody waits (the request is scheduled and
processed before the patient goes on, and so is the release), and a patient who may leave the queue needs a third
and a fourth (`request | timeout` builds a condition event). In this model most requests find a free server. Here
a request granted at once costs no event at all, a release hands the server straight to the next patient in line
(one event: hers), and leaving the queue when the leak closes costs the timer and the wake-up. Same discipline
(first come, first served; a server freed goes to the longest-waiting patient), so the same patients are served in
the same order: the back-tests in tests/engines/test_backtest.py hold it to the results of `simpy.Resource`.

The monitor keeps exact time-integrals of the number waiting and of busy servers (utilization and Little's law),
and every completed wait. A patient held on a server until a scheduled resource opens still counts as waiting.

One use, as `Pathway._use` makes it: `arrive` (None: a server is hers; else yield the ticket, then `called`),
then `start` and, at the end of the service, `finish`; or `give_back` if her leak closed before she was seen.
"""

from __future__ import annotations

from collections import deque

import simpy
from simpy.events import PENDING

from sim.engines.events import Delay

GRANTED = True
LEFT = False  # the value of a ticket whose holder left the queue (her leak closed first)
INF = float("inf")


class Monitor:
    """What the resources table reads of a resource during one replication, and the patient's side of a queue
    that both kinds of resource share: counts, every completed wait, and exact time-integrals of the number
    waiting and in service."""

    __slots__ = ("area_busy", "area_waiting", "env", "last_t", "n_abandoned", "n_arrived", "n_busy", "n_served",
                 "n_waiting", "waits")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.last_t = 0.0
        self.n_waiting = 0
        self.n_busy = 0
        self.area_waiting = 0.0
        self.area_busy = 0.0
        self.n_arrived = 0
        self.n_served = 0
        self.n_abandoned = 0
        self.waits: list[float] = []

    def advance(self, now: float) -> None:
        """Add the time since the last change to the queue-length and busy-server integrals."""
        dt = now - self.last_t
        if dt > 0.0:
            self.area_waiting += self.n_waiting * dt
            self.area_busy += self.n_busy * dt
            self.last_t = now

    def called(self, now: float, granted: bool) -> bool:
        """The ticket of a patient in line fired at `now`: she leaves the line, served (True) or gone (False)."""
        self.advance(now)
        self.n_waiting -= 1
        if granted is LEFT:
            self.n_abandoned += 1
            return False
        return True

    def start(self, wait_days: float) -> None:
        """Service begins for the patient, after `wait_days` in line (the monitor is current)."""
        self.n_busy += 1
        self.n_served += 1
        self.waits.append(wait_days)


def leave_after(env: simpy.Environment, ticket: simpy.Event, patience_days: float) -> None:
    """Fire `ticket` with LEFT after `patience_days` (the day her leak closes) unless it was served first."""
    def leave(_timer: simpy.Event) -> None:
        if ticket._value is PENDING:  # not already served
            ticket.succeed(LEFT)

    Delay(env, patience_days).callbacks.append(leave)


class Station(Monitor):
    """Servers, queue and monitor of one resource at one center during one replication."""

    __slots__ = ("capacity", "free", "queue")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        super().__init__(env)
        self.capacity = capacity
        self.free = capacity  # servers neither serving nor held for a patient
        self.queue: deque[simpy.Event] = deque()  # tickets of waiting patients, oldest first

    def arrive(self, now: float, patience_days: float) -> simpy.Event | None:
        """A patient asks for a server at day `now`. None when one is free (no event); else she joins the line
        and gets a ticket to yield, whose value is GRANTED when a server is handed over, or LEFT if
        `patience_days` (finite) pass first."""
        self.advance(now)
        self.n_arrived += 1
        if self.free:
            self.free -= 1
            return None
        self.n_waiting += 1
        ticket = simpy.Event(self.env)
        self.queue.append(ticket)
        if patience_days != INF:
            leave_after(self.env, ticket, patience_days)
        return ticket

    def give_back(self) -> None:
        """The patient holds a server she will not use (her leak closed first): count her as abandoned."""
        self.n_abandoned += 1
        self.release()

    def finish(self, now: float) -> None:
        """Service ends at `now`: the server goes to the next patient in line, or becomes free."""
        self.advance(now)
        self.n_busy -= 1
        self.release()

    def utilization(self, horizon_days: float) -> float:
        """Busy server-days over the server-days of [0, horizon)."""
        return self.area_busy / (self.capacity * horizon_days)

    def release(self) -> None:
        """Free a server: hand it to the longest-waiting patient still in line, if any."""
        queue = self.queue
        while queue:
            ticket = queue.popleft()
            if ticket._value is PENDING:  # not already left
                ticket.succeed(GRANTED)
                return
        self.free += 1
