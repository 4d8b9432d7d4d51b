"""When have both pipelines settled, so that analysing can begin?

A fixed warmup wastes most of a short run: the collectors are up in seconds,
and what still moves after that is their series count filling up and their
rate windows filling in. So the warmup ends once every watched figure (each
variant's active series and datapoint rate) has stopped moving: the mean of
its last `SETTLED_SAMPLES` samples is within `SETTLED_TOLERANCE` of the mean
of the `SETTLED_SAMPLES` before them. Means of a few samples, not single
samples, because a rate over a window that holds a handful of batches
flickers by one batch from sample to sample while its level stays put. The
rule and its two constants are fixed before the data. Analysis begins at the
sample after those compared, so no sample both ends the warmup and counts in
the verdict; the experiment's `warmup` bounds the wait for a pipeline that
never settles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

SETTLED_SAMPLES = 4
SETTLED_TOLERANCE = 0.05


def first_analysed(figures: Mapping[str, Sequence[float | None]], earliest: int = 0) -> int | None:
    """The index of the first sample to analyse, `earliest` or later: the one after the first two runs
    of `SETTLED_SAMPLES` whose means agree for every figure; None while there are none. A missing
    sample in either run postpones the end."""
    if not figures:
        return None
    rows = np.array([[math.nan if v is None else v for v in values] for values in figures.values()], dtype=np.float64)
    for end in range(max(2 * SETTLED_SAMPLES, earliest), rows.shape[1] + 1):
        compared = rows[:, end - 2 * SETTLED_SAMPLES : end]
        if np.any(~np.isfinite(compared)):
            continue
        before = compared[:, :SETTLED_SAMPLES].mean(axis=1)
        recent = compared[:, SETTLED_SAMPLES:].mean(axis=1)
        if np.all(np.abs(recent - before) <= SETTLED_TOLERANCE * np.abs(compared.mean(axis=1))):
            return end
    return None
