"""The metric dictionary: every outcome csfsim reports, defined once (name, label, unit, population, denominator,
censoring rule, scale of its interval).

The console, summary.csv's metric names, the headline, the report's tables and docs/metrics.md (generated from
this module by `make docs`, tested for staleness) all read these entries, so a label, a unit or a population can
not differ between them. Values are computed per replication by `sim.analysis.stats` and summarized across
replications (mean, and a 95% interval on the metric's scale: `kind == "share"` on the logit scale).
"""

from __future__ import annotations

from dataclasses import dataclass

CARE = "counted patients who presented at a center before the horizon"
ALL = "every counted patient (onset after the warm-up and at least run.follow_up_days before the horizon)"
ADMIN = "none needed: a count or a share at the horizon, over everyone in the population"
RMST_TAU_DAYS = 365  # the restriction of the restricted mean times (days from onset)
CIF_DAYS = 365  # the day by which cumulative incidences are read (days from onset)


@dataclass(frozen=True, slots=True)
class Metric:
    """One reported outcome. `kind`: share (a proportion, interval on the logit scale), time (days), rate (per
    patient), count (patients) or money / qaly (economics)."""

    name: str
    label: str
    unit: str
    kind: str
    population: str
    denominator: str
    censoring: str

    def title(self, group: str) -> str:
        """The label with its group and unit, as the console and the report's tables show it."""
        return f"{self.label}, {group} ({self.unit})"


def _per_patient(name: str, what: str) -> Metric:
    return Metric(name, f"{what} per patient", "per patient", "rate", CARE, "patients who presented",
                  "events before the horizon only (a patient still in the pathway may have more later)")


_METRICS: tuple[Metric, ...] = (
    Metric("n_patients", "Patients", "patients", "count", ALL, "-", ADMIN),
    Metric("n_presented", "Patients who presented", "patients", "count", CARE, "-", ADMIN),
    Metric("share_resolved_without_care", "Resolved before presenting", "share", "share", ALL, "every patient",
           "leaks still open at the horizon count as not resolved"),
    Metric("share_diagnosed", "Diagnosed by the horizon", "share", "share", CARE, "patients who presented",
           "biased low for late arrivals (less follow-up); see diagnosis_cif_365_days"),
    Metric("diagnosis_cif_365_days", "Diagnosed within a year of onset (cumulative incidence)", "share",
           "share", CARE, "patients who presented",
           "Aalen-Johansen: a leak closing on its own before diagnosis is a competing event; patients not "
           "diagnosed by the horizon are censored there (also those who gave up, whose day of giving up is not "
           "recorded); nan when no patient of the group could be followed for a year"),
    Metric("diagnosis_delay_mean_days", "Diagnosis delay, mean among the diagnosed", "days from onset", "time",
           CARE, "patients diagnosed before the horizon",
           "conditional on diagnosis: leaves out patients never or not yet diagnosed (biased under censoring; "
           "prefer diagnosis_cif_365_days)"),
    Metric("diagnosis_delay_median_days", "Diagnosis delay, median among the diagnosed", "days from onset", "time",
           CARE, "patients diagnosed before the horizon", "conditional on diagnosis, as the mean"),
    Metric("time_to_resolution_rmst_365_days",
           f"Onset to first resolution, restricted mean over {RMST_TAU_DAYS} days", "days", "time", CARE,
           "patients who presented",
           f"Kaplan-Meier of the days to the first resolution (`first_resolved_day`: a later recurrence does not "
           f"undo it), censored at the horizon for those never resolved; the area under the curve to "
           f"{RMST_TAU_DAYS} days, i.e. the mean of min(time to first resolution, {RMST_TAU_DAYS}); nan when no "
           f"patient of the group could be followed that long"),
    Metric("time_to_resolution_km_median_days", "Onset to first resolution, Kaplan-Meier median", "days", "time",
           CARE, "patients who presented", "as the restricted mean; nan when fewer than half resolve within "
           "follow-up"),
    Metric("time_to_resolution_mean_days", "Onset to resolution, mean among the resolved", "days", "time", CARE,
           "patients resolved before the horizon",
           "conditional on resolution: leaves out the unresolved (biased under censoring; prefer "
           "time_to_resolution_rmst_365_days)"),
    Metric("time_to_resolution_median_days", "Onset to resolution, median among the resolved", "days", "time",
           CARE, "patients resolved before the horizon", "conditional on resolution, as the mean"),
    Metric("share_resolved_by_90_days", "Resolved within 90 days of onset", "share", "share", CARE,
           "patients who presented with onset at least 90 days before the horizon",
           "patients with less follow-up are left out, so none is censored"),
    Metric("share_resolved_by_365_days", "Resolved within a year of onset", "share", "share", CARE,
           "patients who presented with onset at least 365 days before the horizon",
           "patients with less follow-up are left out, so none is censored"),
    _per_patient("ebp_per_patient", "Blood patches"),
    _per_patient("targeted_patch_per_patient", "Targeted patches"),
    _per_patient("fibrin_patch_per_patient", "Fibrin sealant patches"),
    _per_patient("surgery_per_patient", "Surgeries"),
    _per_patient("embolization_per_patient", "Embolizations"),
    _per_patient("spinal_imaging_per_patient", "Spinal imaging studies"),
    _per_patient("consultations_per_patient", "Consultations"),
    Metric("share_persistent", "Persistent symptoms", "share", "share", CARE, "patients who presented",
           "state at the horizon: undiagnosed after the last consultation, or every treatment tried"),
    Metric("share_in_pathway_at_horizon", "Still in the pathway at the horizon", "share", "share", CARE,
           "patients who presented", "the censored: neither resolved nor persistent at the horizon"),
    Metric("share_rih", "Rebound intracranial hypertension", "share", "share", CARE, "patients who presented",
           "RIH before the horizon"),
    Metric("share_recurred", "Recurrence after a success", "share", "share", CARE, "patients who presented",
           "recurrences before the horizon"),
    Metric("share_referred", "Referred", "share", "share", CARE, "patients who presented",
           "referrals before the horizon"),
    Metric("share_leak_localized", "Leak localized by spinal imaging", "share", "share", CARE,
           "patients who presented", "imaging before the horizon"),
    Metric("share_residual_symptoms", "Residual symptoms after a seal", "share", "share", CARE,
           "spontaneous patients whose leak a treatment sealed before the horizon",
           "residual symptoms that begin at a seal before the horizon (`clinical.residual_symptoms`)"),
    Metric("residual_days_mean", "Days with residual symptoms per patient", "days", "time", CARE,
           "patients who presented", "days up to the horizon; not counted in symptom_days"),
    Metric("share_complication", "A complication of treatment", "share", "share", CARE, "patients who presented",
           "intracranial bleeding after a patch, permanent deficit after surgery or pain after embolization, "
           "after procedures before the horizon (`[complications]`)"),
    Metric("share_leak_complication", "A complication of the leak itself", "share", "share",
           "counted patients with a spontaneous leak, whether or not they reached care", "spontaneous patients",
           "a subdural haematoma or superficial siderosis that began while the leak was open (from the onset to "
           "`first_resolved_day`, its first seal or closure) and before the horizon "
           "(`[complications.subdural_haematoma]`, `[complications.superficial_siderosis]`); nan for a group "
           "without spontaneous leaks"),
    Metric("symptom_days_mean", "Symptom days per patient", "days", "time", CARE, "patients who presented",
           "days with symptoms up to the horizon (a patient with less follow-up counts fewer days)"),
    Metric("symptom_days_per_month", "Days with symptoms per month of follow-up", "days per month", "rate", CARE,
           "months of follow-up of the patients who presented, each from her onset to the horizon",
           "days with the leak's symptoms or with residual symptoms after a seal, up to the horizon, over the "
           "months each patient was followed (a person-time rate: short follow-up counts for little)"),
    Metric("waiting_days_mean", "Days queueing per patient", "days", "time", CARE, "patients who presented",
           "queueing for resources up to the horizon, booking delays excluded"),
    Metric("cost_per_patient", "Health-service cost per patient", "currency, discounted", "money", ALL,
           "every patient", "from onset to the horizon"),
    Metric("qaly_per_patient", "QALYs per patient", "QALYs, discounted", "qaly", ALL, "every patient",
           "from onset to the horizon"),
    Metric("qaly_loss_per_patient", "QALYs lost per patient", "QALYs, discounted", "qaly", ALL, "every patient",
           "against full health, from onset to the horizon"),
    Metric("work_days_lost_per_patient", "Working days lost per patient", "days", "time", ALL, "every patient",
           "symptom days up to the horizon x working share of a week x employed share x work lost while "
           "symptomatic (`[productivity]`)"),
    Metric("productivity_cost_per_patient", "Productivity cost per patient (societal perspective)",
           "currency, discounted", "money", ALL, "every patient",
           "those working days at median earnings, discounted from onset; add to the health-service cost for a "
           "societal total"),
    Metric("resource_mean_wait_days", "Mean queue wait", "days", "time", "uses of the resource that started",
           "resource uses started before the horizon", "waits of patients still queueing at the horizon are left "
           "out"),
    Metric("resource_utilization", "Utilization", "share of capacity", "share",
           "the resource's servers, or the slots of a session-booked resource",
           "capacity x horizon, or the slots offered before the horizon",
           "busy time up to the horizon; a session-booked resource counts the slots any patient group used"),
    Metric("resource_mean_list_length", "Mean waiting-list length", "patients", "count",
           "patients waiting for the resource (with the hospital's other patients on a session-booked list)",
           "horizon (a time average)", "the list from day 0 to the horizon"),
)
METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}


def metric(name: str) -> Metric:
    """The dictionary entry of a metric (KeyError naming it when it has none)."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not in sim/analysis/metrics.py") from None


def markdown() -> str:
    """docs/metrics.md."""
    lines = ["# Metrics", "",
             "Generated from `sim/analysis/metrics.py` by `make docs` (a test fails when this file is stale). Each",
             "metric is computed per replication for each patient group (`all`, each etiology, and each home center",
             "when there are several) and summarized across replications: mean, sd and a 95% confidence interval",
             "(t-based; for shares on the logit scale, so that it stays within [0, 1]). Paired differences between",
             "scenarios (comparison.csv) are in the metric's unit: for a share, a difference of 0.05 is 5",
             "percentage points, which the columns diff_pp, diff_pp_ci95_low and diff_pp_ci95_high give.",
             "",
             "The patients counted are those with onset after `run.warmup_days` and at least `run.follow_up_days`",
             "(default 365) before the horizon, so that each is followed at least that long; later onsets are",
             "simulated and load the resources (the resource metrics count them) but are left out of the patient",
             "metrics. Times are from onset; measures accumulated \"to the horizon\" cover each patient's own",
             "follow-up, between `run.follow_up_days` and the horizon less the warm-up.",
             "",
             "| metric | label | unit | population | denominator | censoring |", "|---|---|---|---|---|---|"]
    lines += [f"| `{m.name}` | {m.label} | {m.unit} | {m.population} | {m.denominator} | {m.censoring} |"
              for m in _METRICS]
    return "\n".join(lines) + "\n"
