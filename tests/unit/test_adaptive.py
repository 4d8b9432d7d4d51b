"""The adaptive loop's controller alone, against a simulated plant.

The plant exports what the adaptive template would: each kept executable's
processes times the series one process exports, one `other` series per host
and process series, and one ranking series per executable, plus AR(1) noise
when asked, as churn and scrape timing add to a real count.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from phoenix_operator.measure import adaptive as measure_adaptive
from phoenix_operator.models import common, pipeline
from phoenix_operator.reconcile import adaptive

SERIES_PER_PROCESS = 7
HOSTS = 4
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Plant:
    """A fleet of executables with Zipf-like process counts; `kept_cost` scales what keeping one costs."""

    processes: dict[str, float]
    kept_cost: dict[str, float] = field(default_factory=dict)
    noise_sd: float = 0.0
    phi: float = 0.7
    seed: int = 0
    _noise: float = 0.0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def series_of(self, name: str) -> int:
        return round(self.processes[name] * SERIES_PER_PROCESS * self.kept_cost.get(name, 1.0))

    def observe(self, keep: list[str]) -> adaptive.Observation:
        self._noise = self.phi * self._noise + self.rng.normal(0, self.noise_sd * np.sqrt(1 - self.phi**2))
        kept = sum(self.series_of(name) for name in keep if name in self.processes)
        other = HOSTS * SERIES_PER_PROCESS
        exported = kept + other + len(self.processes) + round(self._noise)
        executables = [
            adaptive.Executable(
                name,
                count,
                exported_series=self.series_of(name) if name in keep else 0,
            )
            for name, count in self.processes.items()
        ]
        return adaptive.Observation(exported, executables)

    @property
    def full_detail(self) -> int:
        return sum(self.series_of(name) for name in self.processes)


def zipf_fleet(executables: int = 40, processes: int = 800, exponent: float = 0.6) -> dict[str, float]:
    weights = np.arange(1, executables + 1, dtype=float) ** -exponent
    counts = np.maximum(1, np.round(processes * weights / weights.sum()))
    return {f"exe-{i:02d}": float(c) for i, c in enumerate(counts)}


@dataclass
class Loop:
    parameters: pipeline.AdaptiveParameters
    plant: Plant
    status: pipeline.AdaptiveStatus | None = None
    conditions: list[common.Condition] = field(default_factory=list)
    now: datetime = START
    changes: int = 0
    history: list[int] = field(default_factory=list)

    def turn(self) -> adaptive.Decision:
        keep = self.status.keep_executables if self.status else []
        observation = self.plant.observe(list(keep))
        decision = adaptive.decide(self.parameters, self.status, self.conditions, observation, 1, self.now)
        self.status, self.conditions = decision.status, decision.conditions
        self.changes += decision.changed
        self.history.append(observation.exported_series or 0)
        self.now += adaptive.interval(self.parameters)
        return decision

    def run_until_within(self, most: int) -> int:
        """Turns until the plant's series (noise aside) sit within the band; fails after `most` changes."""
        for turn in range(1, 100):
            self.turn()
            if self.within_band():
                return turn
            assert self.changes <= most, f"{self.changes} changes without settling: {self.history}"
        raise AssertionError(f"never settled: {self.history}")

    def within_band(self) -> bool:
        assert self.status is not None
        quiet = replace(self.plant, noise_sd=0.0)
        quiet.rng = self.plant.rng
        series = quiet.observe(list(self.status.keep_executables)).exported_series or 0
        budget = self.parameters.series_budget
        return budget * (1 - self.parameters.hysteresis_band) <= series <= budget


def parameters(budget: int, **overrides: object) -> pipeline.AdaptiveParameters:
    return pipeline.AdaptiveParameters.model_validate({"seriesBudget": budget, **overrides})


def test_converges_within_five_adjustments_then_holds_on_a_noisy_steady_load() -> None:
    """200 fleets with AR(1) noise of 2% of the budget on the count: every one settles within five
    adjustments, and at most 5% of them change more than once in the next ten steady intervals."""
    restless = []
    for seed in range(200):
        plant = Plant(zipf_fleet(), seed=seed)
        budget = plant.full_detail // 3
        plant.noise_sd = 0.02 * budget
        loop = Loop(parameters(budget, maxK=40), plant)
        loop.run_until_within(most=5)
        settled = loop.changes
        for _ in range(10):
            loop.turn()
        if loop.changes - settled > 1:
            restless.append(seed)
    print(f"{len(restless)} of 200 changed more than once in ten steady intervals: seeds {restless}")
    assert len(restless) <= 10


def test_within_the_band_nothing_changes() -> None:
    plant = Plant(zipf_fleet())
    loop = Loop(parameters(plant.full_detail // 3, maxK=40, maxStep=10), plant)
    loop.run_until_within(most=5)
    decision = loop.turn()
    assert not decision.changed
    met = next(c for c in decision.conditions if c.type == adaptive.CONDITION)
    assert (met.status, met.reason) == ("True", "WithinBand")


def test_one_adjustment_moves_at_most_max_step_executables() -> None:
    plant = Plant(zipf_fleet())
    everything = list(plant.processes)
    loop = Loop(parameters(100, maxK=40, maxStep=3), plant)
    loop.status = pipeline.AdaptiveStatus(series_budget=100, keep_executables=everything, k=len(everything))
    while loop.status is not None and loop.status.k > 0:
        before = loop.status.k
        decision = loop.turn()
        assert decision.changed and 0 < before - decision.status.k <= 3


def test_k_stays_within_min_k_and_max_k() -> None:
    plant = Plant(zipf_fleet())
    tight = Loop(parameters(10, minK=2, maxK=5), plant)
    for _ in range(6):
        decision = tight.turn()
    assert decision.status.k == 2  # over budget, yet never under minK
    met = next(c for c in decision.conditions if c.type == adaptive.CONDITION)
    assert (met.status, met.reason) == ("False", "AtMinK")
    roomy = Loop(parameters(10 * plant.full_detail, maxK=5, maxStep=10), plant)
    for _ in range(6):
        decision = roomy.turn()
    assert decision.status.k == 5


def test_a_budget_halved_is_met_again_within_five_adjustments() -> None:
    plant = Plant(zipf_fleet(), noise_sd=5.0)
    budget = plant.full_detail // 3
    loop = Loop(parameters(budget, maxK=40, maxStep=10), plant)
    loop.run_until_within(most=5)
    k = loop.status.k if loop.status else 0
    loop.parameters, loop.changes = parameters(budget // 2, maxK=40, maxStep=10), 0
    loop.run_until_within(most=5)
    assert loop.status is not None and loop.status.k < k


def test_doubling_the_processes_keeps_the_budget_with_fewer_executables() -> None:
    plant = Plant(zipf_fleet())
    loop = Loop(parameters(plant.full_detail // 3, maxK=40, maxStep=10), plant)
    loop.run_until_within(most=5)
    k = loop.status.k if loop.status else 0
    plant.processes = {name: 2 * count for name, count in plant.processes.items()}
    loop.changes = 0
    loop.run_until_within(most=5)
    assert loop.status is not None and loop.status.k < k


def test_a_non_monotonic_plant_where_kept_executables_cost_more_than_expected_still_settles() -> None:
    """Executables whose kept processes export three times what `other` suggests (unique command lines,
    say), and one that exports less: the first estimate is wrong, the measured cost corrects it."""
    fleet = zipf_fleet()
    names = list(fleet)
    plant = Plant(fleet, kept_cost={**{n: 3.0 for n in names[1:6]}, names[0]: 0.5}, noise_sd=5.0, seed=3)
    budget = sum(plant.series_of(n) for n in names) // 3
    loop = Loop(parameters(budget, maxK=40, maxStep=10), plant)
    loop.run_until_within(most=6)
    settled = loop.changes
    for _ in range(10):
        loop.turn()
    assert loop.changes - settled <= 1, loop.history


def test_one_collapsed_reading_adds_nothing_while_one_far_over_the_budget_cuts_at_once() -> None:
    """A settled loop reads a tenth of its series once (the load stalled and the exporter expired
    the rest): it waits for the next reading, which is back to normal, and nothing changes. A
    reading far over the budget is cost, and is cut on first sight."""
    plant = Plant(zipf_fleet())
    loop = Loop(parameters(plant.full_detail // 3, maxK=40, maxStep=10), plant)
    loop.run_until_within(most=5)
    assert loop.status is not None
    keep = list(loop.status.keep_executables)
    stalled = adaptive.Observation(loop.status.current_series // 10, plant.observe(keep).executables)  # type: ignore[operator]
    decision = adaptive.decide(loop.parameters, loop.status, loop.conditions, stalled, 1, loop.now)
    met = next(c for c in decision.conditions if c.type == adaptive.CONDITION)
    assert not decision.changed and met.reason == "Confirming", met.message
    loop.status, loop.conditions, loop.now = decision.status, decision.conditions, loop.now + timedelta(seconds=60)
    assert not loop.turn().changed

    flood = adaptive.Observation(3 * loop.parameters.series_budget, plant.observe(keep).executables)
    decision = adaptive.decide(loop.parameters, loop.status, loop.conditions, flood, 1, loop.now)
    assert decision.changed and decision.status.k < len(keep)


def test_without_a_measurement_the_keep_list_stays_and_the_condition_says_why() -> None:
    kept = pipeline.AdaptiveStatus(series_budget=100, keep_executables=["java"], k=1)
    decision = adaptive.decide(
        parameters(100), kept, [], adaptive.Observation(problem="Prometheus is unreachable"), 1, START
    )
    assert not decision.changed and decision.status.keep_executables == ["java"]
    met = next(c for c in decision.conditions if c.type == adaptive.CONDITION)
    assert (met.status, met.reason) == ("Unknown", "NotMeasured")
    assert "Prometheus is unreachable" in met.message


def test_the_loop_observes_once_per_adjust_interval() -> None:
    settings = parameters(100, adjustIntervalSeconds=30)
    seen = pipeline.AdaptiveStatus(series_budget=100, observed_at=START)
    assert adaptive.due(settings, None, START)
    assert not adaptive.due(settings, seen, START + timedelta(seconds=29))
    assert adaptive.due(settings, seen, START + timedelta(seconds=30))


def test_the_observer_asks_valid_promql_for_any_adjust_interval() -> None:
    """Half of an odd interval is whole seconds: PromQL's parser drops a fraction."""

    class Recording:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def instant_query(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
            self.asked.append(query)
            return []

    client = Recording()
    settings = parameters(100, adjustIntervalSeconds=15)
    observation = measure_adaptive.observe(
        client,  # type: ignore[arg-type]
        "exp",
        "candidate",
        adaptive.window_seconds(settings),
        adaptive.rate_window_seconds(settings),
        0.0,
    )
    assert (
        len(client.asked) == len(measure_adaptive.QUERIES)
        and all("[7s]" in q for q in client.asked[:2])
        and "[14s]" in client.asked[2]
    )
    assert observation.problem == "pipeline exp/candidate exported no series in the last 7s"
