"""Complications of treatment, decided per patient after the run from her procedure counts, and of the leak
itself (a subdural haematoma, superficial siderosis), from how long it stayed open.

Why after the run. A complication here changes neither the ladder nor the days of anyone's pathway: it costs
money and quality of life (`sim.economics.costs`). So it is a function of what the engines wrote (counts, the
day of the first procedure of its kind) and of one uniform per patient and kind drawn with the cohort on its own
stream: both engines give the same complications, and switching one off leaves every other draw alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.config.distributions import Distribution
from sim.config.parameters import COMPLICATION_KINDS as KINDS
from sim.config.parameters import LEAK_COMPLICATION_KINDS as LEAK_KINDS
from sim.config.parameters import LEAK_TYPES

COLUMNS: tuple[str, ...] = tuple(k.column for k in KINDS)
LEAK_COLUMNS: tuple[str, ...] = tuple(k.column for k in LEAK_KINDS)


def probabilities(resolved: dict[str, Any]) -> dict[str, float]:
    """Per-procedure probability of each complication, from a resolved scenario tree (0 for a tree written
    before complications were modelled)."""
    table = resolved.get("complications", {})
    return {k.name: float(table[k.name]["probability"].value) if k.name in table else 0.0 for k in KINDS}


def at_least_one(n_procedures: Any, per_procedure: float) -> Any:
    """Probability of one complication or more in `n_procedures` independent procedures."""
    return 1.0 - (1.0 - per_procedure) ** n_procedures


def complication_flags(counts: dict[str, np.ndarray], spontaneous: np.ndarray, uniforms: np.ndarray,
                       per_procedure: dict[str, float]) -> dict[str, np.ndarray]:
    """One flag column per complication: the patient had it. `uniforms` has one column per kind (KINDS order)."""
    flags = {}
    for j, kind in enumerate(KINDS):
        n = sum(np.asarray(counts[c], dtype=np.int64) for c in kind.procedures)
        if kind.spontaneous_only:
            n = np.where(spontaneous, n, 0)
        flags[kind.column] = uniforms[:, j] < at_least_one(n, per_procedure[kind.name])
    return flags


def leak_parameters(resolved: dict[str, Any]) -> dict[str, tuple[float, Distribution] | None]:
    """Per leak complication: its probability and the distribution of its days from onset (None for a tree
    written before these were modelled)."""
    table = resolved.get("complications", {})
    return {k.name: (float(table[k.name]["probability"].value), table[k.name]["onset_days"].value)
            if k.name in table else None for k in LEAK_KINDS}


def leak_complications(onset_day: np.ndarray, first_resolved_day: np.ndarray, leak_type: np.ndarray,
                       horizon_days: float, uniforms: np.ndarray,
                       parameters: dict[str, tuple[float, Distribution] | None]) -> dict[str, np.ndarray]:
    """Per leak complication a flag and its day: it happens `onset_days` (drawn) after the onset, with its
    probability, if the leak is still open then: before the first day the symptoms ended (`first_resolved_day`;
    a later recurrence is not counted) and before the horizon. `leak_type` indexes LEAK_TYPES (-1: procedure-
    related, never). `uniforms` has two columns per kind, in LEAK_KINDS order: whether, and when."""
    open_until = np.minimum(np.where(np.isnan(first_resolved_day), np.inf, first_resolved_day), horizon_days)
    out: dict[str, np.ndarray] = {}
    for j, kind in enumerate(LEAK_KINDS):
        params = parameters[kind.name]
        had = np.zeros(onset_day.size, dtype=bool)
        day = np.full(onset_day.size, np.nan)
        if params is not None:
            probability, delay = params
            exposed = np.isin(leak_type, [LEAK_TYPES.index(t) for t in kind.leak_types])
            at = onset_day + delay.ppf(uniforms[:, 2 * j + 1])
            had = exposed & (uniforms[:, 2 * j] < probability) & (at < open_until)
            day = np.where(had, at, np.nan)
        out[kind.column] = had
        out[kind.start_column] = day
    return out


def one_haematoma(flags: dict[str, np.ndarray], leak: dict[str, np.ndarray]) -> None:
    """A bleed after a patch in a patient whose leak had already caused a subdural haematoma is that haematoma:
    counted once, as the leak's (in place on `flags`)."""
    bleed = "complication_intracranial_bleed"
    flags[bleed] = flags[bleed] & ~leak["complication_subdural_haematoma"]
