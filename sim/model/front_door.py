"""The front door: first contact before any center (primary care, the emergency department, general neurology).

Why. The comparison between centers is only fair if patients reach each center the same way: in practice a patient
with a spontaneous leak sees her GP about three times before a referral (Cheema 2022), whichever hospital then
sees her. So the front door is one layer shared by every scenario, drawn with the cohort on its own random stream,
and the center's own recognition acts from her first consultation there.

A patient first consults on her first-contact day (onset + care seeking). Each visit refers her on with
`referral_probability_per_visit` of her etiology; one that does not is followed by another after `return_days`, up
to `max_visits`. After the last one she seeks a specialist herself (self-referral, a second opinion) with
`self_referral_probability`, one return interval later; otherwise she gives up on care and stays symptomatic
unless her leak closes. Procedure-related leaks go back to the team that did the procedure (probability 1), so
their presentation day is their first-contact day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config.parameters import Population
from sim.config.schema import MAX_FRONT_DOOR_VISITS

VISIT_SLOTS = MAX_FRONT_DOOR_VISITS  # uniforms per patient: fixed, so a change of max_visits keeps every draw


@dataclass(frozen=True, slots=True)
class FrontDoorPath:
    """Per patient: the day she first consults a center (inf: never), her front-door visits, and the day she
    gave up on care (inf: she did not)."""

    presented_day: np.ndarray
    visits: np.ndarray
    gave_up_day: np.ndarray


def through_front_door(first_contact_day: np.ndarray, etiology: str, population: Population,
                       u_refer: np.ndarray, u_return: np.ndarray, u_self: np.ndarray) -> FrontDoorPath:
    """The front-door path of patients of one etiology, from their uniforms ((n, VISIT_SLOTS), (n, VISIT_SLOTS),
    (n,))."""
    n = first_contact_day.size
    p_refer = population.front_door_referral_probability[etiology]
    if p_refer >= 1.0:  # referred at the first visit: nothing to add (exactly the first-contact day)
        return FrontDoorPath(first_contact_day, np.ones(n, dtype=np.int64), np.full(n, np.inf))
    m = population.front_door_max_visits
    referred = u_refer[:, :m] < p_refer
    any_referred = referred.any(axis=1)
    last = np.where(any_referred, referred.argmax(axis=1), m - 1)  # the visit that referred her, or the last one
    gaps = population.front_door_return_days.ppf(u_return[:, :m])
    elapsed = np.concatenate([np.zeros((n, 1)), np.cumsum(gaps, axis=1)], axis=1)  # visit i is at elapsed[:, i]
    rows = np.arange(n)
    at_last = first_contact_day + elapsed[rows, last]
    self_referred = ~any_referred & (u_self < population.front_door_self_referral_probability)
    presented = np.where(any_referred, at_last, np.where(self_referred, first_contact_day + elapsed[:, m], np.inf))
    gave_up = np.where(~any_referred & ~self_referred, at_last, np.inf)
    return FrontDoorPath(presented, np.where(any_referred, last + 1, m).astype(np.int64), gave_up)
