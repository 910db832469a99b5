"""Figures of the uncertainty and cost-effectiveness analyses (matplotlib, written atomically as PNG or SVG)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)


def tornado(table: pd.DataFrame, outcome_label: str, base_value: float, path: Path, top: int = 15) -> None:
    """One-way sensitivity: a bar per parameter from its low-quantile to its high-quantile outcome, widest on top.
    `table` has columns parameter, low_outcome, high_outcome, low_value, high_value."""
    t = table.assign(swing=(table["high_outcome"] - table["low_outcome"]).abs())
    t = t.sort_values("swing", ascending=False).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(t) + 1.6))
    y = np.arange(len(t))
    seen: set[str] = set()
    for i, row in enumerate(t.itertuples(index=False)):
        bars = [(row.low_outcome, "#4c72b0", "parameter at low quantile"),
                (row.high_outcome, "#dd8452", "parameter at high quantile")]
        bars.sort(key=lambda b: -abs(b[0] - base_value))  # the longer bar first, so both stay visible
        for outcome, color, label in bars:
            ax.barh(y[i], outcome - base_value, left=base_value, color=color, height=0.6,
                    label=label if label not in seen else None)
            seen.add(label)
    ax.axvline(base_value, color="black", lw=1)
    factor = t["distribution"].str.endswith("x factor") if "distribution" in t else [False] * len(t)
    ax.set_yticks(y, [f"{p}\n[{'x' if f else ''}{lo:.3g} to {'x' if f else ''}{hi:.3g}]" for p, lo, hi, f in
                      zip(t["parameter"], t["low_value"], t["high_value"], factor, strict=True)], fontsize=7)
    ax.set_xlabel(f"{outcome_label} (base {base_value:.4g})")
    ax.set_title("One-way sensitivity (tornado)", pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    _save(fig, path)


def ce_plane(inc_qaly: np.ndarray, inc_cost: np.ndarray, wtp: float, currency: str, path: Path,
             label: str = "B vs A") -> None:
    """Cost-effectiveness plane: one point per PSA sample, the mean, and the willingness-to-pay line."""
    fig, ax = plt.subplots(figsize=(7, 5.5))
    ax.scatter(inc_qaly, inc_cost, s=14, alpha=0.6, color="#4c72b0", label="PSA samples")
    ax.scatter([np.mean(inc_qaly)], [np.mean(inc_cost)], s=80, color="#c44e52", marker="D", label="mean")
    span = max(float(np.max(np.abs(inc_qaly))) if len(inc_qaly) else 0.0, 1e-9) * 1.2
    xs = np.array([-span, span])
    ax.plot(xs, wtp * xs, color="black", ls="--", lw=1, label=f"WTP {wtp:,.0f} {currency}/QALY")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    cmax = max(float(np.max(np.abs(inc_cost))) if len(inc_cost) else 0.0, 1e-9) * 1.2
    ax.set_xlim(-span, span)
    ax.set_ylim(-cmax, cmax)
    ax.set_xlabel("Incremental QALYs per patient")
    ax.set_ylabel(f"Incremental cost per patient ({currency})")
    ax.set_title(f"Cost-effectiveness plane: {label}")
    ax.legend(fontsize=8)
    _save(fig, path)


def evpi_curve(wtps: np.ndarray, evpi: np.ndarray, wtp: float, currency: str, path: Path) -> None:
    """Expected value of perfect information per patient over willingness to pay."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(wtps, evpi, lw=2, color="#0072B2", label="EVPI per patient")
    ax.axvline(wtp, color="black", ls="--", lw=1, label=f"WTP {wtp:,.0f}")
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(f"Willingness to pay per QALY ({currency})")
    ax.set_ylabel(f"EVPI per patient ({currency})")
    ax.set_title("Expected value of perfect information")
    ax.legend(fontsize=8)
    _save(fig, path)


def ceac(wtps: np.ndarray, probs: np.ndarray, names: list[str], wtp: float, currency: str, path: Path) -> None:
    """Cost-effectiveness acceptability curves: probability that each strategy has the highest NMB."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for j, name in enumerate(names):
        ax.plot(wtps, probs[:, j], lw=2, label=name)
    ax.axvline(wtp, color="black", ls="--", lw=1, label=f"WTP {wtp:,.0f}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"Willingness to pay per QALY ({currency})")
    ax.set_ylabel("Probability cost-effective")
    ax.set_title("Cost-effectiveness acceptability curve")
    ax.legend(fontsize=8)
    _save(fig, path)
