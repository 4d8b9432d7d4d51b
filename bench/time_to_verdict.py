"""Benchmark: samples until a final verdict, sequential vs fixed-horizon.

Both modes analyse the same simulated experiments (paired AR(1) noise, true
reduction = objective + 0.15). The sequential mode checks after every sample
at alpha = 0.05 and stops at its first final decision. The fixed-horizon test
(Wilcoxon / Hodges-Lehmann on block means) is run at the same error rate: its
level is lowered until its measured false-promotion rate (true reduction equal
to the objective) is no higher than the sequential mode's, since on
autocorrelated samples its nominal level is not its real one. It then gets
the horizon a planner would choose: the fewest samples at which it promotes
in at least 90% of runs.

    .venv/bin/python -m bench.time_to_verdict [--simulations 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import numpy as np
from tests import simulate

from phoenix_analysis import engine

HORIZON = 240
CLEAR_REDUCTION = 0.8
GRID = range(10, HORIZON + 1, 5)


ALPHAS = (0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.005)


def promote_rate(experiments: list[dict[str, Any]], n: int, alpha: float) -> float:
    looks = [{**simulate.prefix(d, n), "mode": "fixed", "alpha": alpha} for d in experiments]
    decisions = [engine.analyze(look)["decision"] for look in looks]
    return float(np.mean([d == "Promote" for d in decisions]))


def powered_horizon(experiments: list[dict[str, Any]], alpha: float, simulations: int) -> int:
    """Fewest samples in GRID at which the fixed test promotes in >= 90% of runs.

    Power rises with the number of samples, so a binary search finds it."""
    grid = list(GRID)
    low, high = 0, len(grid) - 1
    if promote_rate(experiments, grid[high], alpha) < 0.9:
        return HORIZON
    while low < high:
        middle = (low + high) // 2
        if promote_rate(experiments, grid[middle], alpha) >= 0.9:
            high = middle
        else:
            low = middle + 1
    return grid[low]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    experiments = [simulate.experiment(rng, HORIZON, reduction=CLEAR_REDUCTION) for _ in range(args.simulations)]

    stops = []
    for data in experiments:
        result = engine.analyze(data)
        stops.append(result["decidedAtIndex"] + 1 if result["decision"] != "Inconclusive" else HORIZON)
    sequential = statistics.median(stops)

    null_rng = np.random.default_rng(7)
    nulls = [simulate.experiment(null_rng, HORIZON, reduction=0.5) for _ in range(args.simulations)]
    false_sequential = float(np.mean([engine.analyze(d)["decision"] == "Promote" for d in nulls]))
    print(f"simulated experiments: {args.simulations}, true reduction {CLEAR_REDUCTION}, objective 0.50")
    print(
        f"sequential (alpha 0.05): median {sequential:.0f} samples to a final decision, "
        f"false promotions {false_sequential:.3f}"
    )

    fixed, chosen = HORIZON, None
    for alpha in ALPHAS:
        horizon = powered_horizon(experiments, alpha, args.simulations)
        false_fixed = promote_rate(nulls, horizon, alpha)
        print(f"fixed (alpha {alpha:.3f}): {horizon} samples for 90% power, false promotions {false_fixed:.3f}")
        if false_fixed <= false_sequential:
            fixed, chosen = horizon, alpha
            break
    print(f"fixed horizon at the same error rate (alpha {chosen}): {fixed} samples")
    print(f"ratio sequential/fixed = {sequential / fixed:.2f} (target <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
