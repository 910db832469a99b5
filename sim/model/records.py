"""The patient record: one schema for what both engines write per patient and for the patient table built from it.

Each column is defined once here (name, type, meaning). The engines fill `Records` (Python lists in the SimPy
engine, numpy arrays in the fast one, under the same names); `sim.runs.replication` turns it into the patient
table, whose columns and the README's column table both come from `PATIENT_SCHEMA`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.model import clinical as cl
from sim.model.population import Cohort, care_reach

# Final states, how a resolution came about and why symptoms persist: text columns, stored as codes (an index
# into these tuples) by both engines; "" is no value (null in the table).
RESOLVED_WITHOUT_CARE = "resolved_without_care"
RESOLVED = "resolved"
PERSISTENT = "persistent"
IN_PATHWAY = "in_pathway_at_horizon"
FINAL_STATES: tuple[str, ...] = (RESOLVED_WITHOUT_CARE, RESOLVED, PERSISTENT, IN_PATHWAY)
F_WITHOUT_CARE, F_RESOLVED, F_PERSISTENT, F_IN_PATHWAY = range(4)
NATURAL_COURSE = "natural_course"  # closed on its own before a diagnosis
CONSERVATIVE = "conservative"  # closed on its own after diagnosis, under conservative care
RESOLVED_BY: tuple[str, ...] = ("", NATURAL_COURSE, CONSERVATIVE, *cl.STEPS)  # a ladder step is BY_STEP + its code
BY_NONE, BY_NATURAL, BY_CONSERVATIVE, BY_STEP = range(4)
BY_CODE = {name: code for code, name in enumerate(RESOLVED_BY)}
UNDIAGNOSED, TREATMENT_EXHAUSTED = "undiagnosed", "treatment_exhausted"
PERSISTENT_REASONS: tuple[str, ...] = ("", UNDIAGNOSED, TREATMENT_EXHAUSTED)
R_NONE, R_UNDIAGNOSED, R_EXHAUSTED = range(3)
TEXT_CODES: dict[str, tuple[str, ...]] = {"final_state": FINAL_STATES, "resolved_by": RESOLVED_BY,
                                          "persistent_reason": PERSISTENT_REASONS}

# The counter each treatment step adds to (durotomy repair and leak surgery are both open surgery).
TREATMENT_COUNTERS: tuple[str, ...] = ("n_ebp", "n_targeted_patch", "n_fibrin_patch", "n_surgery", "n_embolization")
COUNTER_OF_STEP: dict[str, str] = {cl.EBP: "n_ebp", cl.TARGETED_PATCH: "n_targeted_patch",
                                   cl.FIBRIN_PATCH: "n_fibrin_patch", cl.LEAK_SURGERY: "n_surgery",
                                   cl.DUROTOMY_REPAIR: "n_surgery", cl.EMBOLIZATION: "n_embolization"}


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the patient table. `kind`: day (float, null if never), count, flag, text, center (a center's
    name), id. `engine`: whether the engines write it (the others come from the cohort or are derived)."""

    name: str
    kind: str
    meaning: str
    engine: bool = False


PATIENT_SCHEMA: tuple[Column, ...] = (
    Column("replication", "id", "replication index"),
    Column("patient_id", "id", "patient index within the replication (patients sorted by onset)"),
    Column("home_center", "center", "center the patient first presents to"),
    Column("center", "center", "center where the patient ended (after referrals)", engine=True),
    Column("etiology", "text", "`post_lp`, `epidural`, `spinal_surgery`, `spontaneous`"),
    Column("leak_type", "text", "spontaneous: `ventral_dural_tear`, `meningeal_diverticulum`, `csf_venous_fistula`, "
           "`indeterminate`; procedure-related: `procedural`"),
    Column("severe_headache", "flag", "procedure-related headache severe enough that a blood patch is offered after "
           "a short conservative window (`population.severe_headache_probability`); false for spontaneous leaks "
           "(bool)"),
    Column("slec", "flag", "spontaneous leak with a spinal longitudinal extradural CSF collection on spine MRI "
           "(`population.slec_probability`; bool)"),
    Column("bern_class", "text", "spontaneous: Bern-score class of the brain MRI, `high` (5-9 points), `intermediate` "
           "(3-4) or `low` (0-2), by leak type (`clinical.bern_class`); it scales the chance spinal imaging finds "
           "the leak (`clinical.imaging_odds_ratio_by_bern`); null for procedure-related leaks"),
    Column("onset_day", "day", "symptom onset (day)"),
    Column("first_contact_day", "day", "first front-door visit: primary care, emergency department or general "
           "neurology (day)"),
    Column("n_front_door_visits", "count", "front-door visits up to the one that referred her on, or all of them "
           "(count)"),
    Column("presented_day", "day", "first consultation at a center, after the front door (day); null if never "
           "presented", engine=True),
    Column("diagnosed_day", "day", "leak recognized (day)", engine=True),
    Column("first_treatment_day", "day", "first invasive treatment completed (day)", engine=True),
    Column("localized_day", "day", "spinal imaging first found the leak (day)", engine=True),
    Column("definitive_treatment_day", "day", "first treatment aimed at the leak completed: targeted or fibrin "
           "patch, surgery, durotomy repair or embolization (day)", engine=True),
    Column("first_patch_day", "day", "first epidural patch completed, blind, targeted or fibrin (day)", engine=True),
    Column("first_surgery_day", "day", "first open operation completed (day)", engine=True),
    Column("first_embolization_day", "day", "first embolization completed (day)", engine=True),
    Column("resolved_day", "day", "final resolution (day): set when `final_state` is `resolved` or "
           "`resolved_without_care` (the day the leak settled before any care); null otherwise", engine=True),
    Column("first_resolved_day", "day", "the first day symptoms ended (day): `resolved_day` of the first success, "
           "kept when the leak later recurs; null if symptoms never ended", engine=True),
    Column("final_state", "text", "`resolved_without_care`, `resolved`, `persistent`, `in_pathway_at_horizon` "
           "(censored)", engine=True),
    Column("resolved_by", "text", "`natural_course` (before diagnosis), `conservative`, `ebp`, `targeted_patch`, "
           "`fibrin_patch`, `surgery`, `durotomy_repair`, `embolization`", engine=True),
    Column("persistent_reason", "text", "`undiagnosed` or `treatment_exhausted`", engine=True),
    Column("n_consultations", "count", "clinic consultations (count)", engine=True),
    Column("n_imaging", "count", "brain MRI plus spinal imaging studies (count)"),
    Column("n_brain_mri", "count", "brain MRIs (count)", engine=True),
    Column("n_spinal_imaging", "count", "spinal imaging studies, myelography (count)", engine=True),
    Column("n_control_imaging", "count", "of those, control studies of a site already found, after a failed "
           "operation or embolization (count)", engine=True),
    Column("n_ebp", "count", "non-targeted epidural blood patches, including needless ones for misread RIH (count)",
           engine=True),
    Column("n_targeted_patch", "count", "targeted patches at the leak (count)", engine=True),
    Column("n_fibrin_patch", "count", "fibrin sealant patches (count)", engine=True),
    Column("n_surgery", "count", "open surgeries: leak repair, CVF ligation, durotomy repair (count)", engine=True),
    Column("n_embolization", "count", "transvenous embolizations (count)", engine=True),
    Column("rih", "flag", "had rebound intracranial hypertension (bool)", engine=True),
    Column("rih_misread", "flag", "RIH was taken for a returning leak (bool)", engine=True),
    Column("rih_days", "day", "days with RIH within the horizon (days)", engine=True),
    Column("n_acetazolamide_courses", "count", "acetazolamide courses for recognized RIH (count)", engine=True),
    Column("residual_symptoms", "flag", "headache persisted after a treatment sealed a spontaneous leak "
           "(`clinical.residual_symptoms`; bool)", engine=True),
    Column("residual_days", "day", "days with residual symptoms after a seal, within the horizon (days)", engine=True),
    Column("residual_at_horizon", "flag", "residual symptoms still present at the horizon (bool)", engine=True),
    Column("complication_intracranial_bleed", "flag", "intracranial bleeding after an epidural patch "
           "(`[complications]`; bool)"),
    Column("complication_neurological_deficit", "flag", "permanent neurological deficit after leak surgery (bool)"),
    Column("complication_embolization_pain", "flag", "local pain after embolization (bool)"),
    Column("complication_subdural_haematoma", "flag", "a subdural haematoma from the low pressure of a spontaneous "
           "leak still open when it formed (`[complications.subdural_haematoma]`; bool)"),
    Column("complication_subdural_haematoma_day", "day", "the day it formed (day)"),
    Column("complication_superficial_siderosis", "flag", "superficial siderosis from a ventral dural tear left open "
           "for years (`[complications.superficial_siderosis]`; bool)"),
    Column("complication_superficial_siderosis_day", "day", "the day it began (day)"),
    Column("recurred", "flag", "symptoms recurred after a success (bool)"),
    Column("n_recurrences", "count", "recurrences (count)", engine=True),
    Column("n_transient_reliefs", "count", "blind patches that did not seal but relieved the symptoms for a while "
           "(`clinical.ebp_transient_relief`; the last may have ended in the leak closing or at the horizon rather "
           "than in a relapse; count)", engine=True),
    Column("referred", "flag", "referred at least once (bool)"),
    Column("n_referrals", "count", "referrals (count)", engine=True),
    Column("leak_localized", "flag", "spinal imaging found the leak (bool)", engine=True),
    Column("symptom_days", "day", "days with low-pressure symptoms within the horizon (days)", engine=True),
    Column("waiting_days", "day", "time spent queueing for resources, booking delays excluded (days)", engine=True),
    Column("in_warmup", "flag", "onset before `run.warmup_days`: left out of the statistics (bool)"),
    Column("counted", "flag", "in the patient statistics: onset after the warm-up and at least `run.follow_up_days` "
           "before the horizon; the others load the resources but are left out (bool)"),
    Column("cost", "cost", "health-service cost from onset to the horizon, discounted (`[economics]` currency and "
           "cost year)"),
    Column("qaly", "qaly", "quality-adjusted life years from onset to the horizon, discounted (QALYs)"),
    Column("qaly_loss", "qaly", "QALYs lost against full health (utility 1) over the same time, discounted (QALYs)"),
    Column("work_days_lost", "day", "working days of paid work lost while symptomatic (`[productivity]`; days, "
           "undiscounted)"),
    Column("productivity_cost", "cost", "those days at median earnings, discounted (societal perspective, beside "
           "`cost`)"),
)
PATIENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in PATIENT_SCHEMA)
# What the engines write, beyond the table's columns: whether symptoms last to the horizon (economics reads it).
ENGINE_COLUMNS: tuple[Column, ...] = (
    *(c for c in PATIENT_SCHEMA if c.engine),
    Column("symptomatic_at_end", "flag", "symptoms last to the horizon", engine=True))
_FILL = {"day": np.nan, "count": 0, "flag": False, "text": 0, "center": 0}
_DTYPE = {"day": np.float64, "count": np.int64, "flag": bool, "text": np.int64, "center": np.int64}


class Records:
    """The engines' per-patient result columns (ENGINE_COLUMNS), by name; text columns hold codes (TEXT_CODES).
    `Records.lists(n)` for the SimPy engine (an item of a list is the cheapest to write from Python),
    `Records.arrays(n)` for the fast one."""

    __slots__ = tuple(c.name for c in ENGINE_COLUMNS)

    @classmethod
    def lists(cls, n: int) -> Records:
        rec = cls()
        for c in ENGINE_COLUMNS:
            setattr(rec, c.name, [_FILL[c.kind]] * n)
        return rec

    @classmethod
    def arrays(cls, n: int) -> Records:
        rec = cls()
        for c in ENGINE_COLUMNS:
            setattr(rec, c.name, np.full(n, _FILL[c.kind], dtype=_DTYPE[c.kind]))
        return rec

    def column(self, name: str) -> np.ndarray:
        """A column as a numpy array of its type."""
        kind = next(c.kind for c in ENGINE_COLUMNS if c.name == name)
        return np.asarray(getattr(self, name), dtype=_DTYPE[kind])


def before_care(cohort: Cohort, horizon_days: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Who enters the pathway (presents before the horizon with the leak still open), and the columns every
    patient starts with: closed before presenting (resolved without care), gave up at the front door (persistent,
    undiagnosed), not yet presented by the horizon (symptomatic throughout, censored), or admitted (in the
    pathway until an engine says otherwise)."""
    reach = care_reach(cohort, horizon_days)
    settled, admitted = reach.without_care, reach.admitted
    onset, nat = cohort.onset_day, cohort.natural_resolution_day
    # gave up at the front door before the horizon, with the leak still open: persistent, never diagnosed
    gave_up = reach.unpresented & (cohort.front_door_gave_up_day < horizon_days)
    columns: dict[str, Any] = {
        "center": cohort.home_center.astype(np.int64),
        "final_state": np.where(settled, F_WITHOUT_CARE, np.where(gave_up, F_PERSISTENT, F_IN_PATHWAY)
                                ).astype(np.int64),
        "persistent_reason": np.where(gave_up, R_UNDIAGNOSED, R_NONE).astype(np.int64),
        "resolved_by": np.where(settled, BY_NATURAL, BY_NONE).astype(np.int64),
        "resolved_day": np.where(settled, nat, np.nan),
        "first_resolved_day": np.where(settled, nat, np.nan),
        "symptom_days": np.where(settled, nat - onset, np.where(reach.unpresented, horizon_days - onset, np.nan)),
        "symptomatic_at_end": ~settled,
        "presented_day": np.where(admitted, cohort.presented_day, np.nan),
        "waiting_days": np.where(admitted, 0.0, np.nan),
    }
    return admitted, columns


def counted_rows(patients: Any) -> Any:
    """Which rows of a patient table the statistics count (`counted`); a table written before that column
    existed counts every patient after the warm-up."""
    if "counted" in patients:
        return patients["counted"]
    return ~patients["in_warmup"] if "in_warmup" in patients else patients["onset_day"] == patients["onset_day"]


def readme_table() -> str:
    """The README's table of patient columns, as Markdown rows."""
    return "\n".join(f"| `{c.name}` | {c.meaning} |" for c in PATIENT_SCHEMA)
