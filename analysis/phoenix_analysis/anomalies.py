"""Robust anomaly flags on a variant residual series.

Modified z-score of Iglewicz & Hoaglin (1993): 0.6745 (x - median) / MAD,
flagged above 3.5. Median and MAD ignore the outliers they look for, unlike
mean and standard deviation. Assumes most samples are ordinary.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

THRESHOLD = 3.5


def flagged(x: npt.NDArray[np.float64]) -> list[int]:
    median = np.median(x)
    mad = np.median(np.abs(x - median))
    if mad == 0:
        return []
    z = 0.6745 * (x - median) / mad
    return [int(i) for i in np.nonzero(np.abs(z) > THRESHOLD)[0]]
