"""Benchmark: samples until a final verdict, sequential vs fixed-horizon.

Both modes analyse the same simulated experiments (paired AR(1) noise), at a
true reduction of objective + 0.30, + 0.10 and + 0.05. The sequential mode checks after every sample
at alpha = 0.05 and stops at its first final decision. The fixed-horizon test
(Wilcoxon / Hodges-Lehmann on block means) is run at the same error rate: its
level is lowered until its measured false-promotion rate (true reduction equal
to the objective) is no higher than the sequential mode's, since on
autocorrelated samples its nominal level is not its real one. It then gets
the horizon a planner would choose: the fewest samples at which it promotes
in at least 90% of runs. Both figures are printed for the fixed test: with
the reduction's trend projected to its own horizon, and to the sequential
run's planned end, the question the sequential run answers.

A second peer, savvi's anytime-valid linear model (Lindon et al., arXiv
2210.08589), gets the same paired series reduction as Phoenix's confidence
sequence, the one interval a Promote or Reject rests on. Both look after
every sample at the same alpha; each stops at its first bound beyond the
objective. On i.i.d. noise, where savvi's assumptions hold, the samples to a
verdict are compared; on AR(1) noise, as real scrapes give, so are the false
Promotes at a true reduction equal to the objective.

    .venv/bin/python -m bench.time_to_verdict [--simulations 200] [--null-simulations 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from importlib.metadata import version
from typing import Any

import numpy as np
from savvi.linear_regression import LinearRegression
from tests import simulate

from phoenix_analysis import engine, intervals

HORIZON = 240
GRID = range(10, HORIZON + 1, 5)


ALPHAS = (0.05, 0.04, 0.03, 0.02, 0.015, 0.01, 0.005)


def promote_rate(experiments: list[dict[str, Any]], n: int, alpha: float, planned: int | None) -> float:
    """The share promoted by the fixed test at sample n, its trend projected to `planned` (None: to n)."""
    looks = [
        {**simulate.prefix(d, n), "mode": "fixed", "alpha": alpha, "plannedSamples": planned or n} for d in experiments
    ]
    decisions = [engine.analyze(look)["decision"] for look in looks]
    return float(np.mean([d == "Promote" for d in decisions]))


def powered_horizon(experiments: list[dict[str, Any]], alpha: float, planned: int | None) -> int:
    """Fewest samples in GRID at which the fixed test promotes in >= 90% of runs.

    Power rises with the number of samples, so a binary search finds it."""
    grid = list(GRID)
    low, high = 0, len(grid) - 1
    if promote_rate(experiments, grid[high], alpha, planned) < 0.9:
        return HORIZON
    while low < high:
        middle = (low + high) // 2
        if promote_rate(experiments, grid[middle], alpha, planned) >= 0.9:
            high = middle
        else:
            low = middle + 1
    return grid[low]


OBJECTIVE = 0.5
# the per-sample noise of the candidate's series relative to its level, as `simulate.experiment` gives it
NOISE_SD = 0.05
PEER_EFFECTS = (0.05, 0.10, 0.30)
# (name, AR(1) coefficient): 0 is i.i.d.; 0.5 is `simulate.experiment`'s default, 0.8 a slowly drifting series
NOISES = (("i.i.d.", 0.0), ("AR(1) 0.5", 0.5), ("AR(1) 0.8", 0.8))


def reduction_series(rng: np.random.Generator, n: int, reduction: float, phi: float) -> np.ndarray[Any, Any]:
    """Per-sample series reductions r - (1 - r) e, as a candidate at (1 - r)(1 + e) of its baseline gives."""
    noise = rng.normal(scale=NOISE_SD, size=n) if phi == 0 else simulate.ar1(rng, n, phi, NOISE_SD)
    return reduction - (1 - reduction) * noise


def _first_verdict(low: np.ndarray[Any, Any], high: np.ndarray[Any, Any], first: int) -> tuple[int, str]:
    """Samples to the first bound beyond the objective from sample `first` on, and the verdict it gives."""
    decided = np.flatnonzero(((low > OBJECTIVE) | (high < OBJECTIVE)) & (np.arange(len(low)) + 1 >= first))
    if len(decided) == 0:
        return len(low), "Inconclusive"
    index = int(decided[0])
    return index + 1, "Promote" if low[index] > OBJECTIVE else "Reject"


def phoenix_verdict(series: np.ndarray[Any, Any], alpha: float) -> tuple[int, str]:
    _, low, high = intervals.running_confidence_sequence(series, alpha, HORIZON)
    return _first_verdict(low, high, engine.MIN_SAMPLES)


def savvi_verdict(series: np.ndarray[Any, Any], alpha: float) -> tuple[int, str]:
    model = LinearRegression(alpha, 1)  # an intercept only: the mean reduction
    bounds = np.empty((len(series), 2))
    with np.errstate(divide="ignore"):  # its first looks have no degrees of freedom: an unbounded interval
        for index, value in enumerate(series):
            model.update(np.array([value, 1.0]))
            model.infer()
            bounds[index] = model.conf_int[0]
    return _first_verdict(bounds[:, 0], bounds[:, 1], 1)


def compare_with_savvi(simulations: int, null_simulations: int, alpha: float) -> None:
    print(f"\npeer savvi {version('savvi')}: the same series reduction, a look after every sample, alpha {alpha}")
    rng = np.random.default_rng(11)
    for noise, phi in NOISES:
        runs = {"phoenix": phoenix_verdict, "savvi": savvi_verdict}
        nulls = [reduction_series(rng, HORIZON, OBJECTIVE, phi) for _ in range(null_simulations)]
        false = {name: np.mean([judge(x, alpha)[1] == "Promote" for x in nulls]) for name, judge in runs.items()}
        # how closely this many runs pin down a rate near alpha
        standard_error = np.sqrt(alpha * (1 - alpha) / null_simulations)
        line = [
            f"{noise}: false Promote at the objective phoenix {false['phoenix']:.3f}, savvi {false['savvi']:.3f}"
            f" (+-{standard_error:.3f}, {null_simulations} runs)"
        ]
        if phi == 0:
            for effect in PEER_EFFECTS:
                series = [reduction_series(rng, HORIZON, OBJECTIVE + effect, phi) for _ in range(simulations)]
                samples = {name: statistics.median(judge(x, alpha)[0] for x in series) for name, judge in runs.items()}
                line.append(
                    f"  objective + {effect:.2f}: median samples to a verdict phoenix {samples['phoenix']:.0f},"
                    f" savvi {samples['savvi']:.0f}, ratio {samples['phoenix'] / samples['savvi']:.2f}"
                    " (target <= 1.2)"
                )
        print("\n".join(line))
    print(f"(target: phoenix's false Promote <= alpha {alpha} on every noise)")


# effect over the objective -> the sequential/fixed sample ratio to reach; tuned for neither, reported for both
FIXED_EFFECTS = {0.30: 0.5, 0.10: None, 0.05: 0.8}


def compare_with_fixed(effect: float, nulls: list[dict[str, Any]], false_sequential: float, simulations: int) -> None:
    rng = np.random.default_rng(2026)
    reduction = OBJECTIVE + effect
    experiments = [simulate.experiment(rng, HORIZON, reduction=reduction) for _ in range(simulations)]
    stops = []
    for data in experiments:
        result = engine.analyze(data)
        stops.append(result["decidedAtIndex"] + 1 if result["decision"] != "Inconclusive" else HORIZON)
    sequential = statistics.median(stops)
    print(f"\ntrue reduction {reduction:.2f} (objective + {effect:.2f}), {simulations} simulated experiments")
    print(
        f"sequential (alpha 0.05, planned for {HORIZON} samples): median {sequential:.0f} samples to a final decision"
    )
    target = FIXED_EFFECTS[effect]
    # A Promote also needs the reduction's trend projected to the run's planned end to clear the objective.
    # A fixed run planned to end at its horizon projects only there; asked about the sequential run's planned
    # end instead, it answers the same question the sequential run does.
    for planned, question in ((None, "its own horizon"), (HORIZON, f"the sequential run's end, {HORIZON} samples")):
        fixed, chosen = HORIZON, None
        for alpha in ALPHAS:
            horizon = powered_horizon(experiments, alpha, planned)
            false_fixed = promote_rate(nulls, horizon, alpha, planned)
            print(
                f"fixed (alpha {alpha:.3f}, trend projected to {question}): {horizon} samples for 90% power,"
                f" false promotions {false_fixed:.3f}"
            )
            if false_fixed <= false_sequential:
                fixed, chosen = horizon, alpha
                break
        print(
            f"  at the same error rate (alpha {chosen}): {fixed} samples;"
            f" ratio sequential/fixed = {sequential / fixed:.2f}"
            + (f" (target <= {target})" if target is not None else "")
            + (f"; capped at the {HORIZON}-sample horizon" if HORIZON in (sequential, fixed) else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument(
        "--null-simulations",
        type=int,
        default=1000,
        help="runs at a true reduction equal to the objective, for the false-Promote rates against savvi",
    )
    args = parser.parse_args()
    null_rng = np.random.default_rng(7)
    nulls = [simulate.experiment(null_rng, HORIZON, reduction=OBJECTIVE) for _ in range(args.simulations)]
    false_sequential = float(np.mean([engine.analyze(d)["decision"] == "Promote" for d in nulls]))
    print(f"objective {OBJECTIVE:.2f}: sequential false promotions at the objective {false_sequential:.3f}")
    for effect in FIXED_EFFECTS:
        compare_with_fixed(effect, nulls, false_sequential, args.simulations)
    compare_with_savvi(args.simulations, args.null_simulations, 0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
