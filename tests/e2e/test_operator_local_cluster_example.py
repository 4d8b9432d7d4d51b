"""examples/experiment.yaml through the operator with `--runtime local`: shadow, promote, watch, roll back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]
CLUSTER_EXAMPLE = controlplane.REPO / "examples" / "experiment.yaml"


def _prometheus_sum(prometheus: str, query: str) -> float | None:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return sum(float(r["value"][1]) for r in result) if result else None


def test_the_cluster_example_shadows_promotes_watches_and_rolls_back(
    control_plane: controlplane.ControlPlane, namespace: str, local_operator: harness.Operator
) -> None:
    """examples/experiment.yaml, on a short clock: the pipeline it names runs, no synthetic point reaches it, and
    once promoted it is watched, drifts when its processes per host triple, and is rolled back."""
    production: dict[str, Any] = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "process-metrics"},
        "spec": {"template": "baseline", "parameters": {"metricExpiration": "8s"}},
    }
    harness.apply(control_plane, namespace, production)
    harness.wait_condition(control_plane, namespace, "ppp", "process-metrics", "Ready", "True", 60, local_operator.log)
    before = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert before is not None
    manifest: dict[str, Any] = yaml.safe_load(CLUSTER_EXAMPLE.read_text())
    assert manifest["spec"]["baseline"] == {"pipelineRef": "process-metrics"}
    spec = manifest["spec"]
    del spec["analysis"]["prometheus"]  # the local runtime's own Prometheus scrapes the collectors
    spec["candidate"]["parameters"]["metricExpiration"] = "8s"
    spec["load"]["loadSim"].update(hosts=2, intervalSeconds=2)  # its 150 processes per host
    # every clock shorter, the query's rate window with the warmup that lets it fill
    spec.update(duration="3m", warmup="75s", analysisInterval="10s")
    for query in spec["analysis"]["criticalQueries"]:
        assert "[5m]" in query["query"]
        query["query"] = query["query"].replace("[5m]", "[1m]")
    harness.apply(control_plane, namespace, manifest)
    name = manifest["metadata"]["name"]
    harness.wait_for(
        "a verdict",
        lambda: (
            (harness.get(control_plane, namespace, "pexp", name) or {}).get("status", {}).get("phase")
            in ("Completed", "Failed")
        ),
        300,
        local_operator.log,
    )
    status = harness.get(control_plane, namespace, "pexp", name)["status"]  # type: ignore[index]
    assert status["phase"] == "Completed", json.dumps(status, indent=1)
    assert status["verdict"]["decision"] == "Promote", status["verdict"]
    assert status["results"]["seriesReduction"]["ciLow"] > spec["analysis"]["objectives"]["minSeriesReduction"]
    # the production pipeline is still there, and its receiver never counted one point
    served = re.search(r"the local runtime's Prometheus serves (\S+)", local_operator.log())
    assert served is not None
    scoped = '{phoenix_experiment="process-metrics", phoenix_scrape="telemetry"}'
    assert _prometheus_sum(served.group(1), f"max_over_time(otelcol_process_uptime{scoped}[10m])")
    assert not _prometheus_sum(served.group(1), f"max_over_time(otelcol_receiver_accepted_metric_points{scoped}[10m])")
    shadowed = '{phoenix_experiment="lean-process-metrics", phoenix_scrape="telemetry"}'
    assert _prometheus_sum(served.group(1), f"max_over_time(otelcol_receiver_accepted_metric_points{shadowed}[10m])")
    # and it still runs, on the spec it had, untouched by the experiment
    after = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert after is not None and after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert harness.condition(after, "Ready")["status"] == "True"  # type: ignore[index]
    _promoted_watched_and_rolled_back(control_plane, namespace, local_operator, manifest, before)


def _feed(endpoint: str, load: dict[str, Any], processes_per_host: int) -> subprocess.Popen[bytes]:
    """The production pipeline's own traffic: the profile and cadence the experiment tested (the share of its
    input a pipeline exports depends on how the input is batched), with its processes per host."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "phoenix"), "loadsim", "run", "--target", endpoint,
         "--profile", load["profile"], "--hosts", str(load["hosts"]),
         "--processes-per-host", str(processes_per_host), "--interval", f"{load['intervalSeconds']}s",
         "--duration", "10m"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _promoted_watched_and_rolled_back(
    plane: controlplane.ControlPlane,
    namespace: str,
    operator: harness.Operator,
    manifest: dict[str, Any],
    before: dict[str, Any],
) -> None:
    """Promote by hand, watch on a short clock, triple the processes per host: drifted, and rolled back."""
    name, load = manifest["metadata"]["name"], manifest["spec"]["load"]["loadSim"]
    harness.kubectl_phoenix(plane, "promote", name, "-n", namespace)

    def promoted_endpoint() -> str | None:
        # the local runtime restarts the collector on its own ports with the promoted config, as a pod behind
        # its Service: the endpoints stay, the config hash moves
        found = harness.get(plane, namespace, "ppp", "process-metrics") or {}
        ready = (harness.condition(found, "Ready") or {}).get("status") == "True"
        status = found.get("status", {})
        rolled = status.get("configHash") != before["status"]["configHash"]
        running = found["spec"]["template"] == "candidate" and rolled
        return status["endpoints"]["otlpHttp"] if ready and running else None

    endpoint = harness.wait_for("the promoted pipeline", promoted_endpoint, 60, operator.log)

    def watched() -> str:
        found = harness.get(plane, namespace, "pexp", name) or {}
        return f"{harness.condition(found, 'Drifted')}\n{found.get('status', {}).get('drift')}\n{operator.log()}"

    feed = _feed(endpoint, load, load["processesPerHost"])
    try:
        # six of the load's batches: where the window's edges fall moves the share little
        interval = 6 * load["intervalSeconds"]
        watch = {**manifest["spec"]["driftWatch"], "interval": f"{interval}s", "rollback": "auto"}
        plane.kubectl(
            "patch", "pexp", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"driftWatch": watch}})
        )
        # on the traffic it was tested with, the promoted pipeline holds
        holding = harness.wait_condition(plane, namespace, "pexp", name, "Drifted", "False", 5 * interval, watched)
        assert (
            holding["reason"] == "Holding"
            and "every critical query (1) returns data with its labels" in holding["message"]
        )
        assert re.search(
            r"^phoenix_experiment_drift\{.*experiment=\"lean-process-metrics\".*\} 0\.0$", operator.metrics(), re.M
        )
        # three times the processes per host: the share of its input it keeps moves out of the tested range
        feed.terminate()
        feed.wait(10)
        feed = _feed(endpoint, load, 3 * load["processesPerHost"])
        changed = time.monotonic()
        drifted = harness.wait_condition(plane, namespace, "pexp", name, "Drifted", "True", 4 * interval, watched)
        elapsed = time.monotonic() - changed
        print(f"drift watch: {holding['message']}; after {elapsed:.0f}s: {drifted['message']}")
        assert elapsed <= 3 * interval, "Drifted took longer than 3 watch intervals"
        assert drifted["message"].startswith("kept points ratio "), drifted["message"]
        assert re.search(
            r"^phoenix_experiment_drift\{.*experiment=\"lean-process-metrics\".*\} 1\.0$", operator.metrics(), re.M
        )
        # rollback: auto gave the pipeline back exactly the spec it had before the promotion
        harness.wait_for(
            "the rollback",
            lambda: (harness.get(plane, namespace, "ppp", "process-metrics") or {}).get("spec") == before["spec"],
            30,
            operator.log,
        )
        status = harness.get(plane, namespace, "pexp", name)["status"]  # type: ignore[index]
        assert status["promotion"]["rolledBackAt"]
        shown = harness.kubectl_phoenix(plane, "status", name, "-n", namespace)
        assert "drift watch" in shown and "Drifted" in shown and "rolled back" in shown
        events = json.loads(plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == name}
        assert {"Drifted", "RolledBack"} <= reasons
    finally:
        feed.terminate()
        feed.wait(10)
