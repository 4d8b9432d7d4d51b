"""Calibration of the verdict on simulated paired experiments with AR(1) noise.

Each test runs N_SIMULATIONS experiments of N_SAMPLES samples whose true
effect is known, and checks an error rate against its bound plus a
Monte-Carlo tolerance of three binomial standard errors. The suite runs 500
(tolerance 0.029 at alpha 0.05); `make calibrate` runs 5,000 (0.009).
"""

from __future__ import annotations

import math
import os

import numpy as np

from phoenix_analysis import engine
from tests import simulate

N_SIMULATIONS = int(os.environ.get("PHOENIX_CALIBRATION_SIMULATIONS", "500"))
N_SAMPLES = 240
ALPHA = 0.05


def _tolerance(p: float) -> float:
    return 3 * math.sqrt(p * (1 - p) / N_SIMULATIONS)


def _at_most(rate: float, bound: float, what: str) -> None:
    print(f"{what}: {rate:.4f} over {N_SIMULATIONS} simulations (bound {bound} + {_tolerance(bound):.4f})")
    assert rate <= bound + _tolerance(bound), rate


def _at_least(rate: float, bound: float, what: str) -> None:
    print(f"{what}: {rate:.4f} over {N_SIMULATIONS} simulations (bound {bound} - {_tolerance(bound):.4f})")
    assert rate >= bound - _tolerance(bound), rate


def _rate(decision: str, seed: int, mode: str = "sequential", **effects: float) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(N_SIMULATIONS):
        data = simulate.experiment(rng, N_SAMPLES, **effects)  # type: ignore[arg-type]
        data["mode"] = mode
        hits += engine.analyze(data)["decision"] == decision
    return hits / N_SIMULATIONS


def test_sequential_false_promotion_at_the_objective_is_at_most_alpha() -> None:
    """True reduction exactly at the objective, checked after every sample."""
    _at_most(_rate("Promote", seed=1, reduction=0.5), ALPHA, "false promotion at the objective")


def test_a_a_never_promotes_a_reduction_that_is_not_there() -> None:
    rng = np.random.default_rng(2)
    promoted = 0
    for _ in range(N_SIMULATIONS):
        data = simulate.experiment(rng, N_SAMPLES, reduction=0.0)
        data["objectives"]["min_series_reduction"] = 0.0
        promoted += engine.analyze(data)["decision"] == "Promote"
    _at_most(promoted / N_SIMULATIONS, ALPHA, "A/A promotion")


def test_interval_covers_the_true_reduction() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(N_SIMULATIONS):
        truth = rng.uniform(0.3, 0.9)
        result = engine.analyze(simulate.experiment(rng, N_SAMPLES, reduction=truth))
        interval = result["series_reduction"]
        covered += interval["ci_low"] <= truth <= interval["ci_high"]
    _at_least(covered / N_SIMULATIONS, 1 - ALPHA, "interval coverage")


def test_power_to_promote_a_clear_reduction() -> None:
    rate = _rate("Promote", seed=4, reduction=0.65)
    assert rate >= 0.9, rate


def test_query_error_at_the_limit_rarely_passes() -> None:
    """A candidate whose query error is exactly maxQueryError must not be promoted."""
    _at_most(_rate("Promote", seed=5, reduction=0.8, query_error=0.01), ALPHA, "promotion at the query-error limit")


def test_query_error_well_beyond_the_limit_rejects() -> None:
    rate = _rate("Reject", seed=6, reduction=0.8, query_error=0.05)
    assert rate >= 0.9, rate


def test_cpu_increase_at_the_guardrail_rarely_passes() -> None:
    _at_most(_rate("Promote", seed=7, reduction=0.8, cpu_increase=0.1), ALPHA, "promotion at the CPU guardrail")


def test_memory_increase_at_the_guardrail_rarely_passes() -> None:
    rate = _rate("Promote", seed=9, reduction=0.8, memory_increase=0.1)
    _at_most(rate, ALPHA, "promotion at the memory guardrail")


def test_memory_increase_well_beyond_the_guardrail_rejects_and_says_so() -> None:
    rng = np.random.default_rng(10)
    result = engine.analyze(simulate.experiment(rng, N_SAMPLES, reduction=0.8, memory_increase=0.3))
    assert result["decision"] == "Reject", result
    assert any("memory" in reason for reason in result["reasons"]), result["reasons"]
    assert _rate("Reject", seed=10, reduction=0.8, memory_increase=0.3) >= 0.9


def test_refused_points_at_the_guardrail_rarely_pass() -> None:
    rate = _rate("Promote", seed=11, reduction=0.8, refused_points_ratio=0.001)
    _at_most(rate, ALPHA, "promotion at the refused-points guardrail")


def test_a_candidate_that_sheds_data_is_rejected_and_told_so() -> None:
    rng = np.random.default_rng(12)
    result = engine.analyze(simulate.experiment(rng, N_SAMPLES, reduction=0.8, refused_points_ratio=0.005))
    assert result["decision"] == "Reject"
    assert any(reason.startswith("candidate points refused or failed") for reason in result["reasons"])
    assert result["reasons"][-1].endswith("breaches the 0.1% guardrail"), result["reasons"]
    _at_least(_rate("Reject", seed=13, reduction=0.8, refused_points_ratio=0.005), 0.9, "rejection at 5x the limit")


def test_a_candidate_that_refuses_nothing_or_little_keeps_its_power() -> None:
    clean = _rate("Promote", seed=14, reduction=0.8, refused_points_ratio=0.0)
    _at_least(clean, _rate("Promote", seed=14, reduction=0.8), "promotion with no points refused")
    little = _rate("Promote", seed=15, reduction=0.8, refused_points_ratio=0.00025)
    _at_least(little, 0.9, "promotion refusing a quarter of the limit")


def test_repeated_checks_of_the_fixed_test_inflate_false_promotions() -> None:
    """Why sequential is the default: peeking at a fixed-horizon test every
    interval and stopping at the first Promote exceeds alpha, while the
    sequential mode under the same peeking stays within it."""
    rng = np.random.default_rng(8)
    looks = range(20, N_SAMPLES + 1, 20)
    peeking_fixed = 0
    simulations = 250
    for _ in range(simulations):
        data = simulate.experiment(rng, N_SAMPLES, reduction=0.5)
        data["mode"] = "fixed"
        for n in looks:
            prefix = simulate.prefix(data, n)
            if engine.analyze(prefix)["decision"] == "Promote":
                peeking_fixed += 1
                break
    fixed_rate = peeking_fixed / simulations
    sequential_rate = _rate("Promote", seed=8, reduction=0.5)
    assert fixed_rate > 2 * ALPHA / 2 + 3 * math.sqrt(ALPHA / 2 / simulations), fixed_rate
    assert fixed_rate > sequential_rate
