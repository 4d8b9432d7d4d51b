"""The warmup's end on simulated pipelines: not while a rate window fills, soon after it has."""

from __future__ import annotations

import numpy as np

from phoenix_analysis import warmup

STEP_SECONDS = 2
RATE_WINDOW_SAMPLES = 15  # a 30 s rate window, sampled every 2 s


def _filling_rate(rng: np.random.Generator, samples: int, noise: float) -> list[float | None]:
    """A rate over a window that fills from the collector's start, with multiplicative noise."""
    filled = np.minimum(np.arange(1, samples + 1) / RATE_WINDOW_SAMPLES, 1.0)
    values: list[float | None] = (1000.0 * filled * (1 + noise * rng.standard_normal(samples))).tolist()
    return values


def test_analysis_begins_once_the_rate_window_has_filled_and_not_before() -> None:
    rng = np.random.default_rng(11)
    began = []
    for _ in range(500):
        figures = {
            "baseline.active_series": [7000.0] * 40,
            "baseline.datapoints_per_minute": _filling_rate(rng, 40, 0.01),
            "candidate.datapoints_per_minute": _filling_rate(rng, 40, 0.01),
        }
        first = warmup.first_analysed(figures)
        assert first is not None
        began.append(first)
    # the earlier of the two compared runs must be nearly past the ramp, and once both are, it ends
    assert min(began) >= RATE_WINDOW_SAMPLES + warmup.SETTLED_SAMPLES
    assert max(began) <= RATE_WINDOW_SAMPLES + 2 * warmup.SETTLED_SAMPLES


def test_steady_pipelines_are_analysed_as_soon_as_two_runs_compare() -> None:
    rng = np.random.default_rng(12)
    steady = (500.0 * (1 + 0.01 * rng.standard_normal(20))).tolist()
    assert warmup.first_analysed({"baseline.active_series": steady}) == 2 * warmup.SETTLED_SAMPLES


def test_a_rate_that_flickers_by_a_batch_around_a_steady_level_settles() -> None:
    # six or seven 5 s batches in a 30 s window: 75,000 or 90,000 points a minute
    flickering: list[float | None] = [90_000.0 if i % 5 in (1, 3) else 75_000.0 for i in range(30)]
    assert warmup.first_analysed({"baseline.datapoints_per_minute": flickering}) == 2 * warmup.SETTLED_SAMPLES


def test_series_that_keep_growing_never_settle() -> None:
    growing: list[float | None] = (1000.0 * 1.03 ** np.arange(60)).tolist()
    assert warmup.first_analysed({"candidate.active_series": growing, "baseline.active_series": [1.0] * 60}) is None


def test_a_missing_sample_breaks_a_steady_run() -> None:
    values: list[float | None] = [100.0] * 2 + [None] + [100.0] * 10
    assert warmup.first_analysed({"x": values}) == 3 + 2 * warmup.SETTLED_SAMPLES
    assert warmup.first_analysed({}) is None


def test_analysis_begins_no_earlier_than_asked_even_when_steady_sooner() -> None:
    steady: list[float | None] = [100.0] * 40
    assert warmup.first_analysed({"x": steady}, earliest=30) == 30
    assert warmup.first_analysed({"x": steady}, earliest=41) is None
