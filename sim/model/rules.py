"""The pathway's rules outside the treatment ladder, written once for both engines.

Diagnosis at a consultation and on a brain MRI, giving up after repeated misdiagnosis, rebound intracranial
hypertension (RIH) and recurrence after a success, and which distribution each delay is drawn from. The ladder
itself (which step next, how likely it works) is `sim.model.clinical`, tabulated by `sim.model.ladder`.

How one definition serves two engines. A rule is a function of uniforms, a center index and `CenterValues`, written
only with operations that mean the same on Python numbers and on numpy arrays: comparisons, `&`, `|`, `*` and
indexing a per-center sequence with the center. The SimPy engine calls it for one patient with the values as
tuples of Python floats (`PathwayRules.one`); the fast engine for many patients with the values as arrays
(`PathwayRules.many`). A clinical parameter's name appears here and in `sim.config`, never in an engine.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from sim.config.distributions import Distribution, DistributionTable
from sim.config.parameters import ETIOLOGIES, IATROGENIC, RESOURCES, Scenario, VolumeOutcome
from sim.model import clinical as cl

V = TypeVar("V")  # tuple[float, ...] for one patient, np.ndarray for many


@dataclass(frozen=True, slots=True)
class CenterValues(Generic[V]):
    """Per-center probabilities of the rules below, indexed by the center's position in the scenario."""

    recognize_iatrogenic: V  # a procedure-related leak is recognized at a consultation
    suspect_spontaneous: V  # a spontaneous leak is suspected at a consultation (a brain MRI follows)
    brain_mri_sign: V  # the brain MRI shows signs of low CSF pressure
    mri_read: V  # the signs are read as such
    diagnose_despite_normal_mri: V  # suspicion holds although the MRI was read as normal
    rih_recognized: V  # rebound hypertension is recognized for what it is (else taken for the leak)


def recognized_at_consultation(u: Any, iatrogenic: Any, center: Any, v: CenterValues) -> Any:
    """A procedure-related leak recognized at this consultation (its history points to it: no MRI needed)."""
    return iatrogenic & (u < v.recognize_iatrogenic[center])


def suspected_at_consultation(u: Any, spontaneous: Any, center: Any, experience: Any, v: CenterValues) -> Any:
    """A spontaneous leak suspected at this consultation, so that a brain MRI is ordered. `experience` multiplies
    the probability (1 unless the center's volume feeds its performance)."""
    return spontaneous & (u < v.suspect_spontaneous[center] * experience)


def diagnosed_by_brain_mri(u_sign: Any, u_read: Any, u_despite: Any, center: Any, experience: Any,
                           v: CenterValues) -> Any:
    """The brain MRI leads to the diagnosis: signs present and read as such, or suspicion held despite it."""
    return (((u_sign < v.brain_mri_sign[center]) & (u_read < v.mri_read[center] * experience))
            | (u_despite < v.diagnose_despite_normal_mri[center]))


def gives_up(consultations: Any, max_consultations: int) -> Any:
    """After this many consultations at one center without a diagnosis, the center gives up on the diagnosis."""
    return consultations >= max_consultations


def seeks_second_opinion(u: Any, refers_somewhere: Any, probability: float) -> Any:
    """When a center gives up on the diagnosis: the patient is referred to its `refers_to` center for a second
    opinion (where the consultations count afresh), or stops seeking care (symptoms persist, undiagnosed)."""
    return refers_somewhere & (u < probability)


def experience(seen_days: deque[float], now: float, volume: VolumeOutcome) -> float:
    """A center's experience multiplier from its trailing annual volume of spontaneous leaks (`seen_days`: the
    days they were diagnosed there or referred in, oldest first; days older than the window are dropped)."""
    while seen_days and seen_days[0] < now - volume.window_days:
        seen_days.popleft()
    span = min(volume.window_days, max(now, 30.0))
    return volume.multiplier(len(seen_days) * 365.25 / span)


# Treatment steps whose success scales with the center's experience when volume feeds performance.
EXPERIENCE_SCALES_SUCCESS: frozenset[str] = frozenset({cl.LEAK_SURGERY})


def conservative_group(etiology: Any, severe: Any) -> Any:
    """Row of `Delays.conservative` for a patient: her etiology, and whether her headache is severe (a severe
    procedure-related headache gets a shorter window before the first patch)."""
    return etiology * 2 + severe


def booked_by_procedural_team(is_ebp: Any, iatrogenic: Any) -> Any:
    """A blood patch for a procedure-related leak is booked by the team that did the procedure
    (`Delays.procedural_patch`), not through the procedure room's booking delay."""
    return is_ebp & iatrogenic


def rih_recognized(u: Any, center: Any, v: CenterValues) -> Any:
    """Rebound hypertension recognized (acetazolamide) rather than misread as the leak (a needless blood patch)."""
    return u < v.rih_recognized[center]


def rih_days_within(start_day: Any, duration_days: Any, horizon_days: float) -> Any:
    """Days of RIH that fall before the horizon."""
    return np.maximum(0.0, np.minimum(duration_days, horizon_days - start_day))


def rih_occurs(u: Any, p_rih: Any) -> Any:
    """RIH after a successful seal, with the probability `clinical.rih_probability` gives for that step."""
    return u < p_rih


def recurs(u: Any, p_recurrence: Any) -> Any:
    """Symptoms return after a success, with the probability `clinical.recurrence_probability` gives."""
    return u < p_recurrence


def relieved_for_a_while(u: Any, p_transient_relief: Any) -> Any:
    """A blind patch that did not seal relieves the symptoms for a while (`clinical.transient_relief_probability`)."""
    return u < p_transient_relief


def residual_probability(days_to_seal: Any, at_90_days: float, odds_ratio_per_doubling: float) -> Any:
    """Residual symptoms after a treatment sealed a spontaneous leak `days_to_seal` days after onset: logistic in
    log2 of the delay (`clinical.residual_symptoms`). The engines ask it for spontaneous leaks only."""
    if at_90_days <= 0.0 or at_90_days >= 1.0:
        return days_to_seal * 0.0 + at_90_days
    logit = math.log(at_90_days / (1.0 - at_90_days)) + math.log(odds_ratio_per_doubling) * np.log2(
        np.maximum(days_to_seal, 1e-3) / 90.0)
    return 1.0 / (1.0 + np.exp(-logit))


def residual_days_within(seal_day: Any, recovery_days: Any, stop_day: Any) -> Any:
    """Days with residual symptoms from the seal to recovery, cut at `stop_day` (a recurrence or the horizon)."""
    return np.maximum(0.0, np.minimum(recovery_days, stop_day - seal_day))


@dataclass(frozen=True, slots=True)
class Delays:
    """Which distribution each delay of the pathway is drawn from. Tables are by group: (center, resource) as
    center * len(RESOURCES) + resource, or center, or etiology, or RIH recognized (1) / not (0)."""

    booking: DistributionTable  # by (center, resource)
    service: DistributionTable  # by (center, resource)
    booking_by_center: tuple[DistributionTable, ...]  # one per resource, by center
    service_by_center: tuple[DistributionTable, ...]  # one per resource, by center
    referral: DistributionTable  # by center: the referring center's delay
    conservative: DistributionTable  # by `conservative_group`: the conservative window before the ladder
    rih_duration: DistributionTable  # by recognized: untreated (0), treated (1)
    misdiagnosis_return: Distribution  # from a missed diagnosis to the next consultation
    recurrence: Distribution  # from a success to the return of symptoms
    transient_relief: Distribution  # from a blind patch that did not seal to the end of the relief it gave
    rih_onset: Distribution  # from a success to RIH
    prompt_review: Distribution | None  # first consultation of a procedure-related leak (None: the clinic's booking)
    procedural_patch: Distribution | None  # booking of a procedure-related leak's blood patch (None: the room's)
    residual_recovery: Distribution | None  # from a seal to the end of residual symptoms (None: none)


class PathwayRules:
    """A scenario's rules compiled for the engines: center values for one patient and for many, delays, and the
    population's limits. Built once per scenario (`pathway_rules`)."""

    def __init__(self, scenario: Scenario) -> None:
        profiles = [c.profile for c in scenario.centers]
        values = {
            "recognize_iatrogenic": [p.recognition_probability_iatrogenic for p in profiles],
            "suspect_spontaneous": [p.recognition_probability_spontaneous for p in profiles],
            "brain_mri_sign": [p.brain_mri_sign_probability for p in profiles],
            "mri_read": [p.mri_reading_sensitivity for p in profiles],
            "diagnose_despite_normal_mri": [p.diagnose_despite_normal_mri_probability for p in profiles],
            "rih_recognized": [p.rih_recognition_probability for p in profiles],
        }
        self.one: CenterValues[tuple[float, ...]] = CenterValues(**{k: tuple(v) for k, v in values.items()})
        self.many: CenterValues[np.ndarray] = CenterValues(**{k: np.array(v, dtype=np.float64)
                                                              for k, v in values.items()})
        cln, pop, centers = scenario.clinical, scenario.population, scenario.centers
        severe_days = cln.conservative_days_severe or cln.conservative_days
        self.delays = Delays(
            booking=DistributionTable([c.resources[r].booking_days for c in centers for r in RESOURCES]),
            service=DistributionTable([c.resources[r].service_days for c in centers for r in RESOURCES]),
            booking_by_center=tuple(DistributionTable([c.resources[r].booking_days for c in centers])
                                    for r in RESOURCES),
            service_by_center=tuple(DistributionTable([c.resources[r].service_days for c in centers])
                                    for r in RESOURCES),
            referral=DistributionTable([p.referral_delay_days for p in profiles]),
            conservative=DistributionTable([(severe_days if severe else cln.conservative_days)[e]
                                            for e in ETIOLOGIES for severe in (False, True)]),
            rih_duration=DistributionTable([cln.rih_duration_untreated_days, cln.rih_duration_treated_days]),
            misdiagnosis_return=pop.misdiagnosis_return_days,
            recurrence=cln.recurrence_days,
            transient_relief=cln.transient_relief_days,
            rih_onset=cln.rih_onset_days,
            prompt_review=pop.iatrogenic_review_days,
            procedural_patch=cln.procedural_patch_booking_days,
            residual_recovery=cln.residual_recovery_days,
        )
        self.max_consultations = pop.max_consultations
        self.second_opinion_probability = pop.second_opinion_probability
        self.residual_at_90_days = cln.residual_probability_at_90_days
        self.residual_odds_ratio = cln.residual_odds_ratio_per_doubling
        # The hospital's other patients on a session-booked list grow with the catchment's demand.
        self.background_growth_per_year = pop.growth_per_year
        self.iatrogenic_by_etiology = np.array([e in IATROGENIC for e in ETIOLOGIES])
        # Whether a center's recent volume feeds its performance, which links its patients to one another.
        self.volume = scenario.volume_outcome
        self.volume_feedback = scenario.volume_outcome.enabled


_RULES: dict[int, tuple[Scenario, PathwayRules]] = {}


def pathway_rules(scenario: Scenario) -> PathwayRules:
    """The scenario's PathwayRules, kept across its replications."""
    hit = _RULES.get(id(scenario))
    if hit is not None and hit[0] is scenario:
        return hit[1]
    if len(_RULES) >= 16:
        _RULES.clear()
    rules = PathwayRules(scenario)
    _RULES[id(scenario)] = (scenario, rules)
    return rules
