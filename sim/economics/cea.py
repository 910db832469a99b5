"""Cost-effectiveness analysis: pure functions on arrays (no simulation, no files).

Conventions: strategy B is compared with strategy A; incremental = B - A. Costs in the scenario's currency,
effects in QALYs, willingness to pay (WTP) in currency per QALY.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np


def icer(d_cost: float, d_qaly: float) -> float:
    """Incremental cost-effectiveness ratio d_cost / d_qaly (nan when d_qaly is 0: use `verdict`)."""
    return d_cost / d_qaly if d_qaly != 0 else math.nan


def verdict(d_cost: float, d_qaly: float) -> str:
    """How B stands against A: dominant (cheaper and better), dominated, same, or an ICER quadrant."""
    if d_cost == 0 and d_qaly == 0:
        return "identical"
    if d_cost <= 0 and d_qaly >= 0:
        return "B dominant (cheaper, no worse)"
    if d_cost >= 0 and d_qaly <= 0:
        return "B dominated (dearer, no better)"
    if d_qaly > 0:
        return "B more costly and more effective: compare the ICER with the WTP"
    return "B cheaper and less effective: ICER is the saving per QALY given up"


def nmb(cost: np.ndarray | float, qaly: np.ndarray | float, wtp: float) -> np.ndarray:
    """Net monetary benefit: wtp x QALYs - cost."""
    return wtp * np.asarray(qaly, dtype=float) - np.asarray(cost, dtype=float)


def prob_optimal(costs: np.ndarray, qalys: np.ndarray, wtps: Sequence[float]) -> np.ndarray:
    """Cost-effectiveness acceptability: for each WTP (rows), the share of samples in which each strategy
    (columns of `costs`, `qalys`: samples x strategies) has the highest NMB. Ties go to the first strategy."""
    c = np.atleast_2d(np.asarray(costs, dtype=float))
    q = np.atleast_2d(np.asarray(qalys, dtype=float))
    out = np.zeros((len(wtps), c.shape[1]))
    for i, w in enumerate(wtps):
        best = np.argmax(nmb(c, q, w), axis=1)
        out[i] = np.bincount(best, minlength=c.shape[1]) / c.shape[0]
    return out


def evpi(costs: np.ndarray, qalys: np.ndarray, wtp: float) -> float:
    """Expected value of perfect information per patient: E[max_j NMB_j] - max_j E[NMB_j] (samples x strategies)."""
    b = nmb(np.atleast_2d(costs), np.atleast_2d(qalys), wtp)
    # As the mean of each sample's regret against the strategy best on average: the same value, but a mean of
    # terms >= 0 computed exactly, so never negative from rounding (the difference of the two means gave
    # -1.5e-11) and exactly 0 when one strategy is best in every sample.
    chosen = int(np.argmax(b.mean(axis=0)))
    return float((b.max(axis=1) - b[:, chosen]).mean())


def evppi_blocks(samples: int, bins: int | None = None) -> int:
    """Blocks of the sort-and-split EVPPI: `bins`, or about sqrt(samples), within 1..samples."""
    return max(1, min(samples, bins if bins is not None else round(math.sqrt(samples))))


def evppi_single(costs: np.ndarray, qalys: np.ndarray, theta: np.ndarray, wtp: float, bins: int | None = None
                 ) -> float:
    """Expected value of partial perfect information about one parameter, per patient (samples x strategies).

    Sort and split (Strong & Oakley 2013, Med Decis Making 33:755): the samples sorted by the parameter's drawn
    value `theta` fall into `bins` blocks of nearly equal size (default about sqrt(samples)); within a block the
    parameter is nearly known, so the value of knowing it is the mean over blocks of the best strategy's NMB in the
    block, minus the NMB of the strategy best on average. Written as the blocks' regrets, it is never negative and,
    since a block's best mean is at most its mean of each sample's best, never above the EVPI. Small blocks bias it
    up (noise looks like information), large ones down."""
    b = nmb(np.atleast_2d(costs), np.atleast_2d(qalys), wtp)
    k = b.shape[0]
    n_bins = evppi_blocks(k, bins)
    chosen = int(np.argmax(b.mean(axis=0)))
    blocks = np.array_split(np.argsort(np.asarray(theta, dtype=float), kind="stable"), n_bins)
    regret = sum(len(g) * (float(b[g].mean(axis=0).max()) - float(b[g, chosen].mean())) for g in blocks if len(g))
    return max(0.0, regret / k)


def evppi_regression(costs: np.ndarray, qalys: np.ndarray, theta: np.ndarray, wtp: float) -> float:
    """Expected value of partial perfect information about a group of parameters, per patient.

    The regression method (Strong, Oakley & Brennan 2014, Med Decis Making 34:311) with a linear basis: each
    strategy's NMB, less the first's, is regressed on the group's drawn values (`theta`: samples x parameters,
    standardized) by least squares; the fitted values estimate the NMB expected once the group is known, and the
    EVPPI is the mean regret of the strategy best on average against the best fitted one. Linear in the
    parameters, so it misses effects that bend; never negative, and never above the EVPI (capped). NaN when there
    are fewer than five samples per coefficient (the fit would mostly follow noise)."""
    b = nmb(np.atleast_2d(costs), np.atleast_2d(qalys), wtp)
    x = np.asarray(theta, dtype=float).reshape(b.shape[0], -1)
    k = b.shape[0]
    if k < 5 * (x.shape[1] + 1):
        return math.nan
    sd = x.std(axis=0)
    design = np.column_stack([np.ones(k), (x[:, sd > 0] - x[:, sd > 0].mean(axis=0)) / sd[sd > 0]])
    relative = b - b[:, :1]  # the first strategy's NMB is the reference (its own column fits as 0)
    coef, *_ = np.linalg.lstsq(design, relative, rcond=None)
    fitted = design @ coef
    chosen = int(np.argmax(b.mean(axis=0)))
    value = float((fitted.max(axis=1) - fitted[:, chosen]).mean())
    return min(max(0.0, value), evpi(costs, qalys, wtp))


def cea_summary(costs: np.ndarray, qalys: np.ndarray, wtp: float) -> dict[str, float | str]:
    """Headline numbers for B vs A from per-sample costs and QALYs (samples x 2)."""
    c = np.asarray(costs, dtype=float)
    q = np.asarray(qalys, dtype=float)
    d_c = c[:, 1] - c[:, 0]
    d_q = q[:, 1] - q[:, 0]
    mc, mq = float(d_c.mean()), float(d_q.mean())
    inc_nmb = nmb(d_c, d_q, wtp)
    return {
        "wtp": wtp, "samples": len(c),
        "cost_a": float(c[:, 0].mean()), "cost_b": float(c[:, 1].mean()),
        "qaly_a": float(q[:, 0].mean()), "qaly_b": float(q[:, 1].mean()),
        "inc_cost": mc, "inc_qaly": mq, "icer": icer(mc, mq), "verdict": verdict(mc, mq),
        "inc_nmb": float(inc_nmb.mean()),
        "inc_nmb_ci95_low": float(np.quantile(inc_nmb, 0.025)), "inc_nmb_ci95_high": float(np.quantile(inc_nmb, 0.975)),
        "prob_b_cost_effective": float((inc_nmb > 0).mean()),
        "evpi_per_patient": evpi(c, q, wtp),
    }


def variance_split(sample_means: np.ndarray, within_var: np.ndarray, reps: int) -> dict[str, float]:
    """Two-level split of the variance of PSA sample means into parameter uncertainty and simulation noise.

    Var(sample mean) = Var_parameters + E[within-sample variance] / R. The noise part is estimated by the mean
    within-sample variance over R, the parameter part by the rest (floored at 0)."""
    m = np.asarray(sample_means, dtype=float)
    w = np.asarray(within_var, dtype=float)
    ok = ~np.isnan(m)
    total = float(np.var(m[ok], ddof=1)) if ok.sum() > 1 else math.nan
    wv = w[ok & ~np.isnan(w)]  # no within-sample variance with one replication per sample: split undefined
    noise = float(wv.mean() / reps) if wv.size and reps > 0 else math.nan
    param = max(total - noise, 0.0) if not math.isnan(total) else math.nan
    denom = param + noise
    return {"var_total": total, "var_parameters": param, "var_noise": noise,
            "share_parameters": param / denom if denom > 0 else math.nan,
            "share_noise": noise / denom if denom > 0 else math.nan}


def sobol_indices(fn: Callable[[np.ndarray], np.ndarray], names: Sequence[str], n: int, seed: int = 1,
                  second_order: bool = False) -> dict[str, np.ndarray]:
    """First-order (S1) and total (ST) Sobol indices, with 95% confidence half-widths, of `fn` on the unit cube.

    `fn` maps an (N, d) array of points in (0, 1)^d to N outputs; SALib's Saltelli/Sobol design asks for
    n x (d + 2) points (n a power of 2). Inputs are uniform here: pass them through each parameter's inverse CDF
    inside `fn`."""
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    problem = {"num_vars": len(names), "names": list(names), "bounds": [[0.0, 1.0]] * len(names)}
    if n & (n - 1):
        warnings.warn(f"--sobol {n} is not a power of 2: the Sobol' sequence balances only at powers of 2 "
                      f"(e.g. {1 << n.bit_length()}), so the indices converge more slowly", stacklevel=2)
    with warnings.catch_warnings():  # SALib's own note on the same, as a multi-line UserWarning
        warnings.simplefilter("ignore", UserWarning)
        x = sobol_sample.sample(problem, n, calc_second_order=second_order, seed=seed)
    x = np.clip(x, 1e-12, 1 - 1e-12)
    y = np.asarray(fn(x), dtype=float)
    res = sobol_analyze.analyze(problem, y, calc_second_order=second_order, seed=seed)
    return {"S1": np.asarray(res["S1"]), "S1_conf": np.asarray(res["S1_conf"]), "ST": np.asarray(res["ST"]),
            "ST_conf": np.asarray(res["ST_conf"])}


def sobol_design_size(n: int, d: int, second_order: bool = False) -> int:
    return n * (2 * d + 2) if second_order else n * (d + 2)
