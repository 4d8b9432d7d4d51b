"""Intervals for the mean of an autocorrelated series, at every prefix at once.

Samples of one experiment are taken every few seconds from slowly moving
systems, so they are autocorrelated; an i.i.d. variance would be far too
small. Every interval here uses a long-run variance: the larger of the
Newey & West (1987) Bartlett-kernel estimate (bandwidth rule of Newey-West
1994, L = floor(4 (n/100)^(2/9))) and the AR(1)-implied long-run variance
gamma0 (1 + phi)/(1 - phi) used in AR(1) prewhitening (Andrews & Monahan
1992). A short Bartlett bandwidth alone underestimates persistent noise (by
40% for phi = 0.5 at L = 2), which would make every interval too narrow.
Assumptions: the series is weakly stationary around its mean and its
dependence is captured by a few lags or an AR(1).

`running_confidence_sequence` gives the anytime-valid bounds used in
sequential mode (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2021,
"Time-uniform central limit theory and asymptotic confidence sequences",
the two-sided Gaussian-mixture boundary), here with the long-run variance
in place of the i.i.d. variance. The mixture is tuned to be tightest at the
run's planned samples (`tightest_at`): a short run's sequence is as narrow
as it can be by its end. The plan is fixed before the data, as the
time-uniform guarantee needs. Tuning for a point before the end narrows the
early bounds further, but they then under-cover right-skewed query errors
(without the skewness term below, 0.90 of runs covered at a quarter of the
plan, against 0.94 at the plan).
`running_fixed_interval` is the classical fixed-horizon interval for comparison.

Both widen the bound on a skewed series' long-tail side by Hall's (1992)
Cornish-Fisher term for the studentized mean, skewness (2z^2 + 1) / 6 sqrt(k)
standard errors, z being the bound's own critical value. A right-skewed
series' mean and variance both run low until a large value comes, so a
symmetric upper bound falls below the true mean too often: at a real run's
query-error noise it held the true mean in 0.934 of 5,000 runs, short of
the 0.95 it promises (0.959 with the term).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def bandwidth(n: int) -> int:
    return int(_bandwidths(np.array([max(n, 1)]))[0])


def _bandwidths(k: Floats | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return np.floor(4 * (k / 100) ** (2 / 9)).astype(np.int64)


# An AR(1) coefficient this close to 1 would make the implied variance explode.
MAX_AR_COEFFICIENT = 0.95


def running_mean_and_long_run_variance(x: Floats) -> tuple[Floats, Floats, Floats]:
    """Mean, long-run variance and that variance's degrees of freedom, of x[:k] for every k = 1..n.

    The degrees of freedom are those of whichever estimate is used: 3k/2(L+1)
    for the Bartlett one (Priestley 1981), and for the AR(1) one k(1-phi^2)/(3+phi^2),
    from the delta method on log gamma0 (1+phi)/(1-phi) with var(log gamma0)
    about 2(1+phi^2)/k(1-phi^2) and var(phi) about (1-phi^2)/k.
    """
    n = len(x)
    centre = float(np.mean(x))
    y = x - centre  # variance is shift-invariant; centring avoids cancellation
    k = np.arange(1, n + 1, dtype=np.float64)
    prefix = np.concatenate([[0.0], np.cumsum(y)])
    mean = prefix[1:] / k
    max_lag = bandwidth(n)
    lags = np.minimum(_bandwidths(k), max_lag)
    gamma0 = (np.cumsum(y * y) - 2 * mean * prefix[1:] + k * mean**2) / k
    variance = gamma0.copy()
    ar_implied = gamma0.copy()
    ar_degrees = k.copy()
    for j in range(1, max_lag + 1):
        if j >= n:
            break
        products = np.concatenate([np.zeros(j), np.cumsum(y[j:] * y[:-j])])
        ends = np.arange(1, n + 1)
        later = prefix[ends] - prefix[np.minimum(j, ends)]
        earlier = prefix[np.maximum(ends - j, 0)]
        count = np.maximum(k - j, 0)
        gamma = (products - mean * (later + earlier) + count * mean**2) / k
        weight = np.where(lags >= j, 1 - j / (lags + 1), 0.0)
        variance = variance + 2 * weight * gamma
        if j == 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                phi = np.where(gamma0 > 0, gamma / gamma0, 0.0)
            # Kendall (1954) bias correction of the lag-1 estimate, then the
            # variance lost to estimating the mean (about LRV/k) added back.
            phi = np.clip(phi + (1 + 3 * phi) / k, 0.0, MAX_AR_COEFFICIENT)
            factor = (1 + phi) / (1 - phi)
            ar_implied = gamma0 * factor / np.maximum(1 - factor / k, 0.25)
            ar_degrees = k * (1 - phi**2) / (3 + phi**2)
    long_run = np.maximum(np.maximum(variance, ar_implied), 0.0)
    degrees = np.where(ar_implied >= variance, ar_degrees, 1.5 * k / (lags + 1))
    return mean + centre, long_run, degrees


def _bounded(
    mean: Floats, low_margin: Floats, high_margin: Floats, degrees: Floats, alpha: float
) -> tuple[Floats, Floats, Floats]:
    """Widen the margins for small samples.

    The variance is estimated from the data, so a Student-t correction on
    the long-run variance's degrees of freedom widens the margins where few
    samples back them, and vanishes as they grow.
    """
    # tenths of a degree of freedom, capped where t and normal agree, so ppf runs on few values
    degrees = np.clip(np.round(degrees, 1), 1, 1000)
    unique, positions = np.unique(degrees, return_inverse=True)
    t_over_normal = np.asarray(stats.t.ppf(1 - alpha / 2, unique), dtype=np.float64) / float(
        stats.norm.ppf(1 - alpha / 2)
    )
    widening = t_over_normal[positions]
    return mean, mean - low_margin * widening, mean + high_margin * widening


def running_skewness(x: Floats) -> Floats:
    """Sample skewness of x[:k] for every k = 1..n (0 where x[:k] does not vary)."""
    y = x - float(np.mean(x))
    k = np.arange(1, len(x) + 1, dtype=np.float64)
    first, second, third = (np.cumsum(y**power) / k for power in (1, 2, 3))
    variance = second - first**2
    third_moment = third - 3 * first * second + 2 * first**3
    with np.errstate(divide="ignore", invalid="ignore"):
        skewness = np.where(variance > 0, third_moment / np.maximum(variance, 0.0) ** 1.5, 0.0)
    return np.asarray(skewness, dtype=np.float64)


def _cs_margin(k: Floats, alpha: float, tightest_at: int) -> Floats:
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tightest_at
    margin = np.sqrt(2 * (k * rho2 + 1) / (k * k * rho2) * np.log(np.sqrt(k * rho2 + 1) / alpha))
    return np.asarray(margin, dtype=np.float64)


def sequence_critical_value(k: Floats, alpha: float, tightest_at: int) -> Floats:
    """The confidence sequence's margin in standard errors at k samples: its anytime-valid z."""
    return _cs_margin(k, alpha, tightest_at) * np.sqrt(k)


def running_confidence_sequence(x: Floats, alpha: float, tightest_at: int) -> tuple[Floats, Floats, Floats]:
    """(mean, low, high) at every prefix; with probability >= 1 - alpha (asymptotically)
    the true mean lies inside the bounds at every prefix simultaneously."""
    k = np.arange(1, len(x) + 1, dtype=np.float64)
    return _running_bounds(x, alpha, sequence_critical_value(k, alpha, tightest_at))


def running_fixed_interval(x: Floats, alpha: float) -> tuple[Floats, Floats, Floats]:
    """(mean, low, high) at every prefix, each valid only if it is the one looked at."""
    return _running_bounds(x, alpha, np.full(len(x), float(stats.norm.ppf(1 - alpha / 2))))


def _running_bounds(x: Floats, alpha: float, critical: Floats) -> tuple[Floats, Floats, Floats]:
    mean, variance, degrees = running_mean_and_long_run_variance(x)
    k = np.arange(1, len(x) + 1, dtype=np.float64)
    standard_error = np.sqrt(variance / k)
    # widened on the long tail's side only, the side a skewed series' mean misses on
    skewness = running_skewness(x)
    skew_term = standard_error * (2 * critical**2 + 1) / (6 * np.sqrt(k))
    symmetric = critical * standard_error
    low_margin = symmetric + skew_term * np.maximum(-skewness, 0.0)
    high_margin = symmetric + skew_term * np.maximum(skewness, 0.0)
    return _bounded(mean, low_margin, high_margin, degrees, alpha)


def hodges_lehmann_interval(x: Floats, alpha: float, threshold: float) -> tuple[Interval, float]:
    """Kayenta-style fixed-horizon answer: Wilcoxon signed-rank on block means.

    Samples are first averaged in non-overlapping blocks of L+1 (the HAC
    bandwidth) so that block means are nearly independent, as the test
    assumes (it also assumes their distribution is symmetric). Returns the
    Hodges-Lehmann estimate with the interval from inverting the signed-rank
    test, and the one-sided p-value that the centre exceeds `threshold`.
    """
    block = bandwidth(len(x)) + 1
    usable = len(x) // block * block
    means = x[:usable].reshape(-1, block).mean(axis=1) if usable else x
    m = len(means)
    i, j = np.triu_indices(m)
    walsh = np.sort((means[i] + means[j]) / 2)
    total = len(walsh)
    z = stats.norm.ppf(1 - alpha / 2)
    rank = int(np.floor(total / 2 - z * np.sqrt(m * (m + 1) * (2 * m + 1) / 24)))
    rank = min(max(rank, 0), total - 1)
    interval = Interval(float(np.median(walsh)), float(walsh[rank]), float(walsh[total - 1 - rank]))
    shifted = means - threshold
    p_value = float(stats.wilcoxon(shifted, alternative="greater").pvalue) if np.any(shifted != 0) else 1.0
    return interval, p_value
