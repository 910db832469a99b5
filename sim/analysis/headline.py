"""The headline metrics: what the console, the report's key table, its findings and its forest plot show first.

Each entry is (metric, group, title); the title comes from the metric dictionary (`sim.analysis.metrics`), so the
console, the table and the sentences name the same measure for the same patients."""

from __future__ import annotations

from sim.analysis.metrics import metric

_HEADLINE: tuple[tuple[str, str], ...] = (
    ("diagnosis_cif_365_days", "spontaneous"),
    ("time_to_resolution_rmst_365_days", "spontaneous"),
    ("time_to_resolution_km_median_days", "spontaneous"),
    ("share_resolved_by_365_days", "spontaneous"),
    ("share_persistent", "spontaneous"),
    ("share_in_pathway_at_horizon", "spontaneous"),
    ("ebp_per_patient", "all"),
    ("surgery_per_patient", "all"),
    ("embolization_per_patient", "spontaneous"),
    ("share_rih", "spontaneous"),
    ("share_residual_symptoms", "spontaneous"),
    ("share_complication", "all"),
    ("share_referred", "all"),
    ("symptom_days_mean", "all"),
)
HEADLINE: list[tuple[str, str, str]] = [(m, g, metric(m).title(g)) for m, g in _HEADLINE]
