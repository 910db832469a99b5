"""Complications of treatment, decided per patient after the run from her procedure counts.

Why after the run. A complication here changes neither the ladder nor the days of anyone's pathway: it costs
money and quality of life (`sim.economics.costs`). So it is a function of what the engines wrote (counts, the
day of the first procedure of its kind) and of one uniform per patient and kind drawn with the cohort on its own
stream: both engines give the same complications, and switching one off leaves every other draw alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.config.parameters import COMPLICATION_KINDS as KINDS

COLUMNS: tuple[str, ...] = tuple(k.column for k in KINDS)


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
