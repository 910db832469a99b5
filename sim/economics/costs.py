"""Per-patient costs and QALYs, computed after the run from the patient table (never inside the SimPy engine).

Time zero of each patient is her symptom onset; everything ends at the simulation horizon. Discounting is
continuous at the annual rates of `[economics]`: a cost at t years weighs (1 + r)^-t, a year in a health state
from a to b years weighs the integral of (1 + r)^-t.

The patient table gives counts and a few days, not the day of every event, so two approximations are made
(docs/model.md, "Costs and QALYs"):
- Health states are laid out in one block each from onset: low-pressure symptoms for `symptom_days`
  (at `utilities.persistent` when the final state is persistent, else `utilities.symptomatic`), then rebound
  intracranial hypertension for `rih_days`, with residual symptoms after a seal for `residual_days` from the same
  day (at `utilities.residual` once RIH is over), then `utilities.resolved` to the horizon. For a patient without
  recurrence this is exact up to when RIH begins (symptoms run from onset to resolution); recurrences are moved
  forward in time.
- Each kind of cost is discounted from the first day the table records for it: consultations, brain MRI and
  referrals at presentation; spinal imaging and procedures at the first invasive treatment (else diagnosis);
  acetazolamide at resolution (else first treatment). Later repeats are discounted as if they happened then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.config.parameters import COMPLICATION_KINDS, LEAK_COMPLICATION_KINDS

DAYS_PER_YEAR = 365.25
ECONOMICS_COLUMNS: tuple[str, ...] = ("cost", "qaly", "qaly_loss", "work_days_lost", "productivity_cost")
# cost item in [costs] -> (patient-table count column, when it is discounted from)
COST_ITEMS: dict[str, tuple[str, str]] = {
    "consultation": ("n_consultations", "presented"),
    "brain_mri": ("n_brain_mri", "presented"),
    "referral": ("n_referrals", "presented"),
    "spinal_imaging": ("n_spinal_imaging", "treatment"),
    "ebp": ("n_ebp", "treatment"),
    "targeted_patch": ("n_targeted_patch", "treatment"),
    "fibrin_patch": ("n_fibrin_patch", "treatment"),
    "embolization": ("n_embolization", "treatment"),
    "acetazolamide_course": ("n_acetazolamide_courses", "resolution"),
}
# Surgeries are one count in the table: every open operation on a procedure-related leak is a durotomy repair
# (the ladder of sim/model/clinical.py), every one on a spontaneous leak is leak surgery (incl. CVF ligation).
SURGERY_ITEMS = ("leak_surgery", "durotomy_repair")
UTILITY_STATES = ("symptomatic", "resolved", "rih", "residual", "persistent")


@dataclass(frozen=True)
class EconomicParams:
    """The [economics], [costs] and [utilities] values of a scenario."""

    currency: str
    cost_year: int
    discount_costs: float
    discount_qalys: float
    wtp: float
    costs: dict[str, float]
    utilities: dict[str, float]
    productivity: dict[str, float]
    # By complication (sim.model.complications): cost, utility_decrement, duration_days.
    complications: dict[str, dict[str, float]] = field(default_factory=dict)


def economic_params(scenario: Any) -> EconomicParams:
    r = scenario.resolved
    e = r["economics"]
    return EconomicParams(
        currency=e["currency"].value, cost_year=int(e["cost_year"].value),
        discount_costs=float(e["discount_rate_costs_per_year"].value),
        discount_qalys=float(e["discount_rate_qalys_per_year"].value),
        wtp=float(e["willingness_to_pay_per_qaly"].value),
        costs={k: float(p.value) for k, p in r["costs"].items()},
        utilities={k: float(p.value) for k, p in r["utilities"].items()},
        productivity={k: float(p.value) for k, p in r["productivity"].items()},
        complications={kind: {k: float(p.value) for k, p in fields.items() if k not in ("probability", "onset_days")}
                       for kind, fields in r.get("complications", {}).items()},
    )


def discount_factor(t_days: np.ndarray | float, rate: float) -> np.ndarray:
    """Weight of something happening `t_days` after time zero at annual rate `rate`: (1 + rate)^(-t/365.25)."""
    return np.power(1.0 + rate, -np.asarray(t_days, dtype=float) / DAYS_PER_YEAR)


def discounted_years(a_days: np.ndarray | float, b_days: np.ndarray | float, rate: float) -> np.ndarray:
    """Discounted length, in years, of the interval [a, b] days (continuous discounting; 0 when b <= a)."""
    a = np.asarray(a_days, dtype=float) / DAYS_PER_YEAR
    b = np.maximum(np.asarray(b_days, dtype=float) / DAYS_PER_YEAR, a)
    if rate == 0.0:
        return b - a
    delta = np.log1p(rate)
    return (np.exp(-delta * a) - np.exp(-delta * b)) / delta


def patient_economics(patients: pd.DataFrame, params: EconomicParams, horizon_days: float) -> pd.DataFrame:
    """Discounted cost, QALYs and QALY loss against full health (utility 1) per patient, from onset to horizon."""
    p = patients
    columns = economics_columns(p, (p["etiology"] == "spontaneous").to_numpy(),
                                (p["final_state"] == "persistent").to_numpy(), params, horizon_days)
    return pd.DataFrame(columns, index=p.index)


def economics_columns(p: Mapping[str, Any], spontaneous: np.ndarray, persistent: np.ndarray,
                      params: EconomicParams, horizon_days: float) -> dict[str, np.ndarray]:
    """The ECONOMICS_COLUMNS as arrays from the patient columns in `p` (a DataFrame or a dict of arrays, so that
    a replication can add them before it builds its table), `spontaneous` etiology and `persistent` final state
    as boolean arrays."""
    onset = np.asarray(p["onset_day"], dtype=float)
    n = onset.size
    follow = np.maximum(horizon_days - onset, 0.0)

    def since_onset(*cols: str) -> np.ndarray:
        t = np.full(n, np.nan)
        for col in cols:  # first non-null of the columns, in order
            t = np.where(np.isnan(t), np.asarray(p[col], dtype=float) - onset, t)
        return np.clip(np.nan_to_num(t, nan=0.0), 0.0, follow)

    when = {"presented": since_onset("presented_day"),
            "treatment": since_onset("first_treatment_day", "diagnosed_day", "presented_day"),
            "resolution": since_onset("resolved_day", "first_treatment_day", "presented_day")}
    rc = params.discount_costs
    factor = {timing: discount_factor(t, rc) for timing, t in when.items()}  # once per timing, not per item
    cost = np.zeros(n)
    for item, (column, timing) in COST_ITEMS.items():
        cost += np.asarray(p[column], dtype=float) * params.costs[item] * factor[timing]
    durotomy = ~np.asarray(spontaneous, dtype=bool)
    surgery_cost = np.where(durotomy, params.costs["durotomy_repair"], params.costs["leak_surgery"])
    cost += np.asarray(p["n_surgery"], dtype=float) * surgery_cost * factor["treatment"]

    rq = params.discount_qalys
    u = params.utilities
    symptoms = np.minimum(np.nan_to_num(np.asarray(p["symptom_days"], dtype=float)), follow)
    rih_end = np.minimum(symptoms + np.nan_to_num(np.asarray(p["rih_days"], dtype=float)), follow)
    # A table written before residual symptoms were modelled has none (and its scenario no residual utility).
    residual = np.nan_to_num(np.asarray(p["residual_days"], dtype=float)) if "residual_days" in p else np.zeros(n)
    # Both begin at a seal: residual days run alongside RIH (at the RIH utility while it lasts), then on their own.
    residual_end = np.minimum(np.maximum(rih_end, symptoms + residual), follow)
    u_symptoms = np.where(np.asarray(persistent, dtype=bool), u["persistent"], u["symptomatic"])
    qaly = (u_symptoms * discounted_years(0.0, symptoms, rq)
            + u["rih"] * discounted_years(symptoms, rih_end, rq)
            + u.get("residual", u["resolved"]) * discounted_years(rih_end, residual_end, rq)
            + u["resolved"] * discounted_years(residual_end, follow, rq))
    # Complications: a cost once, and a utility decrement for a while, from the first procedure of their kind (or
    # the day a complication of the leak itself happened).
    for kind in (*COMPLICATION_KINDS, *LEAK_COMPLICATION_KINDS):
        if kind.column not in p or kind.name not in params.complications:
            continue  # a table or a scenario from before complications were modelled
        had = np.asarray(p[kind.column], dtype=bool)
        c = params.complications[kind.name]
        start = since_onset(kind.start_column, "first_treatment_day", "presented_day")
        cost += had * c["cost"] * discount_factor(start, rc)
        qaly -= had * c["utility_decrement"] * discounted_years(start, np.minimum(start + c["duration_days"], follow),
                                                                 rq)
    loss = discounted_years(0.0, follow, rq) - qaly
    # Paid work lost while symptomatic, a share of each calendar day's working time (the same block from onset).
    w = params.productivity
    lost_per_day = w["work_days_per_week"] / 7.0 * w["employed_share"] * w["work_lost_while_symptomatic"]
    work_days = symptoms * lost_per_day
    productivity = w["earnings_per_work_day"] * lost_per_day * DAYS_PER_YEAR * discounted_years(0.0, symptoms, rc)
    return {"cost": cost, "qaly": qaly, "qaly_loss": loss, "work_days_lost": work_days,
            "productivity_cost": productivity}


def add_economics(patients: pd.DataFrame, scenario: Any) -> pd.DataFrame:
    """The patient table with the ECONOMICS_COLUMNS appended."""
    econ = patient_economics(patients, economic_params(scenario), scenario.horizon_days)
    return pd.concat([patients, econ], axis=1)
