"""Aggregate scores over seeds the way few-seed RL results should be reported (Agarwal et al. 2021, "Deep RL at
the Edge of the Statistical Precipice", the rliable library): the interquartile mean (IQM) and percentile-bootstrap
confidence intervals over runs.

- ``iqm``: the mean of the middle 50 % of the values, discarding ⌊n/4⌋ from each end after sorting (rliable's
  ``scipy.stats.trim_mean(x, 0.25)``); robust to one outlying seed, less noisy than the median.
- ``bootstrap_ci``: resample the runs with replacement, recompute the statistic, report the (α/2, 1 − α/2)
  percentiles of the resampled statistics (rliable's default interval, percentile bootstrap).

Deliberately not here: stratified bootstrap over tasks, performance profiles, probability of improvement (one
task at a time is all the experiments need yet), and plotting (``rlkit.plots``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def iqm(values, axis: int = 0) -> np.ndarray:
    """Interquartile mean along ``axis``: sort, drop ⌊n/4⌋ values from each end, average the rest. NaNs (runs
    without a value) are dropped first when ``values`` is 1-D."""
    x = np.asarray(values, np.float64)
    if x.ndim == 1:
        x = x[~np.isnan(x)]
        if x.size == 0:
            return np.float64(np.nan)
    x = np.sort(x, axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.mean(np.take(x, np.arange(cut, n - cut), axis=axis), axis=axis)


def bootstrap_ci(
    values,
    statistic: Callable[..., np.ndarray] = iqm,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
):
    """``(statistic, low, high)`` of the runs on axis 0 of ``values`` with its percentile-bootstrap ``confidence``
    interval (runs resampled with replacement ``resamples`` times). ``statistic(x, axis=...)`` reduces an axis.

    1-D ``values`` (one number per run; NaNs dropped) give three floats; ``values[runs, points]`` (a learning
    curve) give three arrays over points — use a NaN-aware statistic such as ``np.nanmean`` there."""
    x = np.asarray(values, np.float64)
    if x.ndim == 1:
        x = x[~np.isnan(x)]
        if x.size == 0:
            return np.nan, np.nan, np.nan
    point = statistic(x, axis=0)
    if x.shape[0] >= 2:
        rng = np.random.default_rng(seed)
        samples = x[rng.integers(0, x.shape[0], size=(resamples, x.shape[0]))]
        stats = statistic(samples, axis=1)
        low, high = np.nanpercentile(stats, [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100], axis=0)
    else:
        low = high = point
    if x.ndim == 1:
        return float(point), float(low), float(high)
    return point, low, high


def format_ci(point: float, low: float, high: float, digits: int = 2) -> str:
    """``"0.53 [0.40, 0.71]"``: a table cell."""
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
