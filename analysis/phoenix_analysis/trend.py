"""Is the paired reduction drifting, and where does its line reach by the run's planned end?

The mean's confidence sequence assumes a stationary series. A candidate
whose series pile up (a stateful processor without a staleness limit, a
churn of attribute values) shows a large reduction early and falls through
the objective later; its mean still clears it. So a Promote also needs the
reduction's straight-line fit, projected to the planned end of the run, to
clear the objective with its one-sided lower bound at alpha/2 (the same
one-sided level as the mean's sequence). Early in a run the slope is poorly
known, so the projection is wide and only a large margin promotes; at the
planned end the projection is the fitted level now, whose standard error is
about twice the mean's.

The fit is least squares of the reduction on the sample's time, at every
prefix, from cumulative sums (O(n)). The slope's variance is the residuals'
long-run variance over Sxx, the long-run variance being AR(1)-implied with
Kendall's bias correction, as in `intervals`. Assumptions: a linear trend
plus weakly stationary noise. The projection is checked at every sample with
a fixed critical value; the calibration test measures what that peeking costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from phoenix_analysis import intervals

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Fits:
    """The fitted line of every prefix k = 1..n, in sample units (t counts sample intervals)."""

    slope: Floats
    slope_low: Floats
    slope_high: Floats
    level_now: Floats  # the line at the prefix's last sample
    projected: Floats  # the line at the planned end
    projected_low: Floats  # its one-sided lower bound

    def at(self, index: int) -> tuple[intervals.Interval, float, intervals.Interval]:
        """(slope, level now, projection) at one prefix."""
        projection_margin = float(self.projected[index] - self.projected_low[index])
        return (
            intervals.Interval(float(self.slope[index]), float(self.slope_low[index]), float(self.slope_high[index])),
            float(self.level_now[index]),
            intervals.Interval(
                float(self.projected[index]),
                float(self.projected_low[index]),
                float(self.projected[index] + projection_margin),
            ),
        )


def fits(x: Floats, t: Floats, planned_end: float, alpha: float, tightest_at: int) -> Fits:
    """Fits of x[:k] against t[:k] for every k; `planned_end` is the t the run is planned to reach.

    `tightest_at` tunes the time-uniform critical value as `intervals.running_confidence_sequence`'s."""
    y = x - float(np.mean(x))  # shift-invariant slope; centring avoids cancellation
    centre_t = float(np.mean(t))
    s = t - centre_t
    k = np.arange(1, len(x) + 1, dtype=np.float64)
    sum_s, sum_ss = np.cumsum(s), np.cumsum(s * s)
    sum_y, sum_sy, sum_yy = np.cumsum(y), np.cumsum(s * y), np.cumsum(y * y)
    mean_s, mean_y = sum_s / k, sum_y / k
    sxx = sum_ss - k * mean_s**2
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > 0, (sum_sy - k * mean_s * mean_y) / sxx, 0.0)
    intercept = mean_y - slope * mean_s
    ssr = np.maximum(sum_yy - k * mean_y**2 - slope * (sum_sy - k * mean_s * mean_y), 0.0)
    gamma0 = ssr / k
    # lag-1 autocovariance of the residuals u = y - a - b s, expanded into cumulative sums
    previous_y, previous_s = np.concatenate([[0.0], y[:-1]]), np.concatenate([[0.0], s[:-1]])
    pair_count = np.maximum(k - 1, 0)
    sum_cross = np.cumsum(y * previous_y)
    sum_both_y = np.cumsum(np.where(k > 1, y + previous_y, 0.0))
    sum_mixed = np.cumsum(np.where(k > 1, s * previous_y + previous_s * y, 0.0))
    sum_both_s = np.cumsum(np.where(k > 1, s + previous_s, 0.0))
    sum_ss_lag = np.cumsum(np.where(k > 1, s * previous_s, 0.0))
    gamma1 = (
        sum_cross
        - intercept * sum_both_y
        - slope * sum_mixed
        + pair_count * intercept**2
        + intercept * slope * sum_both_s
        + slope**2 * sum_ss_lag
    ) / k
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(gamma0 > 0, gamma1 / gamma0, 0.0)
    phi = np.clip(phi + (1 + 3 * phi) / k, 0.0, intervals.MAX_AR_COEFFICIENT)
    long_run = gamma0 * (1 + phi) / (1 - phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        effective = np.where(long_run > 0, k * gamma0 / long_run, k)
        slope_se = np.where(sxx > 0, np.sqrt(long_run / sxx), np.inf)
        end = np.maximum(planned_end, t) - centre_t
        projected_se = np.where(sxx > 0, np.sqrt(long_run * (1 / k + (end - mean_s) ** 2 / sxx)), np.inf)
    # two parameters are estimated, so a Student t on effective - 2 degrees of freedom
    degrees = np.clip(np.floor(effective - 2), 1, 1000)
    # The projection's lower bound is one-sided at alpha, time-uniform as the mean's sequence is (it is
    # checked at every sample) and widened for few samples; the slope's interval is the same two-sided at 2 alpha.
    small_sample = _t_quantile(degrees, 1 - alpha) / float(stats.norm.ppf(1 - alpha))
    critical = intervals.sequence_critical_value(k, 2 * alpha, tightest_at) * small_sample
    level = float(np.mean(x))
    projected = level + intercept + slope * end
    return Fits(
        slope=slope,
        slope_low=slope - critical * slope_se,
        slope_high=slope + critical * slope_se,
        level_now=level + intercept + slope * (t - centre_t),
        projected=projected,
        projected_low=projected - critical * projected_se,
    )


def _t_quantile(degrees: Floats, q: float) -> Floats:
    unique, positions = np.unique(degrees, return_inverse=True)
    return np.asarray(stats.t.ppf(q, unique), dtype=np.float64)[positions]
