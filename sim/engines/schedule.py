"""Resource opening hours: when can a service start? (weekly sessions, annual closures)."""

from __future__ import annotations

import math

from sim.config.parameters import ResourceSpec

DAYS_PER_YEAR = 365.25


def next_open(day: float, spec: ResourceSpec) -> float:
    """The earliest day >= `day` at which the resource is open: inside one of its `open_windows` (repeating every
    `schedule_cycle_days`) and outside its `closed_periods` (days of the year, every year)."""
    t = day
    for _ in range(10_000):  # windows are validated to leave open time, so this settles in a few steps
        moved = False
        if spec.closed_periods:
            year_start = math.floor(t / DAYS_PER_YEAR) * DAYS_PER_YEAR
            doy = t - year_start
            for a, b in spec.closed_periods:
                if a <= doy < b:
                    t = year_start + b
                    moved = True
                    break
        if spec.open_windows and not moved:
            cycle = spec.schedule_cycle_days
            cycle_start = math.floor(t / cycle) * cycle
            pos = t - cycle_start
            if not any(a <= pos < b for a, b in spec.open_windows):
                later = [a for a, _ in spec.open_windows if a > pos]
                t = cycle_start + later[0] if later else cycle_start + cycle + spec.open_windows[0][0]
                moved = True
        if not moved:
            return t
    raise RuntimeError("resource schedule never opens")  # pragma: no cover - prevented by validation
