"""The headline metrics: what the console, the report's table and its figures show first, with their labels.

Each entry is (metric, group, label): a metric of `sim.analysis.stats` for one patient group."""

from __future__ import annotations

HEADLINE: list[tuple[str, str, str]] = [
    ("diagnosis_delay_median_days", "spontaneous", "Diagnosis delay, spontaneous, median (days)"),
    ("diagnosis_delay_mean_days", "all", "Diagnosis delay, all, mean (days)"),
    ("time_to_resolution_median_days", "spontaneous", "Onset to resolution, spontaneous, median (days)"),
    ("share_resolved_by_365_days", "spontaneous", "Resolved within a year, spontaneous (share)"),
    ("share_persistent", "spontaneous", "Persistent symptoms, spontaneous (share)"),
    ("share_in_pathway_at_horizon", "spontaneous", "Still in pathway at horizon, spontaneous (share)"),
    ("ebp_per_patient", "all", "Blood patches per patient"),
    ("surgery_per_patient", "all", "Surgeries per patient"),
    ("embolization_per_patient", "spontaneous", "Embolizations per patient, spontaneous"),
    ("share_rih", "spontaneous", "Rebound hypertension, spontaneous (share)"),
    ("share_referred", "all", "Referred (share)"),
    ("symptom_days_mean", "all", "Symptom days per patient, mean"),
]
