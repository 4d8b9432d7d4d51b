"""Calibration of the verdict on simulated paired experiments with AR(1) noise.

Each test runs N_SIMULATIONS experiments of N_SAMPLES samples whose true
effect is known, and checks an error rate against its bound plus a
Monte-Carlo tolerance of three binomial standard errors. The suite runs 500
(tolerance 0.029 at alpha 0.05); `make calibrate` runs 5,000 (0.009).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from phoenix_analysis import engine, fidelity, intervals
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


def _rate(decision: str, seed: int, mode: str = "sequential", samples: int = N_SAMPLES, **effects: float) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(N_SIMULATIONS):
        data = simulate.experiment(rng, samples, **effects)  # type: ignore[arg-type]
        data["mode"] = mode
        hits += engine.analyze(data)["decision"] == decision
    return hits / N_SIMULATIONS


def test_sequential_false_promotion_at_the_objective_is_at_most_alpha() -> None:
    """True reduction exactly at the objective, checked after every sample, in a long run and in a short one
    (whose confidence sequence is tuned to be tightest at its 40 samples)."""
    _at_most(_rate("Promote", seed=1, reduction=0.5), ALPHA, "false promotion at the objective")
    _at_most(_rate("Promote", seed=3, samples=40, reduction=0.5), ALPHA, "false promotion at the objective, 40 samples")


def test_a_a_never_promotes_a_reduction_that_is_not_there() -> None:
    rng = np.random.default_rng(2)
    promoted = 0
    for _ in range(N_SIMULATIONS):
        data = simulate.experiment(rng, N_SAMPLES, reduction=0.0)
        data["objectives"]["minSeriesReduction"] = 0.0
        promoted += engine.analyze(data)["decision"] == "Promote"
    _at_most(promoted / N_SIMULATIONS, ALPHA, "A/A promotion")


def test_interval_covers_the_true_reduction() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(N_SIMULATIONS):
        truth = rng.uniform(0.3, 0.9)
        result = engine.analyze(simulate.experiment(rng, N_SAMPLES, reduction=truth))
        interval = result["seriesReduction"]
        covered += interval["ciLow"] <= truth <= interval["ciHigh"]
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
    """Why sequential is the default: peeking at a fixed-horizon interval on the mean every 10 samples and
    stopping at the first lower bound above the objective exceeds alpha/2, while the confidence sequence,
    checked at every sample, stays within it. (The whole verdict's fixed mode also needs the trend's
    projection, which hides most of this; the interval on the mean is what peeking breaks.)"""
    rng = np.random.default_rng(8)
    looks = np.arange(9, N_SAMPLES, 10)
    simulations = 250
    peeking_fixed = peeking_sequence = 0
    for _ in range(simulations):
        data = simulate.experiment(rng, N_SAMPLES, reduction=0.5)
        reduction = 1 - np.array(data["candidate"]["activeSeries"]) / np.array(data["baseline"]["activeSeries"])
        peeking_fixed += bool(np.any(intervals.running_fixed_interval(reduction, ALPHA)[1][looks] > 0.5))
        sequence_low = intervals.running_confidence_sequence(reduction, ALPHA, N_SAMPLES)[1][engine.MIN_SAMPLES - 1 :]
        peeking_sequence += bool(np.any(sequence_low > 0.5))
    fixed_rate, sequence_rate = peeking_fixed / simulations, peeking_sequence / simulations
    print(f"peeked fixed interval {fixed_rate:.3f}, confidence sequence {sequence_rate:.3f} over {simulations} runs")
    assert fixed_rate > ALPHA / 2 + 3 * math.sqrt(ALPHA / 2 / simulations), fixed_rate
    assert sequence_rate <= ALPHA / 2 + 3 * math.sqrt(ALPHA / 2 / simulations), sequence_rate


def test_power_to_promote_just_above_the_objective() -> None:
    """The trend projection costs power near the objective; it must stay usable at objective + 0.02."""
    _at_least(_rate("Promote", seed=16, reduction=0.52), 0.85, "promotion at objective + 0.02")


def test_a_reduction_falling_through_the_objective_is_not_promoted() -> None:
    """The true reduction falls from 70% to 40%: its mean over the run, 55%, clears the 50% objective; its end does
    not."""
    rate = _rate("Promote", seed=17, reduction=0.7, reduction_at_end=0.4)
    _at_most(rate, ALPHA, "promotion of a reduction falling through the objective")


def test_a_one_variant_input_shortfall_does_not_buy_a_promotion() -> None:
    """The candidate gets 2% less input, so its true 50% reduction at the objective looks like 51%."""
    rate = _rate("Promote", seed=18, reduction=0.5, candidate_input_shortfall=0.02)
    _at_most(rate, ALPHA, "promotion with a 2% input shortfall at the objective")


def _rates_with_and_without_restart(decision: str, seed: int, mode: str, restart_at: int, reduction: float) -> None:
    with_restart = _rate(decision, seed, mode, reduction=reduction, candidate_restart_at=restart_at)
    without = _rate(decision, seed, mode, reduction=reduction)
    what = f"{mode} {decision} at {reduction:.0%}, with a candidate restart at sample {restart_at} and without"
    print(f"{what}: {with_restart:.4f} and {without:.4f} over {N_SIMULATIONS} simulations")
    assert with_restart >= without - _tolerance(ALPHA), (with_restart, without)
    assert with_restart >= 0.9, with_restart


def test_a_candidate_restart_flips_neither_a_true_promote_nor_a_true_reject() -> None:
    """A gap of two samples, then reset counters and series filling in again; in fixed mode all of it is used."""
    for mode, restart_at in (("fixed", N_SAMPLES // 2), ("sequential", 20)):
        _rates_with_and_without_restart("Promote", 19, mode, restart_at, reduction=0.56)
        _rates_with_and_without_restart("Reject", 20, mode, restart_at, reduction=0.44)


def _recorded_error_noise() -> tuple[float, float]:
    """Coefficient of variation and lag-1 autocorrelation of a real run's query error: the quickstart's
    cpu-by-host-and-executable, as `phoenix run --local` recorded it."""
    recorded = json.loads(
        (Path(__file__).resolve().parents[3] / "examples" / "analyze" / "quickstart-input.json").read_text()
    )
    query = next(q for q in recorded["criticalQueries"] if q["name"] == "cpu-by-host-and-executable")
    errors = fidelity.query_errors(query["baseline"], query["candidate"], len(recorded["baseline"]["activeSeries"]))
    assert errors.errors is not None
    centred = errors.errors - errors.errors.mean()
    lag1 = float(np.sum(centred[1:] * centred[:-1]) / np.sum(centred**2))
    return float(errors.errors.std() / errors.errors.mean()), max(lag1, 0.0)


def test_the_query_error_interval_covers_the_true_mean_error() -> None:
    """At the noise of a real run, the query error's confidence sequence holds the true mean error at every
    sample from the first decision on, in at least 1 - alpha of runs, long and short (each sequence tuned for
    its run's length)."""
    cv, phi = _recorded_error_noise()
    rng = np.random.default_rng(21)
    for samples in (N_SAMPLES, 40):
        covered = 0
        for _ in range(N_SIMULATIONS):
            errors = simulate.query_errors(rng, samples, 0.002, cv, phi)
            _, low, high = intervals.running_confidence_sequence(errors, ALPHA, samples)
            looked = slice(engine.MIN_SAMPLES - 1, None)
            covered += bool(np.all((low[looked] <= 0.002) & (high[looked] >= 0.002)))
        what = f"query error coverage at cv {cv:.2f}, lag-1 {phi:.2f}, {samples} samples"
        _at_least(covered / N_SIMULATIONS, 1 - ALPHA, what)


def test_a_query_error_of_a_fifth_of_the_limit_is_shown_within_twenty_samples() -> None:
    """A true error of 0.2% against the 1% limit: shown below the limit by the 20th sample in at least 80% of
    runs, at a real run's noise, and when every value repeats three times (a 5 s step on a 15 s scrape)."""
    cv, phi = _recorded_error_noise()
    for repeats in (1, 3):
        rng = np.random.default_rng(22 + repeats)
        shown = 0
        for _ in range(N_SIMULATIONS):
            errors = simulate.query_errors(rng, 20, 0.002, cv, phi, repeats)
            high = intervals.running_confidence_sequence(errors, ALPHA, N_SAMPLES)[2]
            shown += bool(np.any(high[engine.MIN_SAMPLES - 1 :] < 0.01))
        _at_least(shown / N_SIMULATIONS, 0.8, f"query error 0.2% shown below 1% in 20 samples, repeats {repeats}")


def test_an_inconclusive_says_about_how_long_it_still_needs() -> None:
    """Runs still Inconclusive at 30 samples: the time they go on to need is, in the median, within a factor
    of three of the estimate the verdict gave then."""
    rng = np.random.default_rng(25)
    ratios = []
    for _ in range(N_SIMULATIONS // 2):
        data = simulate.experiment(rng, N_SAMPLES, reduction=0.56)
        early = engine.analyze(simulate.prefix(data, 30))
        decided = engine.analyze(data)["decidedAtIndex"]
        if early["decision"] == "Inconclusive" and early["secondsToDecide"] and decided is not None:
            ratios.append((decided + 1 - 30) * data["intervalSeconds"] / early["secondsToDecide"])
    quartiles = np.percentile(ratios, [25, 50, 75])
    print(f"time needed over time estimated, quartiles {np.round(quartiles, 2)} over {len(ratios)} runs")
    assert len(ratios) >= N_SIMULATIONS // 10
    assert 1 / 3 <= quartiles[1] <= 3, quartiles
