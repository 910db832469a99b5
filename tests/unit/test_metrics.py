"""The metric dictionary defines every metric a run reports, once; the headline, the report's findings and the
console read it."""

from __future__ import annotations

import numpy as np
import pytest

from sim.analysis.headline import HEADLINE
from sim.analysis.metrics import METRICS, metric
from sim.analysis.stats import is_share, replication_metrics
from sim.config.scenario import load_scenario
from sim.report.html import FINDINGS, SENTENCES
from sim.runs.replication import run_replication
from tests.helpers import LOW_VOLUME, PERIOD


def test_every_metric_a_run_reports_is_in_the_dictionary_and_every_entry_is_reported():
    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 400})
    r = run_replication(s, 1, 0)
    reported = set(replication_metrics(r.patients, r.resources, s.horizon_days)["metric"])
    assert reported == set(METRICS)


def test_the_interval_scale_follows_the_dictionary():
    assert all(is_share(name) == (m.kind == "share") for name, m in METRICS.items())
    with pytest.raises(KeyError, match=r"not in sim/analysis/metrics\.py"):
        metric("share_of_nothing")


def test_headline_titles_come_from_the_dictionary_and_findings_are_headline_measures():
    assert all(title == metric(m).title(g) for m, g, title in HEADLINE)
    assert set(FINDINGS) <= {(m, g) for m, g, _ in HEADLINE}
    assert all(m in SENTENCES for m, _ in FINDINGS)
    # no headline measure is a mean or median over the resolved or diagnosed only (biased under censoring)
    assert not [m for m, _, _ in HEADLINE if "among the" in metric(m).label]


def test_heavy_censoring_biases_the_mean_over_the_resolved_but_not_the_restricted_mean():
    """A horizon of 400 days leaves most spontaneous leaks unresolved: the mean over the resolved is far below the
    restricted mean of the same patients over 365 days, which counts the unresolved as still waiting."""
    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 400})
    r = run_replication(s, 2, 0)
    m = replication_metrics(r.patients, r.resources, s.horizon_days)
    value = m[m["group"] == "spontaneous"].set_index("metric")["value"]
    assert value["share_in_pathway_at_horizon"] > 0.3
    assert value["time_to_resolution_mean_days"] < 0.8 * value["time_to_resolution_rmst_365_days"]
    assert 0.0 <= value["diagnosis_cif_365_days"] <= 1.0 and np.isfinite(value["diagnosis_cif_365_days"])


def test_measures_over_a_year_are_missing_when_nobody_was_followed_for_a_year():
    """With 200 days of follow-up a restricted mean or an incidence over 365 days would be extrapolated."""
    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 200})
    r = run_replication(s, 2, 0)
    m = replication_metrics(r.patients, r.resources, s.horizon_days).set_index(["metric", "group"])["value"]
    assert np.isnan(m[("time_to_resolution_rmst_365_days", "all")]) and np.isnan(m[("diagnosis_cif_365_days", "all")])
