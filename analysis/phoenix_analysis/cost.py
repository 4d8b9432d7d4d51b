"""Monthly cost of a variant, per sample, from the user's price list.

cost = datapoints per month x $/million + active series x $/series-month
       + collector CPU cores x $/core-month + collector memory GiB x $/GiB-month.
The saving at each sample is baseline cost minus candidate cost, so the
collector's own overhead (a costlier candidate collector) is netted out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from phoenix_analysis import contract

Floats = npt.NDArray[np.float64]
MINUTES_PER_MONTH = 60 * 24 * 30
GIB = 1024**3


def monthly_cost(
    prices: contract.CostModel,
    series: Floats,
    datapoints_per_minute: Floats,
    cpu_cores: Floats | None,
    memory_bytes: Floats | None,
) -> Floats:
    cost = (
        datapoints_per_minute * MINUTES_PER_MONTH / 1e6 * prices.usd_per_million_datapoints
        + series * prices.usd_per_active_series_month
    )
    if cpu_cores is not None:
        cost = cost + cpu_cores * prices.usd_per_cpu_core_month
    if memory_bytes is not None:
        cost = cost + memory_bytes / GIB * prices.usd_per_gib_month
    return np.asarray(cost, dtype=np.float64)
