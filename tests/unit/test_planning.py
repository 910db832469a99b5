"""Planning what-ifs: networks, referral, capacity, schedules, demand over time, sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.config.parameters import ResourceSpec
from sim.config.scenario import load_scenario
from sim.engines.schedule import next_open
from sim.runs.replication import run_replication
from sim.runs.sweep import parse_set, sweep
from tests.helpers import EXPERIENCED, LOW_VOLUME, PERIOD, ROOT

NETWORK = ROOT / "scenarios" / "regional_network.toml"


def test_a_network_with_one_active_center_equals_the_single_center_model():
    single = load_scenario(EXPERIENCED)
    network = load_scenario(NETWORK, overrides={
        "centers.specialist.catchment_adults": single.population.catchment_adults,
        "centers.district_north.catchment_adults": 0, "centers.district_east.catchment_adults": 0,
        "centers.district_west.catchment_adults": 0})
    a = run_replication(single, 4, 0).patients
    b = run_replication(network, 4, 0).patients
    pd.testing.assert_frame_equal(a, b)


def test_every_referral_arrives_at_the_receiving_center():
    s = load_scenario(LOW_VOLUME)
    r = run_replication(s, 3, 0, log_events=True)
    ev, p = r.events, r.patients.set_index("patient_id")
    referred = ev[ev["activity"] == "referred"]
    assert len(referred) > 10
    for row in referred.itertuples():
        later = ev[(ev["patient_id"] == row.patient_id) & (ev["day"] >= row.day)]
        arrived = ((later["center"] == "specialist") & (later["activity"] == "consultation")).any()
        patient = p.loc[row.patient_id]
        # otherwise the leak closed during the referral delay, or the horizon came first
        assert arrived or patient["final_state"] in ("resolved", "in_pathway_at_horizon"), row
    assert (p.loc[p["referred"], "center"] == "specialist").mean() > 0.9


def test_doubling_capacity_on_a_saturated_resource_cuts_its_wait():
    overrides = {"population.incidence_per_100k_per_year.post_lp": 150,
                 "centers.district.resources.procedure_room.service_days": {"family": "fixed", "value": 0.7}}
    base = load_scenario(LOW_VOLUME, overrides=overrides)
    doubled = load_scenario(LOW_VOLUME,
                            overrides={**overrides, "centers.district.resources.procedure_room.capacity": 2})

    def wait(s):
        res = run_replication(s, 8, 0).resources
        return res[(res["center"] == "district") & (res["resource"] == "procedure_room")].iloc[0]

    busy, relieved = wait(base), wait(doubled)
    assert busy["utilization"] > 0.7
    assert relieved["mean_wait_days"] < 0.5 * busy["mean_wait_days"]


def test_next_open_follows_weekly_sessions_and_annual_closures():
    spec = ResourceSpec(1, None, None, open_windows=((0.0, 1.0), (3.0, 4.0)), schedule_cycle_days=7.0,  # type: ignore[arg-type]
                        closed_periods=((213.0, 244.0),))
    assert next_open(0.5, spec) == 0.5
    assert next_open(1.5, spec) == 3.0
    assert next_open(5.0, spec) == 7.0
    # day 220 falls in the August closure; the first weekly session after day 244 follows
    t = next_open(220.0, spec)
    assert (t >= 244.0 and (t % 7.0) < 1.0) or 3.0 <= (t % 7.0) < 4.0
    assert next_open(365.25 + 220.0, spec) >= 365.25 + 244.0


def test_scheduled_resource_starts_service_only_in_its_sessions():
    s = load_scenario(LOW_VOLUME, overrides={
        "centers.district.resources.myelography.open_windows": [[0, 1], [3, 4]],
        "centers.district.resources.theatre.closed_periods": [[213, 244]]})
    uses = run_replication(s, 2, 0, log_events=True).resource_uses
    myelo = uses[(uses["center"] == "district") & (uses["resource"] == "myelography")]
    assert len(myelo) > 10
    pos = myelo["start_day"].to_numpy() % 7.0
    assert (((pos >= 0) & (pos < 1)) | ((pos >= 3) & (pos < 4))).all()
    theatre = uses[(uses["center"] == "district") & (uses["resource"] == "theatre")]
    doy = theatre["start_day"].to_numpy() % 365.25
    assert not ((doy >= 213) & (doy < 244)).any()


def test_demand_growth_and_seasonality_shape_arrivals():
    flat = run_replication(load_scenario(EXPERIENCED), 1, 0).patients
    grown = run_replication(load_scenario(EXPERIENCED, overrides={"population.demand.growth_per_year": 0.3}),
                            1, 0).patients
    first, last = (grown["onset_day"] < 365).sum(), (grown["onset_day"] >= 1825 - 365).sum()
    assert last > 2.0 * first  # 1.3^4 = 2.9
    seasonal = run_replication(load_scenario(EXPERIENCED, overrides={
        "population.demand.seasonality_amplitude": 0.8, "population.demand.seasonality_peak_day": 0.0}),
        1, 0).patients
    doy = seasonal["onset_day"] % 365.25
    winter = ((doy < 45) | (doy > 320)).sum()
    summer = ((doy > 137) & (doy < 228)).sum()
    assert winter > 2 * summer
    # constant demand keeps exactly the same patients whatever the thinning stream
    zero = run_replication(load_scenario(EXPERIENCED, overrides={"population.demand.growth_per_year": 0.0}),
                           1, 0).patients
    pd.testing.assert_frame_equal(flat, zero)


def test_growth_keeps_common_random_numbers_for_patients_who_arrive_in_both():
    # thinning only removes candidates, so the early patients (rate factor ~1) are mostly shared
    a = run_replication(load_scenario(EXPERIENCED), 1, 0).patients
    b = run_replication(load_scenario(EXPERIENCED, overrides={"population.demand.growth_per_year": -0.1}),
                        1, 0).patients
    shared = np.intersect1d(a["onset_day"].to_numpy(), b["onset_day"].to_numpy())
    assert len(shared) > 0.8 * len(b)


def test_postcode_lottery_metrics_by_home_center():
    from sim.analysis.stats import replication_metrics

    s = load_scenario(NETWORK)
    r = run_replication(s, 1, 0)
    m = replication_metrics(r.patients, r.resources, s.horizon_days)
    homes = {g for g in m["group"] if g.startswith("home:")}
    assert {"home:specialist", "home:district_north", "home:district_east/spontaneous"} <= homes


def test_a_sweep_of_one_value_equals_a_plain_run():
    from sim.runs.experiment import run

    path, values = parse_set("centers.district.resources.myelography.capacity=1")
    assert (path, values) == ("centers.district.resources.myelography.capacity", [1])
    result = sweep(LOW_VOLUME, [(path, values)], reps=2, seed=3, progress=False)
    plain = run(load_scenario(LOW_VOLUME), reps=2, seed=3, log_events=False, progress=False)
    pd.testing.assert_frame_equal(result.runs[0].per_replication, plain.per_replication)


def test_sweep_grid_writes_table_and_plot(tmp_path):
    settings = [parse_set("centers.district.resources.myelography.capacity=1,2"),
                parse_set("referral.district.after_failed_ebp=0,1")]
    out = tmp_path / "sw"
    result = sweep(LOW_VOLUME, settings, reps=2, seed=1, out=out, progress=False,
                   metric="share_referred", group="spontaneous")
    assert len(result.runs) == 4
    t = pd.read_csv(out / "sweep.csv")
    assert {"centers.district.resources.myelography.capacity", "referral.district.after_failed_ebp"} <= set(t.columns)
    assert (out / "sweep.png").stat().st_size > 1000 and (out / "sweep.svg").exists()
    ref = t[(t["metric"] == "share_referred") & (t["group"] == "spontaneous")]
    # referring after one failed blood patch refers more spontaneous leaks
    by_policy = ref.groupby("referral.district.after_failed_ebp")["mean"].mean()
    assert by_policy[1] > by_policy[0]


def test_sweep_over_a_patient_group_list_tabulates_and_plots(tmp_path):
    settings = [parse_set("referral.district.after_failed_ebp=1"), parse_set("run.horizon_days=365"),
                parse_set("run.follow_up_days=0"),
                parse_set('referral.district.after_failed_ebp_for=["all"],["spontaneous"]')]
    out = tmp_path / "groups"
    sweep(LOW_VOLUME, settings, reps=2, seed=1, out=out, progress=False, metric="share_referred", group="post_lp")
    t = pd.read_csv(out / "sweep.csv")
    ref = t[(t["metric"] == "share_referred") & (t["group"] == "post_lp")].set_index(
        "referral.district.after_failed_ebp_for")["mean"]
    assert ref["spontaneous"] < ref["all"]  # post-LP leaks are referred only when the policy covers them
    assert (out / "sweep.png").stat().st_size > 1000


@pytest.mark.parametrize("text", ["nonsense", "a.b=", "=1,2"])
def test_bad_set_is_a_clear_error(text):
    from sim.errors import ScenarioError

    with pytest.raises(ScenarioError, match="--set"):
        parse_set(text)


def test_volume_feeds_experience_when_enabled(write_toml):
    from sim.config.parameters import VolumeOutcome

    vo = VolumeOutcome(True, half_saturation_cases_per_year=20, floor_multiplier=0.6)
    assert vo.multiplier(0) == pytest.approx(0.6)
    assert vo.multiplier(20) == pytest.approx(0.8)
    assert vo.multiplier(1e9) == pytest.approx(1.0)
    on = {"volume_outcome.enabled": True}
    base = load_scenario(NETWORK)
    fed = load_scenario(NETWORK, overrides=on)
    # centralizing one etiology needs shares per etiology, so the network is written in shares (0.25 each)
    in_shares = write_toml(NETWORK.read_text(encoding="utf-8").replace("catchment_adults = 250_000",
                                                                       "catchment_share = 0.25"))
    centralized = load_scenario(in_shares, overrides={**on, "centers.specialist.catchment_share": {
        "post_lp": 0.25, "epidural": 0.25, "spinal_surgery": 0.25, "spontaneous": 1.0},
        **{f"centers.{d}.catchment_share": {"post_lp": 0.25, "epidural": 0.25, "spinal_surgery": 0.25,
                                            "spontaneous": 0.0} for d in ("district_north", "district_east",
                                                                          "district_west")}})

    def spontaneous_diagnosis_delay(s):
        p = pd.concat([run_replication(s, 5, r).patients for r in range(3)])
        sp = p[(p["etiology"] == "spontaneous") & p["presented_day"].notna()]
        return (sp["diagnosed_day"] - sp["onset_day"]).median()

    delay_base = spontaneous_diagnosis_delay(base)
    delay_fed = spontaneous_diagnosis_delay(fed)
    delay_central = spontaneous_diagnosis_delay(centralized)
    # small district volumes lower recognition when volume feeds experience; concentrating cases helps
    assert delay_fed > delay_base
    assert delay_central < delay_fed


def test_resource_timeseries_adds_up_to_the_replication_totals():
    from sim.analysis.planning import overlap_per_bin, resource_timeseries

    assert overlap_per_bin(np.array([0.5, 1.5]), np.array([2.5, 1.75]), np.array([0.0, 1.0, 2.0, 3.0])) == \
        pytest.approx([0.5, 1.25, 0.5])
    s = load_scenario(LOW_VOLUME)
    r = run_replication(s, 2, 0, log_events=True)
    ts = resource_timeseries(r.resource_uses, r.resources, s.horizon_days)
    for row in r.resources.itertuples():
        sel = ts[(ts["center"] == row.center) & (ts["resource"] == row.resource)]
        width = sel["period_end_day"] - sel["period_start_day"]
        assert sel["starts"].sum() == row.n_served
        assert (sel["utilization"] * width).sum() / s.horizon_days == pytest.approx(row.utilization, rel=1e-6,
                                                                                     abs=1e-9)


def test_mser_finds_the_end_of_an_initial_transient():
    from sim.runs.warmup import mser

    rng = np.random.default_rng(1)
    series = np.concatenate([np.linspace(0, 50, 200), 50 + rng.normal(0, 2, 1800)])
    cut, stats = mser(series)
    assert 150 <= cut <= 400 and stats.size > 0
    assert mser(50 + rng.normal(0, 2, 2000))[0] < 300


def test_warmup_command_writes_plot(tmp_path):
    from sim.runs.warmup import choose_warmup

    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 900})
    table, cut = choose_warmup(s, reps=2, seed=1, out=tmp_path / "wu")
    assert 0 <= cut <= 450 and (tmp_path / "wu" / "warmup.png").stat().st_size > 1000
    assert table["in_pathway_mean"].iloc[-1] > 0


def _timeseries_reference(uses, resources, horizon_days, bin_days=365.25 / 12):
    """The planner table row by row, filtering the uses per resource: the specification the array version keeps."""
    from sim.analysis.planning import overlap_per_bin

    edges = np.append(np.arange(0.0, horizon_days, bin_days), horizon_days)
    width = np.diff(edges)
    rows = []
    rep = int(resources["replication"].iloc[0])
    for row in resources.itertuples(index=False):
        u = uses[(uses["center"] == row.center) & (uses["resource"] == row.resource)]
        req = u["request_day"].to_numpy(dtype=float)
        start = u["start_day"].to_numpy(dtype=float)
        end = np.minimum(u["end_day"].to_numpy(dtype=float), horizon_days)
        b_start = np.clip(np.searchsorted(edges, start, side="right") - 1, 0, width.size - 1)
        n_start = np.bincount(b_start, minlength=width.size)
        wait_sum = np.bincount(b_start, weights=start - req, minlength=width.size)
        n_req = np.bincount(np.clip(np.searchsorted(edges, req, side="right") - 1, 0, width.size - 1),
                            minlength=width.size)
        busy = overlap_per_bin(start, end, edges)
        queued = overlap_per_bin(req, start, edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_wait = np.where(n_start > 0, wait_sum / n_start, np.nan)
        for i in range(width.size):
            rows.append((rep, row.center, row.resource, edges[i], edges[i + 1], int(n_req[i]), int(n_start[i]),
                         mean_wait[i], queued[i] / width[i], busy[i] / (row.capacity * width[i])))
    return pd.DataFrame(rows, columns=["replication", "center", "resource", "period_start_day", "period_end_day",
                                       "requests", "starts", "mean_wait_days", "mean_queue_length", "utilization"])


@pytest.mark.parametrize("path, horizon", [(LOW_VOLUME, 1825.0), (LOW_VOLUME, 100.0),
                                           (ROOT / "scenarios" / "regional_network.toml", 730.0)])
def test_resource_timeseries_is_the_row_by_row_table_exactly(path, horizon):
    from sim.analysis.planning import resource_timeseries

    s = load_scenario(path, overrides={**PERIOD, "run.horizon_days": horizon})
    r = run_replication(s, 3, 1, log_events=True)
    got = resource_timeseries(r.resource_uses, r.resources, s.horizon_days)
    want = _timeseries_reference(r.resource_uses, r.resources, s.horizon_days)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.to_csv(index=False) == want.to_csv(index=False)
    empty = resource_timeseries(r.resource_uses.iloc[:0], r.resources, s.horizon_days)
    pd.testing.assert_frame_equal(empty, _timeseries_reference(r.resource_uses.iloc[:0], r.resources,
                                                               s.horizon_days), check_exact=True)
