"""The [uncertainty] section: validation with named fields, defaults by grade, draws, PSA and sensitivity runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from scipy import stats as sps

from sim.cli import main
from sim.config.distributions import Distribution
from sim.config.scenario import load_scenario
from sim.config.uncertainty import parameter_space, total_dims
from sim.errors import ScenarioError
from sim.runs.experiment import run
from sim.runs.psa import OUTCOMES, psa, sample_seed, sensitivity
from tests.helpers import EXPERIENCED, LOW_VOLUME

TINY = """
[scenario]
name = "tiny {name}"
[run]
horizon_days = 120
follow_up_days = 0
[population.catchment]
adults = 100_000
[population.incidence_per_100k_per_year]
post_lp = 15
epidural = 8
spinal_surgery = 4
spontaneous = 25
[centers.c]
profile = "{profile}"
catchment_share = 1.0
refers_to = "{refers}"
[centers.s]
profile = "experienced"
catchment_share = 0.0
"""


@pytest.fixture
def tiny(write_toml):
    def make(name: str = "a", profile: str = "experienced", extra: str = "") -> str:
        refers = "s" if profile == "low_volume" else ""
        text = TINY.format(name=name, profile=profile, refers=refers) + extra
        return str(write_toml(text, f"{name}.toml"))

    return make


@pytest.mark.parametrize(("extra", "field", "expected"), [
    ('"clinical.ebp_first_success.post_lp" = { family = "gamma", cv = 0.1 }',
     "uncertainty.parameters.clinical.ebp_first_success.post_lp.family", "only for a rate, days or a cost"),
    ('"clinical.no_such_thing" = { family = "beta", n = 10 }',
     "uncertainty.parameters.clinical.no_such_thing", "the dotted path of a parameter"),
    ('"costs.ebp" = { family = "gamma", cv = 0.1, sd = 4 }', "uncertainty.parameters.costs.ebp.sd", "only "),
    ('"costs.ebp" = { family = "gamma", ci95 = [500, 100] }', "uncertainty.parameters.costs.ebp.ci95",
     "low < high"),
    ('"costs.ebp" = { family = "wobbly" }', "uncertainty.parameters.costs.ebp.family", "one of fixed, beta"),
    ('"utilities.rih" = { family = "beta", n = -3 }', "uncertainty.parameters.utilities.rih",
     "effective sample size > 0"),
    ('"clinical.ebp_max_blind.post_lp" = { family = "gamma", cv = 0.2 }',
     "uncertainty.parameters.clinical.ebp_max_blind.post_lp", "a continuous parameter"),
    ('"population.spontaneous_leak_type.indeterminate" = { family = "beta", n = 5 }',
     "uncertainty.parameters.population.spontaneous_leak_type.indeterminate", "dirichlet"),
])
def test_bad_uncertainty_entries_name_the_field(write_toml, extra, field, expected):
    path = write_toml(TINY.format(name="x", profile="experienced", refers="") + "\n[uncertainty.parameters]\n" + extra)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.field == field and expected in err.value.expected, str(err.value)
    assert err.value.file == str(path)


def test_bad_by_grade_and_cli_exit_code(write_toml, capsys):
    path = write_toml(TINY.format(name="x", profile="experienced", refers="") +
                      '\n[uncertainty.by_grade]\nL = { n = 10 }\n')
    with pytest.raises(ScenarioError, match=r"uncertainty.by_grade.L = .*effective sample size"):
        load_scenario(path)
    assert main(["psa", str(path), "--samples", "2", "--reps", "1", "--out", str(path.parent / "o")]) == 2
    err = capsys.readouterr().err
    assert "uncertainty.by_grade.L" in err and "Traceback" not in err
    assert not (path.parent / "o").exists()


def test_defaults_by_grade_and_listed_distributions():
    s = load_scenario(EXPERIENCED)
    space = {u.path: u for u in parameter_space(s)}
    # listed: beta from counts, centred on the value
    u = space["clinical.ebp_first_success.post_lp"]
    assert u.family == "beta" and u.spread == (504.0,)
    draw = u.values([0.5])["clinical.ebp_first_success.post_lp"]
    assert draw == pytest.approx(sps.beta.ppf(0.5, 0.75 * 504, 0.25 * 504))
    # default by grade: an L probability gets beta n = 10, an L rate gamma cv = 0.5, H cost none listed
    assert space["profiles.low_volume.mri_reading_sensitivity"].spread == (10.0,)
    assert space["population.incidence_per_100k_per_year.post_lp"].family == "gamma"
    assert space["population.incidence_per_100k_per_year.post_lp"].spread == (0.5,)
    # grade '-' settings, counts and flags do not vary
    for fixed in ("run.horizon_days", "economics.willingness_to_pay_per_qaly", "clinical.ebp_max_blind.post_lp",
                  "profiles.experienced.offers_embolization", "imaging_yield.refined.indeterminate"):
        assert fixed not in space
    # a share table varies as one Dirichlet input whose draws sum to 1
    d = space["population.spontaneous_leak_type"]
    shares = d.values([0.2, 0.4, 0.6, 0.8])
    assert d.dims == 4 and sum(shares.values()) == pytest.approx(1.0)
    # a duration distribution is scaled by a factor with mean 1
    dur = space["population.care_seeking_days.spontaneous"]
    assert isinstance(dur.base, Distribution)
    scaled = dur.values([0.9])["population.care_seeking_days.spontaneous"]
    factor = sps.gamma.ppf(0.9, 1 / 0.5**2, scale=0.5**2)
    assert scaled == {"family": "lognormal", "median": pytest.approx(7.0 * factor), "sigma": 1.0}
    # ci95 for gamma: sd = (hi - lo) / 3.92 around the value
    cons = space["costs.consultation"]
    assert cons.spread[0] == pytest.approx((125 - 90) / (2 * 1.959964) / 107, rel=1e-4)
    # each share table adds its entries less one: the leak-type mix (4) and the four Bern-class tables (3 each)
    assert total_dims(parameter_space(s)) == len(space) + 3 + 4 * 2
    assert space["clinical.bern_class.csf_venous_fistula"].dims == 3


def test_scenario_moves_the_distribution_and_can_fix_a_parameter(tiny):
    path = tiny(extra='\n[costs]\nebp = 1000\n[uncertainty.parameters]\n"costs.ebp" = { family = "fixed" }\n'
                      '"costs.brain_mri" = { family = "uniform", low = 10, high = 20 }\n')
    space = {u.path: u for u in parameter_space(load_scenario(path), ["costs"])}
    assert space["costs.ebp"].values([0.99]) == {"costs.ebp": 1000.0}
    assert space["costs.brain_mri"].values([0.5]) == {"costs.brain_mri": 15.0}
    assert set(space) == {p for p in space if p.startswith("costs.")}
    with pytest.raises(ScenarioError, match="--params"):
        parameter_space(load_scenario(path), ["costs.nope"])


def test_zero_uncertainty_psa_gives_the_deterministic_result(tiny, tmp_path):
    path = tiny(extra='\n[uncertainty.parameters]\n"costs.ebp" = { family = "fixed" }\n')
    r = psa([path], samples=2, reps=2, seed=5, out=tmp_path / "psa", only=["costs.ebp"])
    for k in range(2):
        det = run(load_scenario(path), reps=2, seed=sample_seed(5, k), log_events=False)
        for outcome in ("cost_per_patient", "qaly_per_patient", "symptom_days_mean"):
            got = r.table.loc[r.table["sample"] == k, f"a.{outcome}"].iloc[0]
            assert got == pytest.approx(det.metric(outcome)["mean"], rel=1e-12)


def test_psa_of_a_scenario_against_itself_has_zero_increments(tiny, tmp_path):
    path = tiny()
    r = psa([path, path], samples=3, reps=2, seed=1, out=tmp_path / "same", jobs=2)
    inc = r.table
    assert (inc["b-a.cost_per_patient"] == 0).all() and (inc["b-a.qaly_per_patient"] == 0).all()
    assert inc["a.cost_per_patient"].nunique() == 3  # the samples do differ
    assert r.cea["inc_cost"] == 0 and r.cea["inc_qaly"] == 0 and r.cea["verdict"] == "identical"
    files = {p.name for p in (tmp_path / "same").iterdir()}
    assert {"psa.csv", "psa_samples.csv", "variance.csv", "parameters.csv", "cea.csv", "ceac.csv", "ce_plane.png",
            "ceac.png", "manifest.json", "uncertainty.csv", "evppi.csv", "evpi.png"} <= files
    # The same decision in every sample: nothing to learn about any parameter.
    evppi = pd.read_csv(tmp_path / "same" / "evppi.csv")
    params = pd.read_csv(tmp_path / "same" / "parameters.csv")
    assert set(evppi["parameter"]) == set(params.columns) - {"sample"}
    assert (evppi["evppi_per_patient"] == 0).all() and (evppi["evpi_per_patient"] == 0).all()


def test_psa_is_resumable_and_runs_only_missing_samples(tiny, tmp_path):
    a, b = tiny("a"), tiny("b", "low_volume")
    out = tmp_path / "psa"

    class Stop(Exception):
        pass

    def stop_after_first(k: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        psa([a, b], samples=3, reps=1, seed=2, out=out, on_sample=stop_after_first)
    assert len(list((tmp_path / "psa.partial" / "samples").glob("sample-*.csv"))) == 1 and not out.exists()
    ran: list[int] = []
    resumed = psa([a, b], samples=3, reps=1, seed=2, out=out, on_sample=ran.append)
    assert sorted(ran) == [1, 2]
    fresh = psa([a, b], samples=3, reps=1, seed=2, out=tmp_path / "fresh", jobs=2)
    pd.testing.assert_frame_equal(resumed.table, fresh.table)
    assert set(fresh.variance["outcome"]) == {*OUTCOMES, "nmb"}
    assert set(fresh.variance["scenario"]) == {"a", "b", "b-a"}


def test_oneway_sensitivity_and_sobol(tiny, tmp_path, capsys):
    a, b = tiny("a"), tiny("b", "low_volume")
    out = tmp_path / "sens"
    assert main(["sensitivity", a, b, "--reps", "1", "--jobs", "1", "--outcome", "cost_per_patient",
                 "--params", "costs.ebp,clinical.ebp_first_success.post_lp", "--sobol", "2", "--sobol-params", "1",
                 "--out", str(out)]) == 0
    one = pd.read_csv(out / "oneway.csv")
    assert set(one["parameter"]) == {"costs.ebp", "clinical.ebp_first_success.post_lp"}
    assert {"tornado.png", "tornado.svg", "sobol.csv", "report.html"} <= {p.name for p in out.iterdir()}
    # The Sobol checks once overwrote the quantiles the manifest records (with arrays, written as text).
    assert json.loads((out / "manifest.json").read_text())["quantiles"] == [0.025, 0.975]
    printed = capsys.readouterr()
    assert "One-way sensitivity" in printed.out and "+/-" in printed.out
    # N = 2 cannot give precise indices: one plain warning line says so (and SALib's own note is not shown)
    warned = [line for line in printed.err.splitlines() if "Sobol" in line]
    assert warned and all(line.startswith("csfsim: warning: ") for line in warned), printed.err
    assert "UserWarning" not in printed.err
    # a cost parameter is re-evaluated on the base run's tables: same as simulating again with it
    r = sensitivity([a], reps=2, seed=4, out=tmp_path / "s1", outcome="cost_per_patient", only=["costs.ebp"])
    row = r.oneway.iloc[0]
    assert row["low_value"] < 400 < row["high_value"]
    assert row["low_outcome"] <= r.base_value <= row["high_outcome"]
    rerun = run(load_scenario(a, {"costs.ebp": row["high_value"]}), reps=2, seed=4, log_events=False)
    assert row["high_outcome"] == pytest.approx(rerun.metric("cost_per_patient")["mean"], rel=1e-12)


def test_psa_and_sensitivity_on_a_dask_cluster_equal_those_on_this_machine(tiny, tmp_path):
    """PSA samples and sensitivity runs go through the same backends as replications: on a (local) Dask cluster
    the tables are those of worker processes, value for value."""
    from sim.runs.backends import Backend

    a, b = tiny("a"), tiny("b", "low_volume")
    here = psa([a, b], samples=3, reps=1, seed=4, out=tmp_path / "here", jobs=2)
    dask = Backend("dask", 1)
    there = psa([a, b], samples=3, reps=1, seed=4, out=tmp_path / "there", backend=dask)
    pd.testing.assert_frame_equal(here.table, there.table)
    local = sensitivity([a, b], reps=1, seed=4, out=tmp_path / "s_here", only=["costs"])
    remote = sensitivity([a, b], reps=1, seed=4, out=tmp_path / "s_there", only=["costs"],
                         backend=dask)
    pd.testing.assert_frame_equal(local.oneway, remote.oneway)


def test_a_value_moved_out_of_reach_of_base_spread_takes_its_grade_default(tmp_path):
    """base.toml's beta for RIH after embolization is a ci95 of [0.10, 0.33] around 0.175; a scenario that sets
    0.001 (found by the engine-equality property test) is valid, and that parameter varies with its grade's
    default spread instead of failing to load."""
    path = "clinical.rih_probability.after_embolization"
    s = load_scenario(LOW_VOLUME, overrides={path: 0.001})
    assert path in s.resolved["uncertainty"]["by_grade_instead"]
    assert path not in s.resolved["uncertainty"]["parameters"]
    space = {u.path: u for u in parameter_space(s)}
    assert 0.0 <= space[path].values([0.5])[path] <= 1.0
    own = tmp_path / "own.toml"  # the scenario's own entry must still fit its value
    own.write_text(f'extends = "{LOW_VOLUME}"\n[clinical.rih_probability]\nafter_embolization = 0.001\n'
                   f'[uncertainty.parameters]\n"{path}" = {{ family = "beta", ci95 = [0.1, 0.33] }}\n')
    with pytest.raises(ScenarioError, match="effective sample size"):
        load_scenario(own)
