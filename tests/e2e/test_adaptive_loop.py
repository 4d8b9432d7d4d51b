"""The adaptive loop on real parts: an otelcol-phoenix collector, a LoadSim process and Prometheus.

One adaptive pipeline and its load live in a MemoryStore and are stepped by
the same round `phoenix run --local` steps (the pipeline and LoadSim
controllers and the loop's turn), against the local runtime. The load has
process churn and, with every executable's detail, would export about three
times the budget. The run goes through what a platform team would see:
converging, holding on a steady load, a halved budget, doubled processes per
host, and Prometheus going down and coming back.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from phoenix_operator import API_VERSION
from phoenix_operator.local import run as local_run
from phoenix_operator.measure import prometheus
from phoenix_operator.models import pipeline
from phoenix_operator.reconcile import adaptive
from phoenix_operator.runtime import local as runtime_local
from phoenix_operator.runtime import memory

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]
ADJUST_SECONDS = 5
# how soon a turn measures, or says it could not: the next turn, its query's timeout, and a turn to spare
TURN_MEASURED_SECONDS = 2 * ADJUST_SECONDS + prometheus.Client.timeout
HOSTS = 4
PROCESSES_PER_HOST = 150
# every executable's detail: each process's 7 series, about three times the budget
BUDGET = HOSTS * PROCESSES_PER_HOST * 7 // 3
# where the chart of a run goes, when set (docs/adaptive-loop.png is drawn from one)
TRAJECTORY = os.environ.get("PHOENIX_ADAPTIVE_TRAJECTORY")


def _pipeline(budget: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "fleet", "namespace": "default"},
        "spec": {
            "template": "adaptive",
            "parameters": {
                "seriesBudget": budget,
                "maxK": 30,
                "maxStep": 10,
                "adjustIntervalSeconds": ADJUST_SECONDS,
                "metricExpiration": "5s",
            },
        },
    }


def _load(name: str, processes_per_host: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LoadSim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "profile": "process-churn",
            "hosts": HOSTS,
            "processesPerHost": processes_per_host,
            "churnPerMinute": 3,
            "intervalSeconds": 2,
            "duration": "20m",
            "seed": 7,
            "targets": [{"pipelineRef": "fleet"}],
        },
    }


@dataclass
class Bed:
    store: memory.MemoryStore
    runtime: runtime_local.LocalRuntime
    applied: dict[str, int] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)
    # one row per turn of the loop: seconds, exported series, budget, K
    trajectory: list[tuple[float, int | None, int, int]] = field(default_factory=list)
    changes: int = 0

    def status(self) -> pipeline.PipelineStatus:
        body = self.store.get(API_VERSION, "PhoenixProcessPipeline", "default", "fleet")
        assert body is not None
        return pipeline.PipelineStatus.model_validate(body.get("status") or {})

    def condition(self) -> tuple[str, str, str]:
        met = next(c for c in self.status().conditions if c.type == adaptive.CONDITION)
        return met.status, met.reason, met.message

    def step_until(self, done: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen = self.status().adaptive
            local_run.step_objects(self.store, self.runtime, self.applied, datetime.now(UTC))
            now = self.status().adaptive
            if now is not None and (seen is None or now.observed_at != seen.observed_at):
                self._record(now)
            if done():
                return
            time.sleep(0.5)
        raise AssertionError(f"{what} within {seconds:.0f}s; condition {self.condition()}; {self.trajectory[-8:]}")

    def _record(self, now: pipeline.AdaptiveStatus) -> None:
        self.trajectory.append((round(time.monotonic() - self.began, 1), now.current_series, now.series_budget, now.k))
        if now.last_adjustment is not None and now.last_adjustment.at == now.observed_at:
            self.changes += 1
            print(f"{self.trajectory[-1]}: {now.last_adjustment.reason}")
        else:
            print(self.trajectory[-1])

    def turns(self, count: int) -> None:
        """Let the loop take `count` more turns."""
        target = len(self.trajectory) + count
        self.step_until(lambda: len(self.trajectory) >= target, count * ADJUST_SECONDS * 2 + 30, f"{count} turns")

    def within_band(self) -> bool:
        status = self.status().adaptive
        if status is None or status.current_series is None or not self.trajectory:
            return False
        series, budget = self.trajectory[-1][1] or 0, status.series_budget
        return budget * 0.9 <= series <= budget and status.last_adjustment is not None

    def converge(self, most_changes: int, seconds: float) -> int:
        before = self.changes
        self.step_until(
            lambda: self.changes > before and self.within_band() and self.changes - before <= most_changes,
            seconds,
            f"settling within 10% under the budget in {most_changes} adjustments",
        )
        assert self.changes - before <= most_changes, self.trajectory
        return self.changes - before

    def settle(self, most_changes: int, seconds: float) -> None:
        """Wait until the loop stops changing under the budget: within the band, or with no executable left that fits.

        Doubled processes make each executable's detail cost twice as much, so
        the last one that fits may leave the series just under the band.
        """
        before = self.changes

        def settled() -> bool:
            status = self.status().adaptive
            return (
                self.changes > before
                and self.condition()[1] in ("WithinBand", "NothingMoreFits")
                and status is not None
                and status.current_series is not None
                and status.current_series <= status.series_budget
            )

        self.step_until(settled, seconds, f"settling under the budget in {most_changes} adjustments")
        assert self.changes - before <= most_changes, self.trajectory


@pytest.fixture
def bed(tmp_path: Path) -> Any:
    store = memory.MemoryStore(lambda body, type_, reason, message: print(f"event {reason}: {message}"))
    runtime = runtime_local.LocalRuntime.start(tmp_path / "runtime", load_interval_seconds=2)
    try:
        yield Bed(store, runtime)
    finally:
        runtime.stop()


def test_the_loop_holds_a_series_budget_through_budget_and_load_changes_and_an_outage(bed: Bed) -> None:
    bed.store.apply(_pipeline(BUDGET))
    bed.store.apply(_load("load", PROCESSES_PER_HOST))

    changes = bed.converge(most_changes=5, seconds=180)
    print(f"converged to {bed.trajectory[-1]} in {changes} adjustments")

    settled = bed.changes
    bed.turns(6)
    assert bed.changes - settled <= 1, bed.trajectory[-6:]

    k_before = bed.status().adaptive.k  # type: ignore[union-attr]
    bed.store.apply(_pipeline(BUDGET // 2))
    changes = bed.converge(most_changes=5, seconds=180)
    k_halved = bed.status().adaptive.k  # type: ignore[union-attr]
    print(f"halved budget met in {changes} adjustments, K {k_before} -> {k_halved}")

    bed.store.delete(API_VERSION, "LoadSim", "default", "load")
    bed.store.apply(_load("doubled", 2 * PROCESSES_PER_HOST))
    bed.settle(most_changes=5, seconds=240)
    k_doubled = bed.status().adaptive.k  # type: ignore[union-attr]
    assert k_doubled < k_halved, bed.trajectory[-6:]
    print(f"doubled processes: budget held with K {k_halved} -> {k_doubled}")

    config_hash = bed.status().config_hash
    # a hung Prometheus: one that exits, the runtime starts again (as its StatefulSet would)
    hung = bed.runtime.prometheus.process
    assert hung is not None and hung.pid is not None
    os.kill(hung.pid, signal.SIGSTOP)
    try:
        bed.step_until(lambda: bed.condition()[1] == "NotMeasured", TURN_MEASURED_SECONDS, "reporting the outage")
        status, _, message = bed.condition()
        assert status == "Unknown" and "timed out" in message, message
        bed.turns(1)
        assert bed.status().config_hash == config_hash
    finally:
        os.kill(hung.pid, signal.SIGCONT)
    bed.step_until(lambda: bed.condition()[1] != "NotMeasured", TURN_MEASURED_SECONDS, "resuming after the outage")
    assert bed.status().adaptive.current_series is not None  # type: ignore[union-attr]

    if TRAJECTORY:
        Path(TRAJECTORY).write_text(json.dumps(bed.trajectory), encoding="utf-8")
