"""Figures of a run or a comparison: tidy tables in, PNG and SVG files out (no simulation here).

Every figure uses one style that survives grey-scale printing: series differ by line style, marker and hatch as
well as colour, and every axis names its unit. Each function writes `<path>.png` and `<path>.svg` atomically and
returns the PNG path.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.io.outputs import atomic_write_bytes

# Okabe-Ito colours (colour-blind safe) ordered so that neighbours also differ in lightness.
COLOURS: tuple[str, ...] = ("#000000", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
LINESTYLES: tuple = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES: tuple[str, ...] = ("", "///", "...", "xx", "\\\\\\", "++", "oo", "--", "||", "**", "OO", "..//")
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.color": "#d0d0d0",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "hatch.linewidth": 0.6,
    "svg.fonttype": "none",
    "figure.dpi": 110,
    "savefig.dpi": 110,
}
DPI = 110
PROCEDURE_LABELS = {
    "ebp": "Blood patch",
    "targeted_patch": "Targeted patch",
    "fibrin_patch": "Fibrin patch",
    "surgery": "Surgery",
    "embolization": "Embolization",
}
# Final state / resolved-by categories of the pathway-flow figure, in the order they are stacked.
FLOW_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("resolved_without_care", "Resolved before care"),
    ("natural_course", "Resolved: natural course"),
    ("conservative", "Resolved: conservative care"),
    ("ebp", "Resolved: blood patch"),
    ("targeted_patch", "Resolved: targeted patch"),
    ("fibrin_patch", "Resolved: fibrin patch"),
    ("surgery", "Resolved: surgery"),
    ("durotomy_repair", "Resolved: durotomy repair"),
    ("embolization", "Resolved: embolization"),
    ("undiagnosed", "Persistent: never diagnosed"),
    ("treatment_exhausted", "Persistent: treatment exhausted"),
    ("in_pathway_at_horizon", "Still in pathway at horizon"),
)
FLOW_COLOURS: tuple[str, ...] = ("#f0f0f0", "#d9d9d9", "#bdbdbd", "#56B4E9", "#0072B2", "#009E73", "#E69F00",
                                 "#F0E442", "#CC79A7", "#D55E00", "#7f2704", "#636363")


@contextmanager
def _style() -> Iterator[None]:
    with plt.rc_context(STYLE):
        yield


def series_style(i: int) -> dict[str, object]:
    """Colour, line style and marker of the i-th series, the same in every figure."""
    return {"color": COLOURS[i % len(COLOURS)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


def save(fig: Figure, path: Path) -> Path:
    """Write `path`.png and `path`.svg atomically (readers never see half a figure); returns the PNG path.

    The tight bounding box is measured once, for both formats, on the layout `tight_layout` already made.
    `savefig(bbox_inches="tight")` would lay the figure out (text extents: most of a figure's cost) once to
    measure and once more to draw, for each format; here each format is drawn once. Same pixels (tested against
    `savefig(bbox_inches="tight")`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.set_layout_engine(None)  # None (not "none", which leaves a placeholder engine that savefig lays out for)
    bbox = fig.get_tightbbox().padded(plt.rcParams["savefig.pad_inches"])
    for suffix in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=suffix, dpi=DPI, bbox_inches=bbox)
        atomic_write_bytes(path.with_suffix(f".{suffix}"), buf.getvalue())
    plt.close(fig)
    return path.with_suffix(".png")


def _grid(n_panels: int, ncols: int, panel_w_in: float, panel_h_in: float):
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_w_in * ncols, panel_h_in * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def _legend_below(fig: Figure, handles: Sequence, labels: Sequence[str], ncol: int) -> None:
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=max(1, ncol), frameon=False)


def km_xmax(km: pd.DataFrame) -> float:
    """A day range that shows where the curves still move: where every curve is within 1% of its final level."""
    ends = []
    for _, g in km.groupby(["panel", "label"], sort=False):
        final = g["survival"].iloc[-1]
        moving = g[g["survival"] > final + 0.01]
        ends.append(moving["days"].max() if len(moving) else g["days"].max())
    top = float(km["days"].max())
    return min(top, max(max(ends, default=top) * 1.1, 1.0))


def _clip_steps(g: pd.DataFrame, xmax: float) -> pd.DataFrame:
    """The part of a step curve up to `xmax`, held flat to `xmax` (smaller SVGs, same picture)."""
    inside = g[g["days"] <= xmax]
    if len(inside) == len(g) or inside.empty:
        return inside if len(inside) else g
    return pd.concat([inside, inside.iloc[[-1]].assign(days=xmax)], ignore_index=True)


def plot_km(km: pd.DataFrame, event: str, xmax: float | None, path: Path) -> Path:
    """Kaplan-Meier curves with 95% bands, one panel per `panel`, one line per `label`.

    `km` columns: panel, label, days, survival, ci95_low, ci95_high (rows of km.csv). `event` is "diagnosis" or
    "resolution" and names the y axis; for diagnosis the curves are the cumulative incidence (column incidence,
    a leak closing on its own first being a competing event; no band: its variance is not computed). `xmax`:
    the day range (the same for every time-to-event figure of a
    report, so that they can be read side by side); None takes the range where these curves still move."""
    panels = list(dict.fromkeys(km["panel"]))
    with _style():
        fig, axes = _grid(len(panels), 3, 3.6, 2.9)
        labels = list(dict.fromkeys(km["label"]))
        xmax = km_xmax(km) if xmax is None else xmax
        handles = {}
        incidence = event == "diagnosis" and "incidence" in km  # a competing event: the cumulative incidence
        for ax, panel in zip(axes, panels, strict=True):
            for label, g in km[km["panel"] == panel].groupby("label", sort=False):
                g = _clip_steps(g, xmax)
                st = series_style(labels.index(label))
                (line,) = ax.step(g["days"], g["incidence" if incidence else "survival"], where="post",
                                  color=st["color"], linestyle=st["linestyle"], linewidth=1.4)
                if not incidence:
                    ax.fill_between(g["days"], g["ci95_low"], g["ci95_high"], step="post", color=st["color"],
                                    alpha=0.15, linewidth=0)
                handles[label] = line
            ax.set_title(panel)
            ax.set_xlim(0, xmax)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("Days since onset")
            ax.set_ylabel("Share diagnosed" if incidence else
                          f"Share not yet {'diagnosed' if event == 'diagnosis' else 'resolved'}")
        fig.suptitle("Time to diagnosis (cumulative incidence; natural closure competes)" if incidence else
                     f"Time to {event} (Kaplan–Meier, shaded: 95% confidence band)", y=1.0)
        fig.tight_layout()
        _legend_below(fig, list(handles.values()), list(handles), min(len(handles), 3))
        return save(fig, path)


def _grouped_bars(ax, table: pd.DataFrame, x_col: str, series_order: Sequence[str], x_order: Sequence[str],
                  scale: float = 1.0) -> dict[str, object]:
    """Bars of `mean` with 95% CI whiskers, one bar per series within each x group; hatch tells series apart."""
    width = 0.8 / max(1, len(series_order))
    x = np.arange(len(x_order))
    handles = {}
    for i, series in enumerate(series_order):
        sel = table[table["series"] == series].set_index(x_col).reindex(x_order)
        mean = sel["mean"].to_numpy(dtype=float) * scale
        lo = sel["ci95_low"].to_numpy(dtype=float) * scale
        hi = sel["ci95_high"].to_numpy(dtype=float) * scale
        err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
        bars = ax.bar(x + (i - (len(series_order) - 1) / 2) * width, np.nan_to_num(mean), width,
                      color=COLOURS[i % len(COLOURS)], alpha=0.85 if i else 0.75, edgecolor="black",
                      linewidth=0.6, hatch=HATCHES[i % len(HATCHES)], yerr=np.clip(err, 0, None), capsize=2,
                      error_kw={"elinewidth": 0.8})
        handles[series] = bars
    ax.set_xticks(x)
    return handles


def plot_procedures(table: pd.DataFrame, path: Path) -> Path:
    """Procedures per patient who reached care, by kind, one bar per series with 95% CI whiskers.

    `table` columns: series, kind (keys of PROCEDURE_LABELS), mean, ci95_low, ci95_high."""
    series = list(dict.fromkeys(table["series"]))
    kinds = [k for k in PROCEDURE_LABELS if k in set(table["kind"])]
    # Blood patches outnumber every other procedure by far: they get a panel and a scale of their own, so that
    # the others are not flattened beside them.
    panels = [group for group in ([k for k in kinds if k == "ebp"], [k for k in kinds if k != "ebp"]) if group]
    with _style():
        width = max(6.0, 1.3 * len(kinds) * max(1, len(series)) / 1.6)
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 3.4), squeeze=False,
                                 gridspec_kw={"width_ratios": [len(g) + 0.6 for g in panels]})
        handles: dict[str, object] = {}
        for ax, group in zip(axes[0], panels, strict=True):
            handles = _grouped_bars(ax, table, "kind", series, group)
            ax.set_xticklabels([PROCEDURE_LABELS[k] for k in group])
            ax.set_ylim(bottom=0)
        axes[0][0].set_ylabel("Procedures per patient (count)")
        fig.supxlabel("Kind of procedure (each panel on its own scale)", fontsize=9)
        fig.suptitle("Procedures per patient who reached care (bars: mean over replications; whiskers: 95% CI)",
                     fontsize=10)
        fig.tight_layout()
        _legend_below(fig, list(handles.values()), list(handles), min(len(handles), 3))
        return save(fig, path)


def plot_flow(shares: pd.DataFrame, path: Path) -> Path:
    """Pathway flow: for each bar (a series and a patient group), the share of patients in each final state.

    `shares` columns: bar, category (keys of FLOW_CATEGORIES), share. A stacked-bar stand-in for a Sankey
    diagram: from presentation (or resolution before it) to the final state and what resolved the leak."""
    bars = list(dict.fromkeys(shares["bar"]))
    wide = shares.pivot_table(index="bar", columns="category", values="share", aggfunc="sum").reindex(bars)
    cats = [(k, label) for k, label in FLOW_CATEGORIES if k in wide.columns]
    # "Series — group" bars: each series' name heads its block once, the ticks name only the group (long series
    # names on every tick took half the figure).
    split = [bar.rsplit(" — ", 1) for bar in bars]
    blocks = all(len(parts) == 2 for parts in split) and len({parts[0] for parts in split}) > 1
    series_of = [parts[0] for parts in split] if blocks else [""] * len(bars)
    ticks = [parts[1] for parts in split] if blocks else bars
    gaps = np.cumsum([i > 0 and series_of[i] != series_of[i - 1] for i in range(len(bars))]) * 0.9
    with _style():
        fig, ax = plt.subplots(figsize=(10.0, 0.9 + 0.36 * len(bars) + 0.32 * float(gaps[-1] if blocks else 0)))
        y = (np.arange(len(bars)) + gaps)[::-1] if blocks else np.arange(len(bars))[::-1]
        left = np.zeros(len(bars))
        for j, (key, label) in enumerate(cats):
            values = wide[key].fillna(0.0).to_numpy() * 100
            ax.barh(y, values, left=left, color=FLOW_COLOURS[j % len(FLOW_COLOURS)], edgecolor="black",
                    linewidth=0.5, hatch=HATCHES[j % len(HATCHES)], label=label, height=0.7)
            for yi, lft, v in zip(y, left, values, strict=True):
                if v >= 6:
                    ax.text(lft + v / 2, yi, f"{v:.0f}", ha="center", va="center", fontsize=7,
                            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
            left = left + values
        ax.set_yticks(y)
        ax.set_yticklabels(ticks)
        if blocks:
            for i, name in enumerate(series_of):
                if i == 0 or name != series_of[i - 1]:
                    ax.text(0, y[i] + 0.62, name, fontsize=8.5, fontweight="bold", va="bottom", ha="left")
        ax.set_xlim(0, 100)
        ax.set_xlabel("Share of patients with a leak (%)")
        ax.grid(axis="y", visible=False)
        ax.set_title("Pathway flow: final state of each patient and what resolved the leak")
        fig.tight_layout()
        handles, labels = ax.get_legend_handles_labels()
        _legend_below(fig, handles, labels, 3)
        return save(fig, path)


Curves = tuple[tuple[float | None, float | None], tuple[float | None, float | None],
               Iterable[tuple[str, np.ndarray, np.ndarray]]]


def _resource_panels(table: pd.DataFrame, curves: Callable[[pd.DataFrame], Curves], title: str, xlabel: str,
                     ylabel: str, path: Path) -> Path:
    """One panel per resource, one line per series; `curves(rows of a resource)` gives the x range, the y
    range and the (series, x, y) lines of that panel."""
    resources = list(dict.fromkeys(table["resource"]))
    series = list(dict.fromkeys(table["series"]))
    with _style():
        fig, axes = _grid(len(resources), 3, 3.5, 2.7)
        handles = {}
        for ax, resource in zip(axes, resources, strict=True):
            xlim, ylim, lines = curves(table[table["resource"] == resource])
            for name, x, y in lines:
                st = series_style(series.index(name))
                (line,) = ax.plot(x, y, color=st["color"], linestyle=st["linestyle"], linewidth=1.4)
                handles[name] = line
            ax.set_title(resource.replace("_", " "))
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
        fig.suptitle(title, y=1.0)
        fig.tight_layout()
        _legend_below(fig, list(handles.values()), list(handles), min(len(handles), 3))
        return save(fig, path)


def plot_waits(waits: pd.DataFrame, path: Path) -> Path:
    """Queue waits per resource: share of resource uses that waited longer than x days, one line per series.

    `waits` columns: series, resource, wait_days (one row per completed use)."""

    def curves(sel: pd.DataFrame) -> Curves:
        top = max(float(sel["wait_days"].max()), 0.1)
        grid = np.linspace(0, top, 200)
        lines = []
        for name, g in sel.groupby("series", sort=False):
            w = np.sort(g["wait_days"].to_numpy(dtype=float))
            lines.append((str(name), grid, (1.0 - np.searchsorted(w, grid, side="right") / w.size) * 100))
        return (0, top), (0, None), lines

    return _resource_panels(waits, curves, "Queue waits per resource (after booking): share of uses that waited "
                            "longer than x days", "Queue wait x (days)", "Uses waiting longer than x (%)", path)


def plot_utilization(util: pd.DataFrame, path: Path) -> Path:
    """Utilization per month and resource (busy server-days / available server-days), one line per series.

    `util` columns: series, resource, month, utilization (a share in [0, 1])."""

    def curves(sel: pd.DataFrame) -> Curves:
        lines = [(str(name), g["month"].to_numpy(), g["utilization"].to_numpy() * 100)
                 for name, g in sel.groupby("series", sort=False)]
        return (None, None), (0, max(5.0, float(sel["utilization"].max()) * 110)), lines

    return _resource_panels(util, curves, "Utilization per month: busy time / (capacity × days), mean over "
                            "replications", "Month of the run", "Utilization (%)", path)


def plot_forest(diffs: pd.DataFrame, path: Path) -> Path:
    """Forest plot of paired differences (scenario minus the first) with 95% CIs, one panel per unit.

    `diffs` columns: label, unit (axis title, e.g. "days"), comparison, diff, ci95_low, ci95_high."""
    units = list(dict.fromkeys(diffs["unit"]))
    comparisons = list(dict.fromkeys(diffs["comparison"]))
    heights = [max(1, diffs[diffs["unit"] == u]["label"].nunique()) for u in units]
    with _style():
        fig, axes = plt.subplots(len(units), 1, figsize=(8.5, 0.9 * len(units) + 0.32 * sum(heights)),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        handles = {}
        step = 0.6 / max(1, len(comparisons))
        for ax, unit in zip(axes[:, 0], units, strict=True):
            sel = diffs[diffs["unit"] == unit]
            labels = list(dict.fromkeys(sel["label"]))
            y = np.arange(len(labels))[::-1].astype(float)
            for i, comp in enumerate(comparisons):
                c = sel[sel["comparison"] == comp].set_index("label").reindex(labels)
                st = series_style(i + 1)
                yy = y + (i - (len(comparisons) - 1) / 2) * step
                err = np.vstack([c["diff"] - c["ci95_low"], c["ci95_high"] - c["diff"]]).clip(0)
                h = ax.errorbar(c["diff"], yy, xerr=np.nan_to_num(err), fmt=st["marker"], color=st["color"],
                                ecolor=st["color"], capsize=3, markersize=5, linewidth=1.2)
                h[-1][0].set_linestyle(st["linestyle"])
                handles[comp] = h
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_yticks(y)
            ax.set_yticklabels(labels)
            ax.grid(axis="y", visible=False)
            ax.set_xlabel(f"Difference ({unit})")
        axes[0, 0].set_title("Paired differences from the first scenario (points: mean; bars: 95% CI)")
        fig.tight_layout()
        _legend_below(fig, list(handles.values()), list(handles), min(len(handles), 2))
        return save(fig, path)


def plot_shares(table: pd.DataFrame, path: Path) -> Path:
    """Shares of patients (e.g. rebound intracranial hypertension, persistent symptoms) by patient group, one
    panel per measure, one bar per series with 95% CI whiskers.

    `table` columns: measure (panel title), series, group, mean, ci95_low, ci95_high (shares in [0, 1])."""
    measures = list(dict.fromkeys(table["measure"]))
    series = list(dict.fromkeys(table["series"]))
    groups = list(dict.fromkeys(table["group"]))
    with _style():
        fig, axes = _grid(len(measures), 2, max(4.5, 0.35 * len(groups) * max(2, len(series))), 3.2)
        handles: dict[str, object] = {}
        for ax, measure in zip(axes, measures, strict=True):
            handles = _grouped_bars(ax, table[table["measure"] == measure], "group", series, groups, scale=100)
            ax.set_xticklabels(groups, rotation=20, ha="right")
            ax.set_title(measure)
            ax.set_ylim(bottom=0)
            ax.set_ylabel("Share of patients who reached care (%)")
            ax.set_xlabel("Patient group (etiology)")
        fig.tight_layout()
        _legend_below(fig, list(handles.values()), list(handles), min(len(handles), 3))
        return save(fig, path)


def plot_explanation(parts: pd.DataFrame, path: Path) -> Path:
    """Where a difference B - A comes from: one panel per explained measure, one bar per parameter group (its
    Shapley contribution, 95% CI whisker), then the structure part and the total B - A (black).

    `parts` columns: panel (title with unit), label, kind ("group", "structure" or "total"), contribution,
    ci95_low, ci95_high."""
    panels = list(dict.fromkeys(parts["panel"]))
    rows = max(parts.groupby("panel").size())
    with _style():
        fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, len(panels) * (0.7 + 0.27 * rows)), squeeze=False)
        for ax, panel in zip(axes[:, 0], panels, strict=True):
            sel = parts[parts["panel"] == panel]
            y = np.arange(len(sel))[::-1].astype(float)
            colours = [COLOURS[0] if k == "total" else COLOURS[5] if k == "structure" else COLOURS[1]
                       for k in sel["kind"]]
            err = np.vstack([sel["contribution"] - sel["ci95_low"], sel["ci95_high"] - sel["contribution"]]).clip(0)
            ax.barh(y, sel["contribution"], color=colours, height=0.6, xerr=np.nan_to_num(err), capsize=3,
                    error_kw={"linewidth": 1.0})
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_yticks(y)
            ax.set_yticklabels(list(sel["label"]))
            ax.grid(axis="y", visible=False)
            ax.set_title(panel, loc="left")
            ax.set_xlabel("Contribution to B - A (bars: mean; whiskers: 95% CI)")
        fig.tight_layout()
        return save(fig, path)
