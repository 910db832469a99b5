"""`Delay`: a SimPy timeout that schedules itself in one Python call instead of two.

Why. Creating a `simpy.Timeout` runs its `__init__` and then `Environment.schedule`; in the patient process that
pair was about a tenth of the engine's time. `Delay` is a `Timeout` (same class for SimPy, same priority, same
event id sequence, so events are processed in exactly the same order) whose constructor pushes it onto the
environment's event queue itself. It relies on two documented-in-code internals of SimPy 4 (`Environment._queue`,
`Environment._eid`); tests/unit/test_events.py checks it against `simpy.Timeout` so an upgrade that changes them fails
loudly instead of silently.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL, Timeout


class Delay(Timeout):
    """Wait `delay` days (>= 0): `yield Delay(env, delay)`; the same event as `simpy.Timeout(env, delay)`."""

    def __init__(self, env: simpy.Environment, delay: float, value: Any = None) -> None:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        self.env = env
        self.callbacks = []
        self._value = value
        self._delay = delay
        self._ok = True
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))
