"""Derive `clinical.residual_symptoms` from the Bern cohort's figures: python tools/derive_residual_symptoms.py

The figures (Scutelnic et al. 2025, Eur J Neurol 32:e70237, Bern; 56 patients invasively treated for SIH):
persistent headache after sealing in 11 of 56, with a time from symptom onset to treatment of median 362 days
(IQR 138 to 714) in those patients and 111 days (IQR 68 to 365) in the others. The model's rule is
logit p(d) = logit p90 + ln(OR) * log2(d / 90), for d days from onset to the seal. Taking the cohort's delays as
lognormal (median m, sigma s), the four unknowns m, s, p90 and OR are fitted by least squares to the seven
figures (the share, and the median and quartiles of each group, on the log scale). The result goes into
scenarios/base.toml with this script named as its source.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from sim.model.rules import residual_probability as probability

SHARE = 11 / 56
WITH = (138.0, 362.0, 714.0)  # quartiles of onset-to-treatment days, persistent headache after sealing
WITHOUT = (68.0, 111.0, 365.0)  # the others
NODES = np.linspace(-8.0, 8.0, 4001)  # standard-normal grid for the integrals
DENSITY = stats.norm.pdf(NODES)


def quartiles(weights: np.ndarray, days: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights) / weights.sum()
    return np.interp([0.25, 0.5, 0.75], cdf, days)


def implied(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Share with persistent headache, and each group's quartiles, for parameters x."""
    median, sigma, p90, odds_ratio = np.exp(x[0]), np.exp(x[1]), 1 / (1 + np.exp(-x[2])), np.exp(x[3])
    days = median * np.exp(sigma * NODES)
    p = probability(days, p90, odds_ratio)
    share = float((p * DENSITY).sum() / DENSITY.sum())
    return share, quartiles(p * DENSITY, days), quartiles((1 - p) * DENSITY, days)


def residuals(x: np.ndarray) -> np.ndarray:
    share, q_with, q_without = implied(x)
    # the share on the logit scale, the quartiles on the log scale: comparable units
    logit = lambda v: np.log(v / (1 - v))  # noqa: E731
    return np.concatenate([[logit(share) - logit(SHARE)], np.log(q_with / WITH), np.log(q_without / WITHOUT)])


def main() -> None:
    fit = optimize.least_squares(residuals, x0=[np.log(150.0), 0.0, -2.0, np.log(2.0)])
    median, sigma, p90, odds_ratio = np.exp(fit.x[0]), np.exp(fit.x[1]), 1 / (1 + np.exp(-fit.x[2])), \
        np.exp(fit.x[3])
    share, q_with, q_without = implied(fit.x)
    print(f"cohort delays lognormal: median {median:.0f} d, sigma {sigma:.2f}")
    print(f"probability_at_90_days = {p90:.3f}, odds_ratio_per_doubling = {odds_ratio:.2f}")
    print(f"reproduces: share {share:.3f} (published {SHARE:.3f}); persistent quartiles "
          f"{', '.join(f'{v:.0f}' for v in q_with)} (published {WITH}); others "
          f"{', '.join(f'{v:.0f}' for v in q_without)} (published {WITHOUT})")
    for days in (30, 90, 180, 365, 730, 1460):
        print(f"  sealed {days:5d} d after onset: {probability(np.array(days), p90, odds_ratio):.3f}")


if __name__ == "__main__":
    main()
