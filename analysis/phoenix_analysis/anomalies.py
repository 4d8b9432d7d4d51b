"""Samples where one variant misbehaves and the other does not, with what they look like.

A paired difference is meaningful only where both variants ran normally. A
sample is flagged when one variant:
- has no value (a scrape gap: the target was down or the series went stale);
- departs from its own recent level while the other does not: the modified
  z-score of Iglewicz & Hoaglin (1993), 0.6745 (e - median) / MAD above 3.5,
  on the residual e of log(x) from the median of its previous WINDOW samples
  (at least MIN_HISTORY), for active series (datapoints per minute, a 1m rate
  of counters that grow in batches, jumps by a batch's share whenever a batch
  crosses the window's edge). The MAD has a floor of
  MIN_RELATIVE_SCALE, so a perfectly steady series does not flag noise;
- receives less than half its usual input over PAUSE_SAMPLES samples while
  the other does not (a load pause for one target);
- restarted (its uptime or accepted-points counter fell);
- missed a batch at the edge of a critical query's window: its edge points
  (the series with a point in the window's first or last step) fall more
  than MISSED_SHARE below their median around the sample while the other
  variant's do not. The variants store the same batches, with the same
  timestamps, so a batch only one of them holds was replaced in its
  exporter before its scrape: a rate over that window reads short on that
  variant alone.
Each flagged sample gets the first pattern that explains it: a restart within
RESTART_REACH samples before it (or the gap that precedes it), a scrape gap,
a missed batch, a load pause, or else an unexplained spike. Gap and
missed-batch samples leave the analysis; the others stay in. A missed batch
is the measurement's miss, not the variant's behaviour, so it is not counted
as an anomaly against the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from phoenix_analysis import pairing

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
THRESHOLD = 3.5
WINDOW = 10
MIN_HISTORY = 3
# churn moves a steady series by a few percent; departures below about 5% (3.5 scales) are not incidents
MIN_RELATIVE_SCALE = 0.01
PAUSE_SAMPLES = 3
# a restarted collector's series fill in again and its rate windows span the restart for a few samples
RESTART_REACH = 4
# a drop in the edge points smaller than this is churn, not a batch missed for a share of the series
MISSED_SHARE = 0.05
VariantName = Literal["baseline", "candidate"]
Pattern = Literal["collector restart", "scrape gap", "missed batch", "load pause", "spike"]
MISSED: Pattern = "missed batch"


@dataclass(frozen=True)
class VariantSeries:
    """One variant's series as the detector reads them; None where not measured."""

    figures: dict[str, Floats]  # every figure the verdict uses; NaN is a gap
    accepted_points: Floats | None
    uptime_seconds: Floats | None
    edge_points: Floats | None = None


@dataclass(frozen=True)
class Flag:
    index: int
    variant: VariantName
    pattern: Pattern


def departures(x: Floats) -> Mask:
    """Where x departs from its own recent level by the modified z-score."""
    flagged = np.zeros(len(x), dtype=bool)
    valid = np.flatnonzero(~np.isnan(x) & (x > 0))
    if len(valid) <= MIN_HISTORY:
        return flagged
    logs = np.log(x[valid])
    # the median of up to WINDOW previous samples, padded at the start so every window has MIN_HISTORY of them
    padded = np.concatenate([np.full(WINDOW - MIN_HISTORY, np.nan), logs[:-1]])
    recent = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[: len(logs) - MIN_HISTORY], axis=1)
    residual = logs[MIN_HISTORY:] - recent
    centre = np.median(residual)
    scale = max(float(np.median(np.abs(residual - centre))), MIN_RELATIVE_SCALE)
    flagged[valid[MIN_HISTORY:]] = np.abs(0.6745 * (residual - centre) / scale) > THRESHOLD
    return flagged


def _paused(accepted: Floats | None, n: int) -> Mask:
    if accepted is None:
        return np.zeros(n, dtype=bool)
    steps = pairing.increments(accepted)
    recent = np.convolve(steps, np.ones(PAUSE_SAMPLES), mode="full")[:n]
    usual = np.median(recent[PAUSE_SAMPLES:]) if n > PAUSE_SAMPLES else 0.0
    paused = recent < usual / 2
    paused[:PAUSE_SAMPLES] = False
    return paused


def _missed(edge_points: Floats | None, n: int) -> Mask:
    """Where the edge points fall more than MISSED_SHARE below the median of up to WINDOW samples on each side.

    Both sides, so the first samples are judged too (the first window's
    start is where a variant's first batches may be missing) and a series
    count that grows through the run is not read as a fall.
    """
    if edge_points is None:
        return np.zeros(n, dtype=bool)
    padded = np.concatenate([np.full(WINDOW, np.nan), edge_points, np.full(WINDOW, np.nan)])
    around = np.lib.stride_tricks.sliding_window_view(padded, 2 * WINDOW + 1)[:n].copy()
    around[:, WINDOW] = np.nan  # the sample itself
    enough = np.sum(~np.isnan(around), axis=1) >= MIN_HISTORY
    recent = np.full(n, np.nan)
    recent[enough] = np.nanmedian(around[enough], axis=1)
    with np.errstate(invalid="ignore"):
        missed: Mask = enough & (edge_points < (1 - MISSED_SHARE) * recent)
    return missed


def _restarts(variant: VariantSeries, n: int) -> Mask:
    restarted = np.zeros(n, dtype=bool)
    for counter in (variant.accepted_points, variant.uptime_seconds):
        if counter is None:
            continue
        valid = np.flatnonzero(~np.isnan(counter))
        falls = valid[1:][np.diff(counter[valid]) < 0]
        restarted[falls] = True
    return restarted


def detect(variants: dict[VariantName, VariantSeries], n: int) -> list[Flag]:
    """Every flagged sample with its variant and pattern, in sample order."""
    names = list(variants)
    gaps = {v: np.any([np.isnan(x) for x in variants[v].figures.values()], axis=0) for v in names}
    departs = {v: departures(variants[v].figures["active_series"]) for v in names}
    paused = {v: _paused(variants[v].accepted_points, n) for v in names}
    missed = {v: _missed(variants[v].edge_points, n) for v in names}
    flags: list[Flag] = []
    for v in names:
        other = next(o for o in names if o != v)
        restarted = _restarts(variants[v], n)
        near_restart = np.zeros(n, dtype=bool)
        for index in np.flatnonzero(restarted):
            first = index
            while first > 0 and gaps[v][first - 1]:
                first -= 1
            near_restart[first : index + RESTART_REACH + 1] = True
        missed_alone = missed[v] & ~missed[other]
        alone = (departs[v] & ~departs[other]) | (paused[v] & ~paused[other])
        for index in np.flatnonzero(gaps[v] | missed_alone | alone | restarted):
            pattern: Pattern = (
                "collector restart"
                if near_restart[index]
                else "scrape gap"
                if gaps[v][index]
                else MISSED
                if missed_alone[index]
                else "load pause"
                if paused[v][index]
                else "spike"
            )
            flags.append(Flag(int(index), v, pattern))
    # a sample both variants misbehave at is one flagged sample, told once per variant
    return sorted(flags, key=lambda f: (f.index, f.variant))
