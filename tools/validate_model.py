"""Face and external validation of csfsim: writes docs/validation.md (`make validate`).

Runs the two shipped default scenarios on common random numbers and sets the model's figures beside
(1) each statement of the clinical summary on prognosis and treatment (quoted below, row by row): face validity, and
(2) published figures (each with its source and grade below) that were NOT used as model inputs: external validation.
Every figure is computed per replication and reported as the mean with a t-based 95% CI across replications. A
check that misses is reported with a likely reason; nothing here feeds back into the parameters.

    python tools/validate_model.py [--reps 150] [--seed 20261124] [--jobs 2] [--out docs/validation.md]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim import compare  # noqa: E402
from sim.analysis.stats import t_interval  # noqa: E402
from sim.runs.experiment import RunResult  # noqa: E402

SCENARIOS = ("scenarios/experienced_center.toml", "scenarios/low_volume_center.toml")
LABELS = ("experienced", "low-volume", "experienced minus low-volume (paired)")
DIFF = 2  # Check.scenario for a paired difference, replication by replication
IATROGENIC = ("post_lp", "epidural", "spinal_surgery")
INVASIVE = ("n_ebp", "n_targeted_patch", "n_fibrin_patch", "n_surgery", "n_embolization")
TREATMENT_STEPS = ("ebp", "targeted_patch", "fibrin_patch", "surgery", "durotomy_repair", "embolization")
RESOLVED_STATES = ("resolved", "resolved_without_care")


# ------------------------------------------------------------------------------------------------ figures
@dataclass(frozen=True)
class Rep:
    """One replication's tables: patients, first theatre start per patient, and the horizon."""

    patients: pd.DataFrame
    first_surgery_day: pd.Series  # patient_id -> start day of the first theatre use
    horizon: float


def _share(num: pd.Series, den: pd.Series) -> float:
    n = int(den.sum())
    return float((num & den).sum() / n) if n else math.nan


def _presented(p: pd.DataFrame, etiology: str | tuple[str, ...]) -> pd.Series:
    groups = (etiology,) if isinstance(etiology, str) else etiology
    return p["etiology"].isin(groups) & p["presented_day"].notna()


def _interventions(p: pd.DataFrame) -> pd.Series:
    return p[list(INVASIVE)].sum(axis=1)


def resolved_within(r: Rep, etiologies: tuple[str, ...], days: float, diagnosed_only: bool = False) -> float:
    p = r.patients
    den = p["etiology"].isin(etiologies) & (p["onset_day"] <= r.horizon - days)
    if diagnosed_only:
        den &= p["diagnosed_day"].notna()
    ok = p["final_state"].isin(RESOLVED_STATES) & (p["resolved_day"] - p["onset_day"] <= days)
    return _share(ok, den)


def resolved_by_among_treated(r: Rep, etiology: str, by: str, treated_column: str = "n_ebp") -> float:
    p = r.patients
    return _share(p["resolved_by"] == by, _presented(p, etiology) & (p[treated_column] > 0))


def repeat_ebp(r: Rep, etiologies: str | tuple[str, ...]) -> float:
    p = r.patients
    return _share(p["n_ebp"] >= 2, _presented(p, etiologies) & (p["n_ebp"] > 0))


def any_of(r: Rep, etiology: str, column: str, among_ebp: bool = False) -> float:
    p = r.patients
    den = _presented(p, etiology) & ((p["n_ebp"] > 0) if among_ebp else True)
    return _share(p[column] > 0, den)


def ebp_given(r: Rep, etiology: str, presented_only: bool) -> float:
    p = r.patients
    den = (p["etiology"] == etiology) & (p["onset_day"] <= r.horizon - 30)
    if presented_only:
        den &= p["presented_day"].notna()
    return _share(p["n_ebp"] > 0, den)


def without_care(r: Rep) -> float:
    p = r.patients
    return _share(p["final_state"] == "resolved_without_care", p["etiology"] == "spontaneous")


def several_procedures(r: Rep) -> float:
    p = r.patients
    return _share(_interventions(p) >= 3, _presented(p, "spontaneous"))


def directed_after_localization(r: Rep) -> float:
    p = r.patients
    directed = (p[["n_targeted_patch", "n_fibrin_patch", "n_surgery", "n_embolization"]].sum(axis=1) > 0)
    return _share(directed, _presented(p, "spontaneous") & p["leak_localized"])


def surgery_success(r: Rep) -> float:
    p = r.patients
    return _share(p["resolved_by"] == "surgery", _presented(p, "spontaneous") & (p["n_surgery"] > 0))


def rih_share(r: Rep) -> float:
    p = r.patients
    return _share(p["rih"], _presented(p, "spontaneous") & (_interventions(p) > 0))


def localized_per_study(r: Rep) -> float:
    """Leaks localized per spinal imaging study done to search for one (control studies of a known site apart),
    spontaneous patients."""
    p = r.patients[_presented(r.patients, "spontaneous")]
    studies = int((p["n_spinal_imaging"] - p["n_control_imaging"]).sum())
    return float(p["leak_localized"].sum() / studies) if studies else math.nan


def not_diagnosed_within(r: Rep, days: float) -> float:
    p = r.patients
    den = _presented(p, "spontaneous") & (p["onset_day"] <= r.horizon - days)
    late = p["diagnosed_day"].isna() | (p["diagnosed_day"] - p["onset_day"] > days)
    return _share(late, den)


def median_diagnosis_delay(r: Rep) -> float:
    p = r.patients
    d = (p["diagnosed_day"] - p["onset_day"])[(p["etiology"] == "spontaneous")].dropna()
    return float(d.median()) if len(d) else math.nan


def exhausted(r: Rep) -> float:
    p = r.patients
    return _share(p["persistent_reason"] == "treatment_exhausted", _presented(p, "spontaneous"))


def interventions_if_exhausted(r: Rep) -> float:
    p = r.patients
    sel = _presented(p, "spontaneous") & (p["persistent_reason"] == "treatment_exhausted")
    return float(_interventions(p[sel]).mean()) if sel.any() else math.nan


def residual_after_sealing(r: Rep) -> float:
    p = r.patients
    sealed = p["resolved_by"].isin(TREATMENT_STEPS) | p["recurred"]
    den = _presented(p, "spontaneous") & sealed & (p["onset_day"] <= r.horizon - 365)
    return _share(p["residual_symptoms"], den)


def localized_by_bern_class(bern_class: str) -> Callable[[Rep], float]:
    """Imaged spontaneous patients of a Bern-score class whose leak imaging localized."""
    def share(r: Rep) -> float:
        p = r.patients
        return _share(p["leak_localized"], _presented(p, "spontaneous") & (p["bern_class"] == bern_class)
                      & (p["n_spinal_imaging"] > 0))
    return share


def _surgery_day(r: Rep) -> pd.Series:
    return r.patients["patient_id"].map(r.first_surgery_day)


def long_symptoms_before_surgery(r: Rep) -> float:
    p = r.patients
    day = _surgery_day(r)
    return _share(day - p["onset_day"] > 90, (p["etiology"] == "spontaneous") & day.notna())


def symptomatic_year_after_surgery(r: Rep) -> float:
    p = r.patients
    day = _surgery_day(r)
    den = (p["etiology"] == "spontaneous") & day.notna() & (day <= r.horizon - 365)
    residual_until = p["resolved_day"] + p["residual_days"].where(p["residual_symptoms"])
    well = (p["final_state"] == "resolved") & (p["resolved_day"] <= day + 365) & ~(residual_until > day + 365)
    return _share(~well, den)


# ------------------------------------------------------------------------------------------------ checks
@dataclass(frozen=True)
class Check:
    kind: str  # "face" or "external"
    statement: str  # the seed-text statement, or the published figure with its source
    figure: str  # what the model's number measures
    scenario: int  # 0 experienced, 1 low-volume
    fn: Callable[[Rep], float]
    criterion: str
    test: Callable[[float], bool]
    note: str = ""  # likely reason for a miss, or a caveat (inputs, selection)
    unit: str = "share"


@dataclass(frozen=True)
class Outcome:
    check: Check
    mean: float
    low: float
    high: float

    @property
    def holds(self) -> bool | None:
        return None if math.isnan(self.mean) else bool(self.check.test(self.mean))


def within(lo: float, hi: float) -> Callable[[float], bool]:
    return lambda v: lo <= v <= hi


CHECKS: tuple[Check, ...] = (
    # ---- face validity: the seed text, statement by statement
    Check("face", "For those with leaks resulting from medical procedures, the vast majority do very well",
          "procedure-related leaks resolved within 1 year of onset", 0,
          lambda r: resolved_within(r, IATROGENIC, 365), ">= 90%", lambda v: v >= 0.90),
    Check("face", "Lumbar punctures that cause a headache respond to EBP most of the time",
          "post-LP patients given an EBP whose leak an EBP sealed", 0,
          lambda r: resolved_by_among_treated(r, "post_lp", "ebp"), "> 50%", lambda v: v > 0.50),
    Check("face", "... but occasionally an EBP will need to be repeated",
          "post-LP patients given an EBP who had two or more", 0,
          lambda r: repeat_ebp(r, "post_lp"), "2% to 40%", within(0.02, 0.40)),
    Check("face", "... or an epidural patch with fibrin sealant is used",
          "post-LP patients given an EBP who also had a fibrin patch", 0,
          lambda r: any_of(r, "post_lp", "n_fibrin_patch", among_ebp=True), "> 0 and < 15%",
          lambda v: 0 < v < 0.15),
    Check("face", "On rare occasions, a surgical repair is needed (post-LP)",
          "post-LP patients who presented and had surgery", 0,
          lambda r: any_of(r, "post_lp", "n_surgery"), "> 0 and < 2%", lambda v: 0 < v < 0.02),
    Check("face", "Dural tears from epidural injections are usually addressed successfully with one or more EBPs",
          "epidural-ADP patients given an EBP whose leak an EBP sealed", 0,
          lambda r: resolved_by_among_treated(r, "epidural", "ebp"), ">= 75%", lambda v: v >= 0.75),
    Check("face", "... however there are reported cases in which a surgical repair was needed",
          "epidural-ADP patients who presented and had surgery", 0,
          lambda r: any_of(r, "epidural", "n_surgery"), "> 0 and < 2%", lambda v: 0 < v < 0.02),
    Check("face", "Dural defects that occur during spinal surgery often require an open surgical repair",
          "spinal-surgery leaks that presented and had an open repair", 0,
          lambda r: any_of(r, "spinal_surgery", "n_surgery"), ">= 30%", lambda v: v >= 0.30),
    Check("face", "Some spontaneous leaks resolve in hours, days or weeks without ever seeking medical care",
          "spontaneous leaks resolved before presenting", 0, without_care, "1% to 50% (some, not most)",
          within(0.01, 0.50)),
    Check("face", "These patients do well overall, although some may require several procedures",
          "presented spontaneous patients with 3 or more invasive procedures", 0, several_procedures,
          "2% to 50%", within(0.02, 0.50)),
    Check("face", "A substantial percentage respond favorably to one or more epidural blood patches",
          "spontaneous patients given an EBP whose leak an EBP sealed", 0,
          lambda r: resolved_by_among_treated(r, "spontaneous", "ebp"), ">= 30%", lambda v: v >= 0.30,
          "The model counts a lasting seal by a blind patch (0.30 for a ventral tear, 0.15 without extradural "
          "CSF: Piechowiak 2023, Farb 2019); a favourable response in the short term (88% in Piechowiak 2023) "
          "is not modelled apart, so a miss here is by definition of the figure, not of the statement"),
    Check("face", "Spinal imaging findings help to guide further treatment (fibrin at the leak, or surgery)",
          "spontaneous patients with a localized leak who had a directed treatment", 0,
          directed_after_localization, ">= 50%", lambda v: v >= 0.50),
    Check("face", "Surgical repair has good success rates in the hands of experienced neurosurgeons",
          "operated spontaneous patients whose leak surgery sealed (experienced center)", 0, surgery_success,
          ">= 75%", lambda v: v >= 0.75,
          "Close to an input: a seal is leak closure, 96.6% (Beck 2023), with one revision after a failed "
          "operation; CVF ligation succeeds in 69%. Beck's 90% benefit also reflects residual symptoms, which the "
          "model counts apart (external row 11)"),
    Check("face", "Rebound intracranial hypertension may occur following treatment",
          "invasively treated spontaneous patients with RIH", 0, rih_share, "5% to 40%", within(0.05, 0.40)),
    Check("face", "Prognosis is favorable when the diagnosis is recognized and appropriate treatment is offered",
          "diagnosed spontaneous patients resolved within 1 year of onset (experienced center)", 0,
          lambda r: resolved_within(r, ("spontaneous",), 365, diagnosed_only=True), ">= 70%",
          lambda v: v >= 0.70,
          "If it misses: a blind patch that relieves without sealing delays the next step until the symptoms "
          "return (clinical.transient_relief_days, median 74 days, grade L: the relief of one strategy taken for "
          "all); with it the share fell from 74% to about 68% (session 14)"),
    Check("face", "Larger-volume centers have greater familiarity with imaging and refined imaging techniques",
          "leaks localized per spinal imaging study, spontaneous patients", DIFF, localized_per_study,
          "> 0 (experienced higher)", lambda v: v > 0, unit="ratio"),
    Check("face", "Outcomes tend to be good in experienced hands, while many do not receive timely care",
          "presented spontaneous patients not diagnosed within 3 months", DIFF,
          lambda r: not_diagnosed_within(r, 90), "< 0 (experienced lower)", lambda v: v < 0),
    Check("face", "Many patients do not receive timely and appropriate care",
          "presented spontaneous patients not diagnosed within 3 months (low-volume center)", 1,
          lambda r: not_diagnosed_within(r, 90), ">= 25%", lambda v: v >= 0.25),
    Check("face", "A subset continues to have persistent symptoms and disability despite numerous interventions",
          "presented spontaneous patients left persistent after exhausting the ladder (low-volume)", 1,
          exhausted, "1% to 30%", within(0.01, 0.30)),
    Check("face", "(same statement: numerous interventions)",
          "invasive procedures per patient in that persistent subset (low-volume)", 1,
          interventions_if_exhausted, ">= 3", lambda v: v >= 3, unit="count"),
    # ---- external validation: published figures not used as inputs
    Check("external", "Obstetric PDPH: second EBP needed in 19.3% (EPiMAP, Gupta 2020, H); 8.3% (Delgado, H); "
          "11.1% (Stein 2014, H); 27.5% (Sassi 2025, H)",
          "epidural-ADP patients given an EBP who had two or more", 0, lambda r: repeat_ebp(r, "epidural"),
          "within the published range 8.3% to 27.5%", within(0.083, 0.275),
          "Inputs were first-EBP success 73% (Paech 2011) and a placeholder repeat success; these series were "
          "cited only for the attempt limit; Sassi 2025's timing effect is cited beside the Swiss odds ratio "
          "used. If it misses: no partial relief in the model, and the repeat-EBP success is a grade L "
          "placeholder"),
    Check("external", "Obstetric PDPH: EBP given in 68.4% (Delgado, H) / 64.6% (EPiMAP: 35.4% never patched, H)",
          "epidural-ADP patients (all symptomatic, onset >= 30 days before horizon) given an EBP", 0,
          lambda r: ebp_given(r, "epidural", presented_only=False), "60% to 75% (published +- ~7 pp)",
          within(0.60, 0.75),
          "Not fully independent: the EPiMAP 35.4% informed self_limiting_probability.epidural. If it misses: "
          "75% of these leaks close on their own (median 4 d); the severe share that is patched after a day "
          "(population.severe_headache_probability.epidural 0.5) and the 4-day window for the others are grade "
          "L placeholders, and the patient's own choice (EPiMAP: EBP rose with pain intensity) is not modelled"),
    Check("external", "SIH: repeat EBP in 34.5% of SIH (Korean J Pain 2022, H); > 1 EBP in 37.7% (Pusan BMC "
          "Neurol 2021, H)", "spontaneous patients given an EBP who had two or more", 0,
          lambda r: repeat_ebp(r, "spontaneous"), "25% to 48% (published +- 10 pp)", within(0.25, 0.48),
          "The model counts non-targeted patches only (targeted patches at the leak apart); the experienced "
          "center gives one before imaging to SLEC+ leaks only and one after a negative study (profile limits, "
          "grade L). If it misses low: the published series may count targeted patches as repeats, and come from "
          "services that patch before they image (as the low-volume profile, with two and two)"),
    Check("external", "Iatrogenic: repeat EBP in 9.2% (Korean J Pain 2022, H); PDPH > 1 EBP 13.6% (Pusan, H)",
          "post-LP and epidural patients given an EBP who had two or more", 0,
          lambda r: repeat_ebp(r, ("post_lp", "epidural")), "0% to 24% (published +- 10 pp)", within(0.0, 0.24),
          "If it misses: the 75% input (Safa-Tisseront) is complete relief; the 18% with partial relief count as "
          "failures in the model and get a repeat; patches now come sooner (the procedural team books them), "
          "before more of the leaks that a first patch misses could close on their own"),
    Check("external", "Need for EBP: SIH 70.5% (Pusan inpatients, H)",
          "presented spontaneous patients (onset >= 30 days before horizon) given an EBP", 0,
          lambda r: ebp_given(r, "spontaneous", presented_only=True), "55% to 85% (+- 15 pp)", within(0.55, 0.85),
          "Inpatient series: sicker than all who present, which would raise the published share, not lower it. If "
          "it misses: at the experienced center a SLEC+ leak gets one blind patch before imaging and every "
          "leak that imaging does not find two after it (profile limits, grade L); SLEC- leaks go to imaging "
          "first (early spine MRI, Farb 2019)"),
    Check("external", "Need for EBP: PDPH 45.5% (Pusan inpatients, H)",
          "presented post-LP patients (onset >= 30 days before horizon) given an EBP", 0,
          lambda r: ebp_given(r, "post_lp", presented_only=True), "30% to 60% (+- 15 pp)", within(0.30, 0.60),
          "Inpatient series: sicker than all who present; Al-Hashel 2022 (EBP in 0.7%) shows the spread"),
    Check("external", "SIH: 65% not diagnosed by a physician for > 3 months (Kapan 2025, M)",
          "presented spontaneous patients not diagnosed within 3 months (low-volume center: usual care)", 1,
          lambda r: not_diagnosed_within(r, 90), "50% to 80% (+- 15 pp)", within(0.50, 0.80),
          "Self-selected online survey of a patient community: biased toward long, difficult courses. If it "
          "misses: usual care adds the district's loop (recognition 0.55 a consultation, the next one a median "
          "30 d later, grade L/M) to a shared front door that takes a median of about 27 days to the first center"),
    Check("external", "(same figure, experienced center)",
          "presented spontaneous patients not diagnosed within 3 months (experienced center)", 0,
          lambda r: not_diagnosed_within(r, 90), "50% to 80% (+- 15 pp)", within(0.50, 0.80),
          "A center of this kind is not where the survey's patients were first seen"),
    Check("external", "SIH: median diagnostic delay 5 weeks (Schievink 2003, H)",
          "median onset-to-diagnosis of diagnosed spontaneous patients (low-volume center), days", 1,
          median_diagnosis_delay, "17.5 to 52.5 days (35 +- 50%)", within(17.5, 52.5),
          "Not independent: this figure anchored the front-door and misdiagnosis-return placeholders. If it "
          "misses: the front door alone takes a median of about 27 days (2.2 visits) to the first center, and each "
          "consultation the district misses (45%) adds a median 30 days (grade L)", unit="days"),
    Check("external", "(same figure, experienced center)",
          "median onset-to-diagnosis of diagnosed spontaneous patients (experienced center), days", 0,
          median_diagnosis_delay, "17.5 to 52.5 days (35 +- 50%)", within(17.5, 52.5),
          "If it misses: the front door takes a median of about 27 days, and the experienced center's "
          "recognition (0.70 a consultation, a proxy) still misses 30%, each miss adding a median 30 days",
          unit="days"),
    Check("external", "SIH: persistent headache after sealing in 20% (11/56) (Bern, Scutelnic 2025, H)",
          "spontaneous patients whose leak a treatment sealed, with residual symptoms after a seal (onset >= 1 yr "
          "before the horizon)", 0, residual_after_sealing, "10% to 30% (+- 10 pp)", within(0.10, 0.30),
          "Not independent: this figure and its delays set clinical.residual_symptoms "
          "(tools/derive_residual_symptoms.py); the check is that the fit carries over to the model's own "
          "delays from onset to seal"),
    Check("external", "SIH surgery at a specialist centre: 74% had > 90 days of symptoms before surgery "
          "(Volz 2024, H)", "operated spontaneous patients whose first surgery began > 90 days after onset "
          "(low-volume center referring)", 1, long_symptoms_before_surgery, "59% to 89% (+- 15 pp)",
          within(0.59, 0.89),
          "If it misses: every operated patient of this scenario was first referred (delay median 42 d plus "
          "waits), so almost all exceed 90 days; Freiburg also operates on direct presenters"),
    Check("external", "(same figure, experienced center)",
          "operated spontaneous patients whose first surgery began > 90 days after onset (experienced)", 0,
          long_symptoms_before_surgery, "59% to 89% (+- 15 pp)", within(0.59, 0.89),
          "If it misses: blind patches, their fading relief (median 74 days, grade L) and imaging come before an "
          "operation here, so few reach it within 90 days; it was 82% before that relief was modelled"),
    Check("external", "Bern score 5-9 points: a spinal leak found at myelography in 67% to 100% (Dobrocky 2019 "
          "JAMA Neurol, H)", "imaged spontaneous patients with a high Bern score whose leak imaging localized "
          "(experienced)", 0, localized_by_bern_class("high"), "57% to 100% (published - 10 pp)",
          within(0.57, 1.0),
          "The class shares by leak type (clinical.bern_class) and the odds ratios by class are inputs (grade L); "
          "the published figures were not. If it misses: the yields by technique (imaging_yield) are averages the "
          "classes must reproduce"),
    Check("external", "Bern score 0-2 points: a spinal leak found at myelography in 0% to 7% (Dobrocky 2019, H)",
          "imaged spontaneous patients with a low Bern score whose leak imaging localized (experienced)", 0,
          localized_by_bern_class("low"), "0% to 17% (published + 10 pp)", within(0.0, 0.17),
          "Not the same population: the published patients were suspected of SIH, and most with a low score have "
          "no spinal leak at all (two thirds of suspected patients had none found, Callen 2023), while every "
          "model patient has one. If it misses: the model has no suspected-but-no-leak patients, and its "
          "odds ratio for a low score among leaks that are there (0.25, grade L) is a placeholder"),
    Check("external", "SIH: about one quarter still symptomatic 1 year after surgery (Bern via Kapan 2025, M)",
          "operated spontaneous patients not resolved, or with residual symptoms, 1 year after surgery "
          "(experienced)", 0,
          symptomatic_year_after_surgery, "15% to 35% (+- 10 pp)", within(0.15, 0.35),
          "Surgical success 90% (Beck 2023) was an input; residual symptoms after a seal count as symptomatic. If "
          "it misses: most operated patients reach theatre late (row 13), where clinical.residual_symptoms "
          "(fitted to Bern's all-treatment cohort) gives 0.25 to 0.33, on top of failed surgeries"),
)


# ------------------------------------------------------------------------------------------------ running
def replications(result: RunResult) -> list[Rep]:
    patients = result.patients
    uses = result.resource_uses
    theatre = uses[uses["resource"] == "theatre"] if len(uses) else uses
    reps = []
    for rep, p in patients.groupby("replication", sort=True):
        t = theatre[theatre["replication"] == rep] if len(theatre) else theatre
        first = t.groupby("patient_id")["start_day"].min() if len(t) else pd.Series(dtype=float)
        reps.append(Rep(p[p["counted"]], first, result.scenario.horizon_days))
    return reps


def evaluate(runs: list[RunResult], checks: tuple[Check, ...] = CHECKS) -> list[Outcome]:
    reps = [replications(r) for r in runs]
    out = []
    for c in checks:
        if c.scenario == DIFF:
            values = np.array([c.fn(a) - c.fn(b) for a, b in zip(reps[0], reps[1], strict=True)], dtype=float)
        else:
            values = np.array([c.fn(r) for r in reps[c.scenario]], dtype=float)
        mean, _sd, low, high = t_interval(values)
        out.append(Outcome(c, mean, low, high))
    return out


def _fmt(v: float, unit: str) -> str:
    if math.isnan(v):
        return "n/a"
    return f"{100 * v:.1f}%" if unit == "share" else f"{v:.2f}" if unit == "ratio" else f"{v:.1f}"


def render_table(outcomes: list[Outcome], kind: str) -> str:
    """Markdown table of the checks of one kind ("face" or "external")."""
    head = ("| # | Statement (source) | Model figure | Scenario | Model value (95% CI) | Criterion | Holds |"
            " Note |\n|---|---|---|---|---|---|---|---|")
    rows = [head]
    for i, o in enumerate([o for o in outcomes if o.check.kind == kind], start=1):
        c = o.check
        ci = "" if math.isnan(o.low) else f" ({_fmt(o.low, c.unit)} to {_fmt(o.high, c.unit)})"
        verdict = {True: "yes", False: "**no**", None: "n/a"}[o.holds]
        cells = [str(i), c.statement, c.figure, LABELS[c.scenario], _fmt(o.mean, c.unit) + ci, c.criterion,
                 verdict, c.note]
        rows.append("| " + " | ".join(x.replace("|", "/") for x in cells) + " |")
    return "\n".join(rows)


def render_document(outcomes: list[Outcome], reps: int, seed: int) -> str:
    face = [o for o in outcomes if o.check.kind == "face"]
    ext = [o for o in outcomes if o.check.kind == "external"]

    def count(xs: list[Outcome]) -> str:
        return f"{sum(o.holds is True for o in xs)} of {len(xs)}"

    return f"""# Validation of csfsim

Generated by `make validate` (`python tools/validate_model.py --reps {reps} --seed {seed}`): the shipped scenarios
`{SCENARIOS[0]}` and `{SCENARIOS[1]}`, {reps} replications each on common random numbers, root seed {seed}.
Each figure is computed per replication; the table gives the mean and the t-based 95% CI across
replications. The verdict compares the mean with the criterion. Criteria were written down before the run and
nothing here was tuned: a miss stays a miss, with its likely reason.

Verification (the model does what it says) is in the test suite: queueing theory in
`tests/engines/test_verification.py`, properties over random scenarios in `tests/engines/test_properties.py`, bad
input in `tests/cli/test_bad_inputs.py`.

## Face validity against the seed text

Each statement of the clinical summary on prognosis and treatment that the model was built from, beside the
model figure that should reflect it.
Vague words were read as: "most of the time" > 50%; "usually" >= 75%; "often" >= 30%; "occasionally" 2-40%;
"rare" < 2%; "some", "a subset" a small minority. Holds: {count(face)}.

{render_table(outcomes, "face")}

## External validation against published figures not used as inputs

Published figures (source and grade in brackets) that `scenarios/base.toml` does not use as the
value of any parameter (checked against the `source` fields; where a figure anchored a placeholder this is said).
Tolerances are wide because the sources are small, selected or survey-based series. Holds: {count(ext)}.

{render_table(outcomes, "external")}

## Reading the misses

A miss means that the model and the published figure disagree by more than the stated tolerance. The likely
reasons given in the Note column are hypotheses; the parameters concerned are grade L placeholders in
`docs/parameters.md` and are the first candidates for sensitivity runs, not for silent re-tuning.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "docs" / "validation.md"))
    args = parser.parse_args(argv)
    started = time.time()
    result = compare([ROOT / s for s in SCENARIOS], reps=args.reps, seed=args.seed, jobs=args.jobs,
                     log_events=True, progress=False)
    outcomes = evaluate(result.runs)
    text = render_document(outcomes, args.reps, args.seed)
    print(f"{time.time() - started:.0f} s")
    Path(args.out).write_text(text, encoding="utf-8")
    for o in outcomes:
        print(f"{o.check.kind:8} {o.holds!s:5} {_fmt(o.mean, o.check.unit):>8}  {o.check.statement[:70]}")
    print(f"Written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
