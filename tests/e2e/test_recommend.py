"""`phoenix recommend` against a real Prometheus holding LoadSim's process metrics through a real collector,
with the fixtures' rule file loaded by that Prometheus; then the experiment it writes, run for real."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel import yaml

from phoenix_operator.loadsim import fleet
from phoenix_operator.loadsim import run as loadsim_run
from phoenix_operator.models import loadsim, pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local_components
from tests import conftest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment(every_slot=True)]
PHOENIX = [sys.executable, "-m", "phoenix_operator"]
FIXTURES = Path(__file__).resolve().parents[1] / "recommend"
PROCESS_METRICS = '{__name__=~"process_.+"}'
LOAD = loadsim.LoadProfileSpec(
    profile="realistic", hosts=3, processes_per_host=20, interval_seconds=1, duration="5s", seed=3
)


def _production(listen: render_pipeline.Listen) -> str:
    spec = pipeline.BaselineVariant(template="baseline")
    return render_pipeline.render(spec, experiment="production", variant="baseline", listen=listen).text


def _phoenix(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PHOENIX, *args], capture_output=True, text=True, timeout=timeout, check=False)


def _distinct(url: str, metric: str, labels: tuple[str, ...]) -> int:
    """How many series of `metric` differ in `labels`, counted here from the series themselves."""
    body = httpx.get(f"{url}/api/v1/series", params={"match[]": metric}, timeout=10).json()
    return len({tuple(series.get(label, "") for label in labels) for series in body["data"]})


@pytest.fixture
def production(otelcol: conftest.StartCollector, prometheus: conftest.StartPrometheus) -> str:
    """The URL of a Prometheus that scrapes a production collector fed by LoadSim and evaluates the fixtures' rules."""
    collector = otelcol(_production, "production")
    server = prometheus(
        [local_components.ScrapeTarget("production", collector.metrics_address)],
        rule_files=[FIXTURES / "rules" / "processes.rules.yaml"],
    )
    summary = loadsim_run.run(LOAD, [collector.otlp_http_url])
    assert summary.targets[0].send_errors == 0
    expected = fleet.estimate(LOAD).unique_series
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.url}/api/v1/query", params={"query": f"count({PROCESS_METRICS})"}, timeout=10)
        result = answer.json()["data"]["result"]
        if result and int(float(result[0]["value"][1])) == expected:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"Prometheus never held the {expected} series LoadSim sent")
    return server.url


def _recommend(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _phoenix(
        "recommend",
        "--dashboards", str(FIXTURES / "dashboards"),
        "--rules", str(FIXTURES / "rules" / "prometheusrule.yaml"),  # the other rule file, Prometheus has loaded
        "--prometheus", url,
        "--match", PROCESS_METRICS,
        *args,
    )  # fmt: skip


def test_recommend_finds_exactly_what_the_dashboards_and_rules_leave_unused(production: str, tmp_path: Path) -> None:
    table = _recommend(production)
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line.strip().startswith("process_")}
    assert set(rows) == {
        "process_cpu_time_seconds_total",
        "process_memory_usage_bytes",
        "process_memory_virtual_bytes",
        "process_disk_io_bytes_total",
    }
    # read only by a recording rule whose output nothing reads
    assert " drop " in rows["process_memory_virtual_bytes"]
    kept = {
        "process_cpu_time_seconds_total": ("host_name", "process_executable_name", "state"),
        "process_memory_usage_bytes": ("host_name",),
        "process_disk_io_bytes_total": ("direction", "process_owner"),
    }
    for metric, labels in kept.items():
        row = rows[metric].split()
        assert row[2] == "aggregate", rows[metric]
        # what would stay, as this test counts it from the series themselves
        assert row[4] == f"{_distinct(production, metric, labels):,}", rows[metric]
    assert "process.memory.virtual" in rows["process_memory_virtual_bytes"]  # its OpenTelemetry name
    assert "4 of 4 metrics can be cut" in table.stderr
    manifest = _recommend(production, "-o", "yaml", "--name", "recommended")
    assert manifest.returncode == 0, manifest.stderr
    experiment: dict[str, Any] = yaml.YAML(typ="safe", pure=True).load(manifest.stdout)
    parameters = experiment["spec"]["candidate"]["parameters"]
    assert parameters["dropMetrics"] == ["process.memory.virtual"]
    # no kept metric's query needs these; process.owner and process.executable.name are needed
    assert parameters["aggregateAwayAttributes"] == [
        "process.command",
        "process.command_line",
        "process.executable.path",
        "process.parent_pid",
        "process.pid",
    ]
    names = [q["name"] for q in experiment["spec"]["analysis"]["criticalQueries"]]
    assert names == ["hostmemoryhigh", "memory-by-host", "cpu-by-executable", "disk-io-by-owner",
                     "top-5-executables-by-cpu"]  # fmt: skip
    path = tmp_path / "recommended.yaml"
    path.write_text(manifest.stdout, encoding="utf-8")
    validated = _phoenix("validate", "-f", str(path))
    assert validated.returncode == 0, validated.stderr
    _the_recommended_cut_promotes_and_one_more_label_rejects(experiment, tmp_path)


def _run_local(experiment: dict[str, Any], path: Path) -> subprocess.Popen[str]:
    stream = path.open("w")
    yaml.YAML().dump(experiment, stream)
    stream.close()
    return subprocess.Popen(
        [*PHOENIX, "run", "--local", "-f", str(path), "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _the_recommended_cut_promotes_and_one_more_label_rejects(experiment: dict[str, Any], tmp_path: Path) -> None:
    """The experiment recommend wrote, on a short clock, runs to Promote; aggregating away process.owner too,
    which a dashboard groups by, turns it into Reject naming that dashboard's query. Both run at once."""
    experiment["spec"].update(
        load={"loadSim": {"profile": "realistic", "hosts": 4, "processesPerHost": 40, "intervalSeconds": 5,
                          "duration": "3m", "seed": 7}},
        # the queries' rates over a minute, so the warmup lets a minute of both variants' data fill them
        duration="3m", warmup="90s", analysisInterval="10s",
    )  # fmt: skip
    experiment["spec"]["analysis"]["objectives"] = {"minSeriesReduction": 0.5, "maxQueryError": 0.01}
    too_far = json.loads(json.dumps(experiment))
    too_far["metadata"]["name"] = "one-label-too-far"
    too_far["spec"]["candidate"]["parameters"]["aggregateAwayAttributes"].append("process.owner")
    runs = [
        _run_local(experiment, tmp_path / "promote.yaml"),
        _run_local(too_far, tmp_path / "reject.yaml"),
    ]
    outcomes = [run.communicate(timeout=420) for run in runs]
    for run, (_, stderr) in zip(runs, outcomes, strict=True):
        assert run.returncode == 0, stderr
    promoted, rejected = (json.loads(stdout) for stdout, _ in outcomes)
    print(f"recommended: {promoted['verdict']['reasons']}; one label too far: {rejected['verdict']['reasons']}")
    assert promoted["verdict"]["decision"] == "Promote", promoted["verdict"]
    assert rejected["verdict"]["decision"] == "Reject", rejected["verdict"]
    assert any("disk-io-by-owner" in reason for reason in rejected["verdict"]["reasons"]), rejected["verdict"]
