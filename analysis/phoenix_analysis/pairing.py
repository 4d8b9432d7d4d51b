"""Did both variants receive the same input?

The design is paired: a difference between the variants is the pipeline's
only because both got the same points. A variant that receives less (a
LoadSim target that failed, a mirror copy dropped, a collector that was
down) looks cheaper for it. Each variant's collector counts the points its
receivers accepted; the check compares the two counters' increases since
the first sample, at every sample. Counter resets (a restarted collector)
count from zero, as Prometheus' `increase` does.

The counters are read a moment apart and grow in batches, so their totals
at any one sample can differ by a batch without a point lost. A difference
in input shows instead as a drift: the gap between the two totals, in
samples' worth of the baseline's input, grows by the relative difference
every sample. Its slope is fitted as the trend is (`trend.fits`, with the
same time-uniform bounds), so the noise of the readings, whatever their
granularity, sets how soon a difference can be shown; the inputs differ
once that interval lies wholly beyond the tolerance.

A LoadSim also counts, per target, the batches each collector accepted and
the ones it never did (send errors, drops). Those counts are exact, so the
share of batches lost on one variant and not the other needs no interval:
beyond the tolerance, the inputs differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from phoenix_analysis import trend

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Agreement:
    """Each variant's accepted points since the first sample, at every sample, and where they differ."""

    baseline: Floats
    candidate: Floats
    difference: Floats  # the candidate's input rate over the baseline's, less 1
    differs: npt.NDArray[np.bool_]  # shown beyond the tolerance


def increments(counter: Floats) -> Floats:
    """Per-sample increases of a counter; a fall is a reset, after which it counts from zero; NaN adds nothing."""
    valid = np.flatnonzero(~np.isnan(counter))
    steps = np.zeros(len(counter))
    if len(valid) < 2:
        return steps
    values = counter[valid]
    rises = np.diff(values)
    steps[valid[1:]] = np.where(rises >= 0, rises, values[1:])
    return steps


def agreement(baseline: Floats, candidate: Floats, tolerance: float, alpha: float, tightest_at: int) -> Agreement:
    got = {name: np.cumsum(increments(counter)) for name, counter in (("b", baseline), ("c", candidate))}
    n = len(baseline)
    per_sample = got["b"][-1] / max(n - 1, 1)
    if per_sample <= 0:
        differs = np.full(n, got["c"][-1] > 0)
        return Agreement(got["b"], got["c"], np.where(differs, np.inf, 0.0), differs)
    gap = (got["c"] - got["b"]) / per_sample
    drift = trend.fits(gap, np.arange(n, dtype=np.float64), float(n - 1), alpha, tightest_at)
    differs = (drift.slope_low > tolerance) | (drift.slope_high < -tolerance)
    return Agreement(got["b"], got["c"], drift.slope, differs)


@dataclass(frozen=True)
class Delivery:
    """What a LoadSim delivered to each variant since the first sample, at every sample."""

    sent: dict[str, Floats]  # by variant: batches its collector accepted
    failed: dict[str, Floats]  # by variant: batches it never accepted
    differs: npt.NDArray[np.bool_]  # the shares lost differ beyond the tolerance


def _lost_share(sent: Floats, failed: Floats) -> Floats:
    attempted = sent + failed
    return np.divide(failed, attempted, out=np.zeros_like(attempted), where=attempted > 0)


def delivery(sent: dict[str, Floats], failed: dict[str, Floats], tolerance: float) -> Delivery:
    """`sent` and `failed` are each variant's LoadSim counters as read at each sample."""
    total_sent = {variant: np.cumsum(increments(counter)) for variant, counter in sent.items()}
    total_failed = {variant: np.cumsum(increments(counter)) for variant, counter in failed.items()}
    lost = {variant: _lost_share(total_sent[variant], total_failed[variant]) for variant in total_sent}
    return Delivery(total_sent, total_failed, np.abs(lost["candidate"] - lost["baseline"]) > tolerance)
