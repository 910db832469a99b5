"""A station: `capacity` identical servers in front of one FIFO queue, with its monitor, built on SimPy events.

Why not `simpy.Resource`. It costs two SimPy events per use even when nobody waits (the request is scheduled and
processed before the patient goes on, and so is the release), and a patient who may leave the queue needs a third
and a fourth (`request | timeout` builds a condition event). In this model most requests find a free server. Here
a request granted at once costs no event at all, a release hands the server straight to the next patient in line
(one event: hers), and leaving the queue when the leak closes costs the timer and the wake-up. Same discipline
(first come, first served; a server freed goes to the longest-waiting patient), so the same patients are served in
the same order: the back-tests in tests/test_backtest.py hold it to the results of `simpy.Resource`.

The monitor keeps exact time-integrals of the number waiting and of busy servers (utilization and Little's law),
and every completed wait. A patient held on a server until a scheduled resource opens still counts as waiting.
"""

from __future__ import annotations

from collections import deque

import simpy
from simpy.events import PENDING, Timeout

GRANTED = True
LEFT = False  # the value of a ticket whose holder left the queue (her leak closed first)


class Station:
    """Servers, queue and monitor of one resource at one center during one replication."""

    __slots__ = ("area_busy", "area_waiting", "capacity", "env", "free", "last_t", "n_abandoned", "n_arrived",
                 "n_busy", "n_served", "n_waiting", "queue", "waits")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.free = capacity  # servers neither serving nor held for a patient
        self.queue: deque[simpy.Event] = deque()  # tickets of waiting patients, oldest first
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

    def request(self, patience_days: float) -> simpy.Event | None:
        """Take a server: None when one is free now (no event), else a ticket to yield. The ticket's value is
        GRANTED when a server is handed over, LEFT if `patience_days` (finite) pass first; the patient is then out
        of the queue."""
        if self.free:
            self.free -= 1
            return None
        ticket = simpy.Event(self.env)
        self.queue.append(ticket)
        if patience_days != float("inf"):
            timer = Timeout(self.env, patience_days)
            timer.callbacks.append(lambda _timer: ticket._value is PENDING and ticket.succeed(LEFT))
        return ticket

    def release(self) -> None:
        """Free a server: hand it to the longest-waiting patient still in line, if any."""
        queue = self.queue
        while queue:
            ticket = queue.popleft()
            if ticket._value is PENDING:  # not already left
                ticket.succeed(GRANTED)
                return
        self.free += 1
