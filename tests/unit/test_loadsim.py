"""LoadSim's population and encoding: right shapes, deterministic, churn done right."""

from __future__ import annotations

import json

import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from typer.testing import CliRunner

from phoenix_operator.cli import app
from phoenix_operator.loadsim import encode, fleet, profiles
from phoenix_operator.models import loadsim
from phoenix_operator.reconcile import loadsim as reconcile_loadsim

START = 1_700_000_000 * 10**9


def _spec(**overrides: object) -> loadsim.LoadProfileSpec:
    base: dict[str, object] = {
        "hosts": 3,
        "processesPerHost": 20,
        "intervalSeconds": 10,
        "duration": "2m",
    }
    return loadsim.LoadProfileSpec.model_validate({**base, **overrides})


def _decode(body: bytes) -> metrics_service_pb2.ExportMetricsServiceRequest:
    return metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)


def test_requests_follow_the_hostmetrics_process_conventions() -> None:
    population = fleet.Fleet(_spec(), START)
    request = _decode(encode.FleetEncoder(population).batch()[0])
    assert len(request.resource_metrics) == 20
    resource = request.resource_metrics[0]
    attributes = {a.key: a.value for a in resource.resource.attributes}
    assert set(attributes) == {
        "host.name",
        "process.pid",
        "process.parent_pid",
        "process.executable.name",
        "process.executable.path",
        "process.command",
        "process.command_line",
        "process.owner",
    }
    assert attributes["process.pid"].HasField("int_value")
    metrics = {m.name: m for m in resource.scope_metrics[0].metrics}
    cpu = metrics["process.cpu.time"]
    assert (cpu.unit, cpu.sum.is_monotonic, cpu.sum.aggregation_temporality) == ("s", True, 2)
    assert [p.attributes[0].value.string_value for p in cpu.sum.data_points] == [
        "user",
        "system",
        "wait",
    ]
    assert metrics["process.memory.usage"].unit == "By"
    assert not metrics["process.memory.usage"].sum.is_monotonic
    assert metrics["process.memory.virtual"].unit == "By"
    io = metrics["process.disk.io"]
    assert [p.attributes[0].value.string_value for p in io.sum.data_points] == ["read", "write"]
    assert all(p.time_unix_nano == START for m in metrics.values() for p in m.sum.data_points)


def test_values_in_the_bytes_are_the_fleet_values() -> None:
    population = fleet.Fleet(_spec(), START)
    encoder = encode.FleetEncoder(population)
    encoder.advance()
    # values() draws noise and moves memory, so both start again from the same state
    memory = population.memory_bytes.copy()
    population.noise = np.random.default_rng(0)
    expected = population.values()
    population.noise = np.random.default_rng(0)
    population.memory_bytes = memory
    request = _decode(encoder.batch()[1])
    decoded = [
        p.as_double for rm in request.resource_metrics for m in rm.scope_metrics[0].metrics for p in m.sum.data_points
    ]
    assert np.allclose(decoded, expected[1].reshape(-1))
    assert all(
        p.time_unix_nano == START + 10 * 10**9
        for m in request.resource_metrics[0].scope_metrics[0].metrics
        for p in m.sum.data_points
    )


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def run(seed: int) -> list[bytes]:
        encoder = encode.FleetEncoder(fleet.Fleet(_spec(seed=seed, churnPerMinute=6), START))
        out = []
        for _ in range(4):
            out += encoder.batch()
            encoder.advance()
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_churn_replaces_pids_with_fresh_counters() -> None:
    population = fleet.Fleet(_spec(churnPerMinute=12), START)
    before = population.pids.copy()
    counters_before = population.counters.copy()
    new = population.advance()
    assert new.sum(axis=1).tolist() == [2, 2, 2]  # 12 per minute at 10 s intervals
    assert not np.isin(population.pids[new], before).any()
    assert np.all(population.counters[new] == 0)
    assert np.all(population.start_nanos[new] == START + 10 * 10**9)
    survivors = ~new
    assert np.all(population.counters[survivors] >= counters_before[survivors])
    assert len(np.unique(population.pids[0])) == 20


def test_estimate_replays_exactly_what_a_run_generates() -> None:
    spec = _spec(profile="process-churn", churnPerMinute=9, duration="3m")
    population = fleet.Fleet(spec, START)
    encoder = encode.FleetEncoder(population)
    seen: set[tuple[int, int]] = set()
    for tick in range(population.ticks):
        if tick:
            encoder.advance()
        seen.update((h, int(pid)) for h in range(spec.hosts) for pid in population.pids[h])
    result = fleet.estimate(spec)
    assert result.unique_series == len(seen) * fleet.POINTS_PER_PROCESS
    assert result.batches == 18


def test_a_growing_worker_pool_adds_processes_that_stay_and_estimate_counts_them() -> None:
    spec = _spec(profile="worker-growth", duration="3m")
    population = fleet.Fleet(spec, START)
    encoder = encode.FleetEncoder(population)
    first = _decode(encoder.batch()[0])
    first_pids = set(population.pids[0, :20].tolist())
    points_sent = 0
    for tick in range(population.ticks):
        if tick:
            encoder.advance()
        last = _decode(encoder.batch()[0])
        points_sent += spec.hosts * sum(
            len(m.gauge.data_points) + len(m.sum.data_points)
            for rm in last.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        )
    added = len(last.resource_metrics) - len(first.resource_metrics)
    per_minute = profiles.PROFILES["worker-growth"].growth_fraction_per_minute * 20
    # the load's last batch goes out (ticks - 1) intervals after its first
    assert added == int(per_minute * (population.ticks - 1) * 10 / 60) > 0
    resources = [{a.key: a.value for a in rm.resource.attributes} for rm in last.resource_metrics]
    newcomers = [r for r in resources if r["process.pid"].int_value not in first_pids]
    assert len(newcomers) == added
    assert {r["process.executable.name"].string_value for r in newcomers} == {"php-fpm"}
    result = fleet.estimate(spec)
    assert result.active_series == spec.hosts * len(last.resource_metrics) * fleet.POINTS_PER_PROCESS
    assert result.datapoints == points_sent


def test_realistic_profile_is_long_tailed() -> None:
    population = fleet.Fleet(_spec(hosts=20, processesPerHost=200), START)
    per_host = [len(np.unique(population.executables[h])) for h in range(20)]
    assert 10 <= np.mean(per_host) <= 30
    cpu = np.sort(population.cpu_rates.sum(axis=2).ravel())[::-1]
    assert cpu[: len(cpu) // 10].sum() > 0.5 * cpu.sum()


def test_high_cardinality_profile_has_unique_command_lines() -> None:
    population = fleet.Fleet(_spec(profile="high-cardinality"), START)
    request = _decode(encode.FleetEncoder(population).batch()[0])
    lines = {
        next(a.value.string_value for a in rm.resource.attributes if a.key == "process.command_line")
        for rm in request.resource_metrics
    }
    assert len(lines) == 20
    assert profiles.PROFILES["high-cardinality"].executables > profiles.PROFILES["realistic"].executables


runner = CliRunner()


def test_estimate_cli_json() -> None:
    result = runner.invoke(
        app.app,
        [
            "loadsim",
            "estimate",
            "--hosts",
            "2",
            "--processes-per-host",
            "5",
            "--duration",
            "1m",
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["activeSeries"] == 2 * 5 * fleet.POINTS_PER_PROCESS


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--hosts", "0"], "error: --hosts: Input should be greater than or equal to 1"),
        (
            ["--churn-per-minute", "-1"],
            "error: --churn-per-minute: Input should be greater than or equal to 0",
        ),
        (["--duration", "soon"], "error: --duration: invalid value 'soon'"),
        (["--interval", "-5s"], "error: --interval: invalid value '-5s'"),
        (["--target", "http://127.0.0.1:9"], "error: target http://127.0.0.1:9 is unreachable"),
    ],
)
def test_run_cli_bad_input_is_one_line(args: list[str], expected: str) -> None:
    if "--target" not in args:
        args = [*args, "--target", "http://127.0.0.1:9"]
    result = runner.invoke(app.app, ["loadsim", "run", *args])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[0].startswith(expected)
    assert "Traceback" not in result.stderr


def test_a_cut_or_foreign_termination_message_is_no_delivery() -> None:
    """A Job's termination message is cut at 4 KiB, and a crash leaves its own words there instead."""
    summary = json.dumps(
        {
            "targets": [
                {"target": "http://a:4318", "points_sent": 120, "requests": 3, "send_errors": 0, "batches_dropped": 0},
                {"target": "http://b:4318", "points_sent": 80, "requests": 2, "send_errors": 2, "batches_dropped": 1},
            ]
        }
    )
    assert reconcile_loadsim.delivery(summary) == reconcile_loadsim.Delivery(
        points_sent=200,
        sent_batches={"http://a:4318": 3, "http://b:4318": 2},
        failed_batches={"http://a:4318": 0, "http://b:4318": 3},
    )
    assert reconcile_loadsim.delivery(summary[:-10]) is None
    assert reconcile_loadsim.delivery("Traceback (most recent call last):") is None
    assert reconcile_loadsim.delivery('{"targets": [{"target": "x"}]}') is None
