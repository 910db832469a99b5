"""Typed, frozen parameter objects that the engine reads. Built only by `sim.config.scenario` from validated
TOML.

Names carry their units (`_days`, `_per_year`, `_probability`). Per-etiology values are dicts keyed by the
names in ETIOLOGIES; per-leak-type values by LEAK_TYPES.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.config.distributions import Distribution

ETIOLOGIES: tuple[str, ...] = ("post_lp", "epidural", "spinal_surgery", "spontaneous")
IATROGENIC: frozenset[str] = frozenset({"post_lp", "epidural", "spinal_surgery"})
LEAK_TYPES: tuple[str, ...] = ("ventral_dural_tear", "meningeal_diverticulum", "csf_venous_fistula", "indeterminate")
# Leak type of iatrogenic leaks: the puncture or tear site is known, so no imaging search is needed.
IATROGENIC_LEAK_TYPE = "procedural"
# Keys of the blood-patch success tables: an etiology, or a spontaneous leak type with an entry of its own.
EBP_SUCCESS_KEYS: tuple[str, ...] = (*ETIOLOGIES, "ventral_dural_tear", "meningeal_diverticulum",
                                     "csf_venous_fistula", "slec_negative")
RESOURCES: tuple[str, ...] = ("clinic", "mri", "myelography", "procedure_room", "theatre", "angiography")
# Spinal imaging techniques: "conventional" (prone DSM or conventional CT myelography) and the refined ones:
# "refined" (lateral-decubitus DSM or dynamic CT myelography), decubitus CT myelography, photon-counting CT.
IMAGING_TECHNIQUES: tuple[str, ...] = ("refined", "conventional", "decubitus_ctm", "photon_counting_ct")
REFINED_TECHNIQUES: tuple[str, ...] = tuple(t for t in IMAGING_TECHNIQUES if t != "conventional")
# Classes of the Bern score (brain MRI signs of CSF loss, Dobrocky 2019): 5-9 points high, 3-4 intermediate, 0-2 low.
BERN_CLASSES: tuple[str, ...] = ("high", "intermediate", "low")


@dataclass(frozen=True, slots=True)
class ComplicationKind:
    """A complication: which procedure counts expose a patient to it, the day it is dated from, and whether it
    applies only after a spontaneous leak."""

    name: str
    procedures: tuple[str, ...]
    start_column: str
    spontaneous_only: bool = False

    @property
    def column(self) -> str:
        return f"complication_{self.name}"


# The complications of `[complications.*]`, in the order of their uniforms (`sim.model.complications`).
COMPLICATION_KINDS: tuple[ComplicationKind, ...] = (
    ComplicationKind("intracranial_bleed", ("n_ebp", "n_targeted_patch", "n_fibrin_patch"), "first_patch_day"),
    ComplicationKind("neurological_deficit", ("n_surgery",), "first_surgery_day", spontaneous_only=True),
    ComplicationKind("embolization_pain", ("n_embolization",), "first_embolization_day"),
)


@dataclass(frozen=True, slots=True)
class LeakComplicationKind:
    """A complication of the leak itself (not of a treatment): it happens `onset_days` after the onset with its
    `probability` if the leak is still open then, for the listed spontaneous leak types."""

    name: str
    leak_types: tuple[str, ...]

    @property
    def column(self) -> str:
        return f"complication_{self.name}"

    @property
    def start_column(self) -> str:
        """The day it happened (a patient column), from which it is priced."""
        return f"complication_{self.name}_day"


# The complications of long-standing leaks in `[complications.*]`, in the order of their uniforms (two each).
LEAK_COMPLICATION_KINDS: tuple[LeakComplicationKind, ...] = (
    LeakComplicationKind("subdural_haematoma", LEAK_TYPES),
    LeakComplicationKind("superficial_siderosis", ("ventral_dural_tear",)),
)


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """A scarce resource. With `sessions_per_week` 0: `capacity` parallel servers, each held `service_days` per
    patient, after a capacity-independent `booking_days` delay (referral letter to appointment). Otherwise
    session-booked (`sim.engines.session_book`): `slots_per_session` patients a session, shared with other patient
    groups who ask for `background_requests_per_week` of them; a request waits at least `notice_days`, and the wait
    for a slot is the waiting list (capacity, booking_days and open_windows then do not apply)."""

    capacity: int
    service_days: Distribution
    booking_days: Distribution
    open_windows: tuple[tuple[float, float], ...] = ()  # within each cycle; () = always open
    schedule_cycle_days: float = 7.0
    closed_periods: tuple[tuple[float, float], ...] = ()  # days of the year, every year
    sessions_per_week: int = 0  # 0 = servers with a booking delay
    slots_per_session: int = 1
    background_requests_per_week: float = 0.0  # slots other patient groups ask for
    notice_days: float = 0.0  # least time from request to session

    @property
    def scheduled(self) -> bool:
        return bool(self.open_windows or self.closed_periods)

    @property
    def session_booked(self) -> bool:
        return self.sessions_per_week > 0


@dataclass(frozen=True, slots=True)
class ReferralPolicy:
    """When a center refers a patient to its `refers_to` center (only applies if it has one). Each policy applies
    to the patient groups in its `*_for` tuple (`sim.model.clinical.in_groups` says who belongs)."""

    when_not_offered: bool = True
    when_not_offered_for: tuple[str, ...] = ("all",)
    at_diagnosis: bool = False
    at_diagnosis_for: tuple[str, ...] = ("spontaneous",)
    after_failed_ebp: int = 0  # 0 = off
    after_failed_ebp_for: tuple[str, ...] = ("all",)
    when_imaging_negative: bool = False
    when_imaging_negative_for: tuple[str, ...] = ("all",)


@dataclass(frozen=True, slots=True)
class CenterProfile:
    """What a center can do and how well: recognition, imaging, options offered, success of its surgeons."""

    recognition_probability_iatrogenic: float
    recognition_probability_spontaneous: float
    brain_mri_sign_probability: float
    mri_reading_sensitivity: float
    diagnose_despite_normal_mri_probability: float
    imaging_technique: str
    offers_spinal_imaging: bool
    offers_targeted_patch: bool
    offers_fibrin_patch: bool
    offers_leak_surgery: bool
    offers_durotomy_repair: bool
    offers_embolization: bool
    leak_surgery_success: float
    durotomy_repair_success: float
    rih_recognition_probability: float
    referral_delay_days: Distribution
    blind_ebp_before_imaging: int = 2  # non-targeted patches for a spontaneous leak before spinal imaging
    blind_ebp_after_negative_imaging: int = 2  # and after imaging that found no leak
    early_spine_mri: bool = False  # SLEC status known early: a SLEC- leak goes to imaging before any blind patch
    repeat_refined_imaging: int = 0  # refined studies repeated after a negative one
    repeat_imaging_technique: str = "refined"  # the technique of those repeats (REFINED_TECHNIQUES)
    # After a failed operation or embolization of a localized spontaneous leak (or its recurrence), image the site
    # again before the next definitive treatment.
    reimage_after_failed_definitive: bool = False
    referral: ReferralPolicy = ReferralPolicy()


@dataclass(frozen=True, slots=True)
class Center:
    """A center in a scenario: its profile, its share of each etiology's arrivals and where it refers."""

    name: str
    profile_name: str
    profile: CenterProfile
    catchment_share: dict[str, float]
    refers_to: str | None
    resources: dict[str, ResourceSpec]
    catchment_adults: int | None = None  # when the scenario gave the catchment in adults rather than as a share


@dataclass(frozen=True, slots=True)
class Population:
    """Who falls ill and how their leak behaves untreated. `arrivals_per_year` is compiled from the scenario's
    incidence per 100,000 adults times `catchment_adults`, so the engines see one rate per etiology."""

    arrivals_per_year: dict[str, float]
    leak_type_shares: dict[str, float]
    care_seeking_days: dict[str, Distribution]
    self_limiting_probability: dict[str, float]
    self_limiting_days: dict[str, Distribution]
    misdiagnosis_return_days: Distribution
    max_consultations: int
    iatrogenic_review_days: Distribution | None = None  # first consultation of a procedure-related leak
    # Extradural CSF (SLEC) on spine MRI, by spontaneous leak type.
    slec_probability: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LEAK_TYPES, 0.0))
    # Procedure-related headaches severe enough for a short conservative window (0 for spontaneous leaks).
    severe_headache_probability: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ETIOLOGIES, 0.0))
    growth_per_year: float = 0.0
    seasonality_amplitude: float = 0.0
    seasonality_peak_day: float = 0.0
    catchment_adults: int = 1_000_000
    # The front door (`sim.model.front_door`); the defaults make it a single visit that refers at once.
    front_door_referral_probability: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ETIOLOGIES, 1.0))
    front_door_return_days: Distribution | None = None
    front_door_max_visits: int = 1
    front_door_self_referral_probability: float = 1.0
    # A center that gives up on the diagnosis refers the patient to its `refers_to` center with this probability.
    second_opinion_probability: float = 0.0

    def rate_multiplier(self, day: np.ndarray) -> np.ndarray:
        """Arrival rate at `day` relative to the base rate (demand growth and seasonality)."""
        growth = (1.0 + self.growth_per_year) ** (day / 365.25)
        season = 1.0 + self.seasonality_amplitude * np.cos(2 * np.pi * (day - self.seasonality_peak_day) / 365.25)
        return growth * season

    def max_rate_multiplier(self, horizon_days: float) -> float:
        return max(1.0, (1.0 + self.growth_per_year) ** (horizon_days / 365.25)) * (1 + abs(self.seasonality_amplitude))


@dataclass(frozen=True, slots=True)
class Clinical:
    """Clinical rules that do not depend on the center (see scenarios/base.toml for sources)."""

    conservative_days: dict[str, Distribution]
    spinal_surgery_direct_repair_probability: float
    ebp_first_success: dict[str, float]  # keys: EBP_SUCCESS_KEYS
    ebp_repeat_success: dict[str, float]
    # Of the blind patches that do not seal, the share that relieve the symptoms for a while (keys as above).
    ebp_transient_relief: dict[str, float]
    transient_relief_days: Distribution  # how long such a relief lasts before the symptoms return
    ebp_max_blind: dict[str, int]  # procedure-related etiologies (spontaneous: the center's profile)
    targeted_patch_success: float
    fibrin_patch_success_spontaneous: float
    fibrin_patch_success_iatrogenic: float
    embolization_success: float
    cvf_ligation_success: float
    late_treatment_threshold_days: float
    late_treatment_odds_ratio: float  # on the odds of a definitive treatment sealing, when late
    late_share_in_source: dict[str, float]  # by definitive treatment step: its source cohort's share treated late
    rih_probability_after_iatrogenic_ebp: float
    rih_probability_after_spontaneous_sealing: float
    rih_probability_after_embolization: float
    rih_onset_days: Distribution
    rih_duration_treated_days: Distribution
    rih_duration_untreated_days: Distribution
    acetazolamide_course_days: Distribution
    recurrence_probability_after_iatrogenic_ebp: float
    recurrence_probability_after_spontaneous_patch: float
    recurrence_probability_after_surgery: float
    recurrence_probability_after_embolization: float
    recurrence_days: Distribution
    max_recurrences: int
    imaging_yield: dict[str, dict[str, float]]  # technique -> leak type -> probability
    # A second look with the same refined technique after a negative one (the other side, another phase): leak type ->
    # probability; a more sensitive technique adds what it finds beyond the first (`clinical.repeat_yield`).
    repeat_imaging_yield: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LEAK_TYPES, 0.0))
    # Severe procedure-related headaches: diagnosis to the first patch (by etiology; None: as conservative_days).
    conservative_days_severe: dict[str, Distribution] | None = None
    procedural_patch_booking_days: Distribution | None = None  # None: the procedure room's own booking delay
    early_ebp_threshold_days: float = 0.0
    early_ebp_failure_odds_ratio: float = 1.0  # 1: no timing effect
    # Residual symptoms after a seal of a spontaneous leak (`rules.residual_probability`); 0: none.
    residual_probability_at_90_days: float = 0.0
    residual_odds_ratio_per_doubling: float = 1.0
    residual_recovery_days: Distribution | None = None
    max_leak_surgeries: int = 1  # per episode: a failed operation is revised up to this many in all
    # Bern-score class of a spontaneous leak: leak type -> class -> share (`population` draws it).
    bern_class_shares: dict[str, dict[str, float]] = field(
        default_factory=lambda: {lt: {"high": 1.0, "intermediate": 0.0, "low": 0.0} for lt in LEAK_TYPES})
    # Odds of spinal imaging localizing a leak, by Bern class relative to a high score (1: the score does not matter).
    imaging_odds_ratio_by_bern: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BERN_CLASSES, 1.0))


@dataclass(frozen=True, slots=True)
class VolumeOutcome:
    """Optional link from a center's simulated annual volume of spontaneous leaks to its performance."""

    enabled: bool = False
    half_saturation_cases_per_year: float = 20.0
    floor_multiplier: float = 0.6
    window_days: float = 365.0

    def multiplier(self, cases_per_year: float) -> float:
        v = cases_per_year
        return self.floor_multiplier + (1.0 - self.floor_multiplier) * v / (v + self.half_saturation_cases_per_year)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated, resolved scenario: everything one run needs, and nothing mutable."""

    name: str
    description: str
    source_file: str
    horizon_days: float
    warmup_days: float
    max_expected_patients: int
    population: Population
    clinical: Clinical
    centers: tuple[Center, ...]
    volume_outcome: VolumeOutcome = VolumeOutcome()
    # The resolved parameter tree with metadata (value, unit, grade, source), for manifests and reports.
    resolved: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    # Cohort mode: onsets only before this day, everyone followed to the horizon (None: period mode, onsets until
    # the horizon).
    arrivals_until_days: float | None = None
    # The shortest follow-up of a counted patient: onsets later than horizon_days - follow_up_days load the
    # resources but are left out of the patient statistics (0: every onset to the horizon is counted).
    follow_up_days: float = 0.0

    @property
    def arrivals_end_days(self) -> float:
        """The day after which no patient falls ill: the horizon in period mode."""
        return self.horizon_days if self.arrivals_until_days is None else self.arrivals_until_days

    @property
    def counted_until_day(self) -> float:
        """The last onset day of a patient the statistics count (each then followed for >= follow_up_days)."""
        return min(self.arrivals_end_days, self.horizon_days - self.follow_up_days)

    def counted(self, onset_day: np.ndarray) -> np.ndarray:
        """Which onsets the patient statistics count: after the warm-up, and followed for >= follow_up_days."""
        return (onset_day >= self.warmup_days) & (onset_day <= self.horizon_days - self.follow_up_days)

    def center(self, name: str) -> Center:
        for c in self.centers:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def center_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.centers)
