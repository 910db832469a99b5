"""Clinical decision rules: which step comes next on the treatment ladder, and how likely each step works.

Pure functions of a patient's history, her center's profile and the clinical parameters. Nothing here knows
about SimPy, time queues or files, so every rule can be unit-tested on its own and reused by any engine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sim.config.parameters import (
    BERN_CLASSES,
    EBP_SUCCESS_KEYS,
    IATROGENIC,
    REFINED_TECHNIQUES,
    CenterProfile,
    Clinical,
)

# Steps of the ladder (plain strings: they are compared in the hot path and written to the event log).
EBP = "ebp"
IMAGING = "spinal_imaging"  # spinal imaging with the center's own technique
IMAGING_REFINED = "refined_spinal_imaging"  # needs a center with refined technique
IMAGING_REPEAT = "repeat_spinal_imaging"  # another refined study after a negative one (the center's repeat technique)
IMAGING_CONTROL = "control_spinal_imaging"  # the known site imaged again after a failed operation or embolization
IMAGING_STEPS: tuple[str, ...] = (IMAGING, IMAGING_REFINED, IMAGING_REPEAT, IMAGING_CONTROL)
TARGETED_PATCH = "targeted_patch"
FIBRIN_PATCH = "fibrin_patch"
LEAK_SURGERY = "surgery"  # open repair of a spontaneous leak, or surgical ligation of a CVF
DUROTOMY_REPAIR = "durotomy_repair"  # open repair of a procedure-related dural tear
EMBOLIZATION = "embolization"  # transvenous embolization of a CSF-venous fistula
REFER = "refer"
PERSISTENT = "persistent"

TREATMENTS: tuple[str, ...] = (EBP, TARGETED_PATCH, FIBRIN_PATCH, LEAK_SURGERY, DUROTOMY_REPAIR, EMBOLIZATION)
# The patient column holding the day each kind of treatment was first completed (complications are dated from it).
FIRST_DAY_COLUMN: dict[str, str] = {EBP: "first_patch_day", TARGETED_PATCH: "first_patch_day",
                                    FIBRIN_PATCH: "first_patch_day", LEAK_SURGERY: "first_surgery_day",
                                    DUROTOMY_REPAIR: "first_surgery_day", EMBOLIZATION: "first_embolization_day"}
# Treatments aimed at the leak itself (its site seen on imaging, or known from the procedure), unlike a blind patch.
DEFINITIVE: tuple[str, ...] = tuple(t for t in TREATMENTS if t != EBP)
# What `next_step` can return, numbered (engines and tables store a step as its index here).
STEPS: tuple[str, ...] = (PERSISTENT, REFER, *IMAGING_STEPS, *TREATMENTS)
STEP_RESOURCE: dict[str, str] = {
    EBP: "procedure_room",
    TARGETED_PATCH: "procedure_room",
    FIBRIN_PATCH: "procedure_room",
    IMAGING: "myelography",
    IMAGING_REFINED: "myelography",
    IMAGING_REPEAT: "myelography",
    IMAGING_CONTROL: "myelography",
    LEAK_SURGERY: "theatre",
    DUROTOMY_REPAIR: "theatre",
    EMBOLIZATION: "angiography",
}
CVF = "csf_venous_fistula"
SPONTANEOUS = "spontaneous"


@dataclass(slots=True)
class History:
    """What has happened to one patient that the ladder needs to know. `*_episode` counters restart after a
    recurrence; what imaging has shown is kept."""

    etiology: str
    leak_type: str
    direct_repair: bool = False  # spinal-surgery tear sent straight to open repair
    slec: bool = False  # extradural CSF on spine MRI (spontaneous leaks)
    bern_class: str = ""  # Bern-score class of the brain MRI (BERN_CLASSES); "" for procedure-related leaks
    ebp_total: int = 0
    ebp_episode: int = 0
    ebp_after_negative: int = 0
    targeted_episode: int = 0
    fibrin_episode: int = 0
    surgery_episode: int = 0
    repair_episode: int = 0
    embolization_episode: int = 0
    imaged: bool = False
    imaged_refined: bool = False
    leak_found: bool = False
    imaging_repeats: int = 0  # refined studies repeated after a negative one
    reimage_due: bool = False  # an operation or embolization was done since the last spinal imaging
    imaged_here: bool = False  # spinal imaging done at the current center
    steps_here: int = 0  # ladder steps carried out at the current center
    recurrences: int = 0

    def arrive_at_new_center(self) -> None:
        """Referral: what was done at the previous center stays known; counters 'here' restart."""
        self.steps_here = 0
        self.imaged_here = False

    def start_new_episode(self) -> None:
        """After a recurrence the ladder starts again; imaging knowledge is kept."""
        self.ebp_episode = 0
        self.ebp_after_negative = 0
        self.targeted_episode = 0
        self.fibrin_episode = 0
        self.surgery_episode = 0
        self.repair_episode = 0
        self.embolization_episode = 0
        self.recurrences += 1


def candidate_steps(h: History, profile: CenterProfile, clinical: Clinical) -> list[str]:
    """The remaining ladder in order of preference, ignoring what the current center offers (but with its
    blind-patch limits, and a control study only where the center images and does a treatment it guides)."""
    steps: list[str] = []
    if h.etiology in IATROGENIC:
        max_ebp = clinical.ebp_max_blind[h.etiology]  # spontaneous leaks: the center's (`_blind_before_imaging`)
        if h.etiology == "spinal_surgery":
            if h.direct_repair and h.repair_episode < 1:
                steps.append(DUROTOMY_REPAIR)
            if h.ebp_episode < max_ebp:
                steps.append(EBP)
            if h.repair_episode < 1 and not h.direct_repair:
                steps.append(DUROTOMY_REPAIR)
            return steps
        if h.ebp_episode < max_ebp:
            steps.append(EBP)
        if h.fibrin_episode < 1:
            steps.append(FIBRIN_PATCH)
        if h.repair_episode < 1:
            steps.append(DUROTOMY_REPAIR)
        return steps
    # Spontaneous leak.
    if h.leak_found:
        if h.leak_type == CVF:
            if h.embolization_episode < 1:
                steps.append(EMBOLIZATION)
            if h.surgery_episode < clinical.max_leak_surgeries:
                steps.append(LEAK_SURGERY)
        else:
            if h.targeted_episode < 1:
                steps.append(TARGETED_PATCH)
            if h.fibrin_episode < 1:
                steps.append(FIBRIN_PATCH)
            if h.surgery_episode < clinical.max_leak_surgeries:
                steps.append(LEAK_SURGERY)
        if (h.reimage_due and profile.reimage_after_failed_definitive and offers(profile, IMAGING_CONTROL)
                and any(offers(profile, s) for s in steps)):
            steps.insert(0, IMAGING_CONTROL)  # only where a definitive treatment it guides is done next
        return steps
    # Blind patches come before spinal imaging only while nothing has been imaged: after a recurrence, a patient
    # whose imaging was negative goes on from where her ladder stood.
    if _blind_before_imaging(h, profile):
        steps.append(EBP)
    if not h.imaged:
        steps.append(IMAGING)
    elif not h.imaged_refined:
        steps.append(IMAGING_REFINED)
    elif h.imaging_repeats < profile.repeat_refined_imaging:
        steps.append(IMAGING_REPEAT)
    if h.ebp_after_negative < profile.blind_ebp_after_negative_imaging:
        steps.append(EBP)
    return steps


def _blind_before_imaging(h: History, profile: CenterProfile) -> bool:
    """A blind patch before spinal imaging: while nothing was imaged, up to the center's limit, and not for a leak
    that an early spine MRI showed to be SLEC- (blind patches seldom work there: to imaging for a fistula)."""
    if h.imaged or h.ebp_episode >= profile.blind_ebp_before_imaging:
        return False
    return h.slec or not profile.early_spine_mri


def offers(profile: CenterProfile, step: str) -> bool:
    """Whether a center with this profile can carry out the step itself."""
    match step:
        case "ebp":
            return True
        case "spinal_imaging" | "control_spinal_imaging":
            return profile.offers_spinal_imaging
        case "refined_spinal_imaging" | "repeat_spinal_imaging":
            return profile.offers_spinal_imaging and profile.imaging_technique in REFINED_TECHNIQUES
        case "targeted_patch":
            return profile.offers_targeted_patch
        case "fibrin_patch":
            return profile.offers_fibrin_patch
        case "surgery":
            return profile.offers_leak_surgery
        case "durotomy_repair":
            return profile.offers_durotomy_repair
        case "embolization":
            return profile.offers_embolization
    raise ValueError(step)


def in_groups(h: History, groups: tuple[str, ...]) -> bool:
    """Whether the patient belongs to one of a referral policy's patient groups: "all", her etiology,
    "iatrogenic" (any procedure-related etiology), or her leak type once imaging has localized it (a team acts on
    the type it has seen, never on the true type it has not)."""
    for group in groups:
        if group == "all" or group == h.etiology or (group == "iatrogenic" and h.etiology != SPONTANEOUS):
            return True
        if h.leak_found and group == h.leak_type:
            return True
    return False


def next_step(h: History, profile: CenterProfile, can_refer: bool, clinical: Clinical) -> str:
    """The next thing to do for this patient at this center: a treatment, imaging, REFER or PERSISTENT.

    The center's referral policy is applied first (refer at diagnosis, after K failed blood patches, when its
    imaging found no leak; each for its own patient groups). Then the first remaining step of the ladder that the
    center offers is taken; a preferred step it does not offer means referral when the policy says so for this
    patient's group and the center has somewhere to refer to, otherwise that step is skipped.
    """
    steps = candidate_steps(h, profile, clinical)
    if not steps:
        return PERSISTENT
    policy = profile.referral
    if can_refer:
        if policy.at_diagnosis and h.steps_here == 0 and in_groups(h, policy.at_diagnosis_for):
            return REFER
        if (0 < policy.after_failed_ebp <= h.ebp_episode + h.ebp_after_negative
                and in_groups(h, policy.after_failed_ebp_for)):
            return REFER
        if (policy.when_imaging_negative and h.imaged_here and not h.leak_found
                and in_groups(h, policy.when_imaging_negative_for)):
            return REFER
    for step in steps:
        if offers(profile, step):
            return step
        if can_refer and policy.when_not_offered and in_groups(h, policy.when_not_offered_for):
            return REFER
    return PERSISTENT


def record_step(h: History, step: str, profile: CenterProfile, clinical: Clinical) -> None:
    """Update the history after a step was carried out at a center with this profile (whatever its outcome)."""
    h.steps_here += 1
    if step == EBP:
        h.ebp_total += 1
        if h.etiology != SPONTANEOUS or _blind_before_imaging(h, profile):
            h.ebp_episode += 1
        else:
            h.ebp_after_negative += 1
    elif step == TARGETED_PATCH:
        h.targeted_episode += 1
    elif step == FIBRIN_PATCH:
        h.fibrin_episode += 1
    elif step == LEAK_SURGERY:
        h.surgery_episode += 1
        h.reimage_due = True
    elif step == DUROTOMY_REPAIR:
        h.repair_episode += 1
    elif step == EMBOLIZATION:
        h.embolization_episode += 1
        h.reimage_due = True


def ebp_success_probability(h: History, clinical: Clinical) -> float:
    """Lasting relief after a non-targeted patch, by the leak there is (seen or not): a fistula, a spontaneous leak
    without extradural CSF (SLEC-, Farb 2019), a ventral tear or a diverticulum have entries of their own, other
    leaks take their etiology's; first and repeat patches apart."""
    table = clinical.ebp_first_success if h.ebp_total == 0 else clinical.ebp_repeat_success
    return table[ebp_key(h)]


def ebp_key(h: History) -> str:
    """The entry of the blind-patch tables (`EBP_SUCCESS_KEYS`) this patient's leak reads: a fistula, a spontaneous
    leak without extradural CSF (SLEC-, Farb 2019), a ventral tear or a diverticulum have their own, other leaks
    their etiology's."""
    if h.etiology == SPONTANEOUS and not h.slec and h.leak_type != CVF:
        return "slec_negative"
    return h.leak_type if h.leak_type in EBP_SUCCESS_KEYS else h.etiology


def transient_relief_probability(step: str, h: History, clinical: Clinical) -> float:
    """Probability that a blind patch that did not seal still relieves the symptoms for a while (then they return
    and the ladder goes on), by the same leak key as `ebp_success_probability`. Other steps: 0 (their published
    success rates are read as lasting)."""
    return clinical.ebp_transient_relief[ebp_key(h)] if step == EBP else 0.0


def is_late(days_since_onset: Any, threshold_days: float) -> Any:
    """Treatment counts as late after this many days from onset; numbers or arrays. Every timing rule of the
    ladder is written with it, so success depends on time only through `time_thresholds`."""
    return days_since_onset > threshold_days


def time_thresholds(clinical: Clinical) -> tuple[float, ...]:
    """The days since onset at which some success probability changes, ascending. Between two of them (and after
    the last) every probability of `success_probability` is constant: engines and tables evaluate it per band."""
    return tuple(sorted({clinical.early_ebp_threshold_days, clinical.late_treatment_threshold_days}))


def with_failure_odds(p: float, odds_ratio: float) -> float:
    """Success probability once the odds of failure are multiplied by `odds_ratio`."""
    if p <= 0.0 or p >= 1.0:
        return p
    return p / (p + (1.0 - p) * odds_ratio)


def success_probability(step: str, h: History, profile: CenterProfile, clinical: Clinical,
                        days_since_onset: float) -> float:
    """Probability that a treatment step gives lasting relief for this patient at this center."""
    if step == EBP:
        p = ebp_success_probability(h, clinical)
        if h.etiology in IATROGENIC and not is_late(days_since_onset, clinical.early_ebp_threshold_days):
            p = with_failure_odds(p, clinical.early_ebp_failure_odds_ratio)
        return p
    if step == DUROTOMY_REPAIR:
        return profile.durotomy_repair_success
    if step == FIBRIN_PATCH and h.etiology in IATROGENIC:
        return clinical.fibrin_patch_success_iatrogenic
    if step == TARGETED_PATCH:
        p = clinical.targeted_patch_success
    elif step == FIBRIN_PATCH:
        p = clinical.fibrin_patch_success_spontaneous
    elif step == EMBOLIZATION:
        p = clinical.embolization_success
    elif step == LEAK_SURGERY:
        p = clinical.cvf_ligation_success if h.leak_type == CVF else profile.leak_surgery_success
    else:
        raise ValueError(step)
    # A definitive treatment of a spontaneous leak: its source cohort's average, split into early and late.
    early, late = early_and_late_success(p, clinical.late_share_in_source[step], clinical.late_treatment_odds_ratio)
    return late if is_late(days_since_onset, clinical.late_treatment_threshold_days) else early


def early_and_late_success(p_source: float, late_share: float, odds_ratio: float) -> tuple[float, float]:
    """Success when treated early and late, with late odds = early odds x `odds_ratio`, such that a cohort of
    whom `late_share` were treated late has the source's average `p_source`."""
    early, late = odds_scaled_mixture(p_source, (1 - late_share, late_share), (1.0, odds_ratio))
    return early, late


@functools.lru_cache(maxsize=4096)
def odds_scaled_mixture(p_mean: float, weights: tuple[float, ...], odds_ratios: tuple[float, ...]
                        ) -> tuple[float, ...]:
    """Probabilities of the classes of a mixture whose odds are a base odds times each class's `odds_ratios`,
    such that the mixture with `weights` (summing to 1) averages `p_mean`: a source's average split by a factor
    it was not reported by (bisection on the base: the mixture rises with it)."""
    if all(r == 1.0 for r in odds_ratios) or p_mean <= 0.0 or p_mean >= 1.0:
        return (p_mean,) * len(weights)

    def of(base: float) -> list[float]:
        return [base if r == 1.0 else with_failure_odds(base, 1 / r) for r in odds_ratios]

    lo, hi = 0.0, 1.0
    for _ in range(60):
        base = (lo + hi) / 2
        if sum(w * p for w, p in zip(weights, of(base), strict=True)) < p_mean:
            lo = base
        else:
            hi = base
    return tuple(of((lo + hi) / 2))


def imaging_yield(step: str, h: History, profile: CenterProfile, clinical: Clinical) -> float:
    """Probability that this spinal imaging step at this center localizes this patient's leak: the center's
    technique, or for a repeat after a negative refined study `repeat_yield`; by her Bern-score class
    (`bern_class_yields`), a study after a negative one averaged over those the first missed. A control study
    images a site already found, where the treatment has just failed: it finds it."""
    if step == IMAGING_CONTROL:
        return 1.0
    if h.bern_class not in BERN_CLASSES:
        raise ValueError(f"spinal imaging for a patient without a Bern class: {h}")
    b = BERN_CLASSES.index(h.bern_class)
    first = clinical.imaging_yield[profile.imaging_technique][h.leak_type]
    if step == IMAGING_REPEAT:
        repeat = repeat_yield(profile.imaging_technique, profile.repeat_imaging_technique, h.leak_type, clinical)
        return bern_class_yields(h.leak_type, repeat, clinical, first_yield=first)[b]
    if step == IMAGING_REFINED:  # after a negative conventional study: among those it missed
        missed_by = clinical.imaging_yield["conventional"][h.leak_type]
        return bern_class_yields(h.leak_type, first, clinical, first_yield=missed_by)[b]
    return bern_class_yields(h.leak_type, first, clinical)[b]


def repeat_yield(first_technique: str, repeat_technique: str, leak_type: str, clinical: Clinical) -> float:
    """Chance that a repeat study finds a leak the first refined one missed: a second look of its own (the other
    side, another phase: `imaging_yield.repeat_after_negative`) or what a more sensitive technique adds, read as
    finding all the first finds and more ((y2 - y1) / (1 - y1) of what the first missed; Luetzen 2024)."""
    y1 = clinical.imaging_yield[first_technique][leak_type]
    y2 = clinical.imaging_yield[repeat_technique][leak_type]
    gain = (y2 - y1) / (1 - y1) if y2 > y1 and y1 < 1 else 0.0
    second_look = clinical.repeat_imaging_yield[leak_type]
    return 1 - (1 - second_look) * (1 - gain)


def bern_class_yields(leak_type: str, p_mean: float, clinical: Clinical, first_yield: float | None = None
                      ) -> tuple[float, ...]:
    """A yield `p_mean` split by Bern class (BERN_CLASSES order): class odds in the ratios of
    `imaging_odds_ratio_by_bern`, averaging `p_mean` over the class mix of those the study is done for: the leak
    type's for a first study; for one after a negative study (`first_yield`: that study's average) the mix of those
    it missed, which holds more low scores."""
    ratios = tuple(clinical.imaging_odds_ratio_by_bern[b] for b in BERN_CLASSES)
    shares = tuple(clinical.bern_class_shares[leak_type][b] for b in BERN_CLASSES)
    if first_yield is not None:
        first = odds_scaled_mixture(first_yield, shares, ratios)
        missed = [s * (1 - y) for s, y in zip(shares, first, strict=True)]
        total = sum(missed)
        if total > 0:
            shares = tuple(m / total for m in missed)
    return odds_scaled_mixture(p_mean, shares, ratios)


def rih_probability(step: str, h: History, clinical: Clinical) -> float:
    """Rebound intracranial hypertension after a successful sealing step."""
    if step == EMBOLIZATION:
        return clinical.rih_probability_after_embolization
    if h.etiology in IATROGENIC:
        return clinical.rih_probability_after_iatrogenic_ebp
    return clinical.rih_probability_after_spontaneous_sealing


def recurrence_probability(step: str, h: History, clinical: Clinical) -> float:
    """Chance that symptoms return after a success (a new episode of the ladder)."""
    if h.recurrences >= clinical.max_recurrences:
        return 0.0
    if step in (LEAK_SURGERY, DUROTOMY_REPAIR):
        return clinical.recurrence_probability_after_surgery
    if step == EMBOLIZATION:
        return clinical.recurrence_probability_after_embolization
    if h.etiology in IATROGENIC:
        return clinical.recurrence_probability_after_iatrogenic_ebp
    return clinical.recurrence_probability_after_spontaneous_patch


def record_needless_ebp(h: History) -> None:
    """A blood patch given for rebound hypertension misread as the leak returning: it counts as a blood patch
    (the next one is a repeat) but is no step of the ladder."""
    h.ebp_total += 1


def record_imaging(h: History, profile: CenterProfile, found: bool, step: str = IMAGING) -> None:
    """Spinal imaging was done at this center: remember the technique and whether it found the leak."""
    h.imaged = True
    h.imaged_here = True
    h.reimage_due = False
    h.steps_here += 1
    if step == IMAGING_REPEAT:
        h.imaging_repeats += 1
    if profile.imaging_technique in REFINED_TECHNIQUES:
        h.imaged_refined = True
    if found:
        h.leak_found = True
