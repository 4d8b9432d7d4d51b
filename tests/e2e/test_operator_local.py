"""The whole lifecycle through the operator: objects in the real API server,
real collectors, LoadSim and Prometheus run by the local runtime."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from phoenix_operator.models import experiment
from phoenix_operator.render import pipeline as render_pipeline
from tests import conftest
from tests.harness import controlplane, otlp
from tests.harness import operator as harness

pytestmark = pytest.mark.e2e
QUICKSTART = controlplane.REPO / "examples" / "quickstart" / "experiment.yaml"
CLUSTER_EXAMPLE = controlplane.REPO / "examples" / "experiment.yaml"
PIPELINE_EXAMPLE = controlplane.REPO / "examples" / "pipeline.yaml"
TOKEN_ACCESS = controlplane.REPO / "docs" / "prometheus-token-access.yaml"
DASHBOARDS = controlplane.REPO / "kustomize" / "components" / "grafana" / "dashboards"


@pytest.fixture
def namespace(control_plane: controlplane.ControlPlane) -> str:
    return harness.namespace(control_plane)


@pytest.fixture
def local_operator(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[harness.Operator]:
    # as its ServiceAccount, with only the role kustomize/base gives it
    kubeconfig = harness.operator_kubeconfig(control_plane, tmp_path / "operator.kubeconfig")
    with harness.running(
        control_plane,
        namespace,
        tmp_path,
        "--runtime",
        "local",
        "--measure-step",
        "2s",
        "--workdir",
        str(tmp_path / "runtime"),
        kubeconfig=kubeconfig,
    ) as running:
        yield running


def _phase(plane: controlplane.ControlPlane, namespace: str) -> str | None:
    found = harness.get(plane, namespace, "pexp", "quickstart")
    phase: str | None = ((found or {}).get("status") or {}).get("phase")
    return phase


def _empty_or_failing_panels(prometheus: str, variables: dict[str, str], start: float, end: float) -> list[str]:
    """Each dashboard panel's queries, as Grafana would send them over the run; those without data."""
    problems = []
    for dashboard in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(dashboard.read_text())["panels"]:
            for target in panel["targets"]:
                query = target["expr"]
                for name, value in variables.items():
                    query = query.replace(f"${name}", value)
                answer = httpx.get(
                    f"{prometheus}/api/v1/query_range",
                    params={"query": query, "start": start, "end": end, "step": 5},
                    timeout=10,
                ).json()
                if answer["status"] != "success" or not answer["data"]["result"]:
                    problems.append(f"{dashboard.name} / {panel['title']}: {answer.get('error', 'no data')}: {query}")
    return problems


def _kubectl_phoenix(plane: controlplane.ControlPlane, *args: str) -> str:
    """`kubectl phoenix ...` found by kubectl's plugin discovery, with this environment's commands on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["kubectl", "phoenix", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PATH": path, "KUBECONFIG": str(plane.kubeconfig)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _the_plugin_reads_what_the_operator_wrote(
    plane: controlplane.ControlPlane, namespace: str, found: dict[str, Any], tmp_path: Path
) -> None:
    # the status the operator wrote is one the models accept, so the plugin can read it
    status = experiment.ExperimentStatus.model_validate(found["status"])
    assert status.results is not None and status.verdict is not None
    reduction = status.results.series_reduction
    assert reduction is not None
    shown = f"{reduction.estimate:.1%} [{reduction.ci_low:.1%}, {reduction.ci_high:.1%}]"
    assert shown in _kubectl_phoenix(plane, "status", "quickstart", "-n", namespace)
    page = tmp_path / "report.html"
    assert shown in _kubectl_phoenix(plane, "report", "quickstart", "-n", namespace, "--html", str(page))
    assert "Promote: quickstart" in page.read_text()
    promoted = yaml.safe_load(_kubectl_phoenix(plane, "promote", "quickstart", "-n", namespace, "--dry-run"))
    assert promoted["kind"] == "PhoenixProcessPipeline"
    assert promoted["spec"]["template"] == "candidate"
    assert promoted["spec"]["parameters"]["dropMetrics"] == ["process.memory.virtual"]
    assert harness.get(plane, namespace, "ppp", promoted["metadata"]["name"]) is None  # a dry run creates nothing


def test_the_quickstart_goes_from_pending_to_a_promoted_verdict(
    control_plane: controlplane.ControlPlane, namespace: str, local_operator: harness.Operator, tmp_path: Path
) -> None:
    began = time.time()
    manifest: dict[str, Any] = yaml.safe_load(QUICKSTART.read_text())
    harness.apply(control_plane, namespace, manifest)
    seen: list[str] = []

    def completed() -> bool:
        phase = _phase(control_plane, namespace)
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        return phase in ("Completed", "Failed", "Aborted")

    harness.wait_for("a verdict", completed, 420, local_operator.log)
    found = harness.get(control_plane, namespace, "pexp", "quickstart")
    assert found is not None
    status = found["status"]
    assert status["phase"] == "Completed", json.dumps(status, indent=1)
    assert seen[-3:] == ["Running", "Analyzing", "Completed"]
    assert "Initializing" in seen or "Pending" in seen
    assert status["verdict"]["decision"] == "Promote", status["verdict"]
    assert status["results"]["seriesReduction"]["ciLow"] > 0.5
    assert status["results"]["fidelity"]["passed"] == status["results"]["fidelity"]["checked"] == 3
    # the candidate refused and failed none of its points, as its own telemetry says
    guardrails = {g["name"]: g["passed"] for g in status["results"]["guardrails"]}
    assert guardrails["candidate points refused or failed"] is True
    assert status["results"]["candidate"]["refusedPointsRatio"] == 0.0
    succeeded = harness.condition(found, "Succeeded")
    assert succeeded is not None and (succeeded["status"], succeeded["reason"]) == ("True", "Promote")
    table = control_plane.kubectl("get", "pexp", "-n", namespace).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:5] == ["NAME", "PHASE", "DECISION", "REDUCTION", "SAVINGS/MO"]
    assert row[:3] == ["quickstart", "Completed", "Promote"]
    assert float(row[3]) >= 0.8
    # the experiment removed what it created, and the local runtime stopped those collectors
    harness.wait_for(
        "the pipelines to be removed",
        lambda: harness.get(control_plane, namespace, "ppp", "quickstart-candidate") is None,
        30,
    )
    events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    promote = [e for e in events if e["involvedObject"]["name"] == "quickstart" and e["reason"] == "Promote"]
    assert promote and "series reduction" in promote[0]["message"] and "savings $" in promote[0]["message"]
    assert 'phoenix_decisions_total{decision="Promote"} 1.0' in local_operator.metrics()
    log = local_operator.log()
    assert "Forbidden" not in log and " 403" not in log, "the operator's role lacks something it used"
    _the_plugin_reads_what_the_operator_wrote(control_plane, namespace, found, tmp_path)
    # every dashboard panel has data from this run, read from the runtime's Prometheus
    served = re.search(r"the local runtime's Prometheus serves (\S+)", local_operator.log())
    assert served is not None, local_operator.log()
    variables = {"namespace": namespace, "experiment": "quickstart", "__rate_interval": "30s"}
    harness.wait_for(
        "data in every dashboard panel",
        lambda: not _empty_or_failing_panels(served.group(1), variables, began, time.time()),
        30,
        lambda: "\n".join(_empty_or_failing_panels(served.group(1), variables, began, time.time())),
    )


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_killed_local_operator_resumes_and_completes_with_one_verdict(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """Killed while Running, and again while Analyzing."""
    workdir = tmp_path / "runtime"
    flags = ("--runtime", "local", "--measure-step", "2s", "--workdir", str(workdir))
    harness.apply(control_plane, namespace, yaml.safe_load(QUICKSTART.read_text()))
    with harness.running(control_plane, namespace, tmp_path, *flags) as first:
        harness.wait_for("Running", lambda: _phase(control_plane, namespace) == "Running", 120, first.log)
        harness.wait_for(
            "the load",
            lambda: (
                (
                    harness.condition(harness.get(control_plane, namespace, "lsim", "quickstart-load"), "Ready") or {}
                ).get("status")
                == "True"
            ),
            60,
            first.log,
        )
        started_at = harness.get(control_plane, namespace, "pexp", "quickstart")["status"]["startedAt"]  # type: ignore[index]
        left_behind = [int(pid) for pid in json.loads((workdir / "processes.json").read_text())]
        first.kill()
    assert all(_alive(pid) for pid in left_behind), "SIGKILL leaves the children running"
    with harness.running(control_plane, namespace, tmp_path, *flags) as second:
        assert not any(_alive(pid) for pid in left_behind), "the restarted operator reaps what the killed one left"
        phase = harness.wait_for(
            "Analyzing",
            lambda: (p := _phase(control_plane, namespace)) in ("Analyzing", "Completed", "Failed") and p,
            420,
            second.log,
        )
        assert phase == "Analyzing", "the verdict waits for the last samples, so Analyzing lasts long enough to see"
        second.kill()
    with harness.running(control_plane, namespace, tmp_path, *flags) as third:
        harness.wait_for(
            "a verdict", lambda: _phase(control_plane, namespace) in ("Completed", "Failed"), 120, third.log
        )
        found = harness.get(control_plane, namespace, "pexp", "quickstart")
        assert found is not None
        assert found["status"]["phase"] == "Completed", json.dumps(found["status"], indent=1)
        assert found["status"]["startedAt"] == started_at
        # two kills lost no samples: the quickstart still promotes, every query agreeing
        assert found["status"]["verdict"]["decision"] == "Promote", found["status"]["verdict"]
        assert (
            found["status"]["results"]["fidelity"]["passed"] == found["status"]["results"]["fidelity"]["checked"] == 3
        )
        events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        decisions = [
            e
            for e in events
            if e["involvedObject"]["name"] == "quickstart" and e["reason"] in ("Promote", "Reject", "Inconclusive")
        ]
        assert len(decisions) == 1 and decisions[0].get("count", 1) == 1
        pipelines = json.loads(control_plane.kubectl("get", "ppp", "-n", namespace, "-o", "json").stdout)["items"]
        assert pipelines == [] or all(p["metadata"].get("deletionTimestamp") for p in pipelines)


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
    spec["load"]["loadSim"].update(hosts=2, intervalSeconds=5)  # its 150 processes per host
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
    _kubectl_phoenix(plane, "promote", name, "-n", namespace)

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
        interval = 30  # six of the load's batches: where the window's edges fall moves the share little
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
        shown = _kubectl_phoenix(plane, "status", name, "-n", namespace)
        assert "drift watch" in shown and "Drifted" in shown and "rolled back" in shown
        events = json.loads(plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == name}
        assert {"Drifted", "RolledBack"} <= reasons
    finally:
        feed.terminate()
        feed.wait(10)


VENDOR_KEY = "s3cret-vendor-key"


def _vendor(listen: render_pipeline.Listen) -> str:
    """A second collector standing for a vendor: it labels what it receives with the api-key header it came with."""
    return f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: "{listen.otlp_http}", include_metadata: true}}
processors:
  attributes/header:
    actions: [{{key: received_api_key, from_context: metadata.api-key, action: insert}}]
exporters:
  prometheus: {{endpoint: "{listen.prometheus}"}}
service:
  telemetry:
    metrics:
      readers:
        - pull: {{exporter: {{prometheus: {{host: "{listen.telemetry_host}", port: {listen.telemetry_port}}}}}}}
  pipelines:
    metrics: {{receivers: [otlp], processors: [attributes/header], exporters: [prometheus]}}
"""


def test_a_pipeline_delivers_to_its_vendor_with_the_header_from_its_secret(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    local_operator: harness.Operator,
    otelcol: conftest.StartCollector,
) -> None:
    vendor = otelcol(_vendor, "vendor")
    control_plane.kubectl(
        "create", "secret", "generic", "vendor-credentials", "-n", namespace, f"--from-literal=api-key={VENDOR_KEY}"
    )
    # the operator reads only the Secrets it is granted by name, as docs/prometheus-token-access.yaml shows
    grant = TOKEN_ACCESS.read_text().replace("prometheus-token", "vendor-credentials")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input_text=grant)
    (manifest,) = [d for d in yaml.safe_load_all(PIPELINE_EXAMPLE.read_text()) if d["kind"] == "PhoenixProcessPipeline"]
    manifest["spec"]["exporters"][0]["endpoint"] = vendor.otlp_http_url
    harness.apply(control_plane, namespace, manifest)
    name = manifest["metadata"]["name"]
    ready = harness.wait_condition(control_plane, namespace, "ppp", name, "Ready", "True", 60, local_operator.log)
    assert ready["reason"] == "CollectorsReady"
    endpoint = harness.get(control_plane, namespace, "ppp", name)["status"]["endpoints"]["otlpHttp"]  # type: ignore[index]

    def delivered() -> str | None:
        otlp.post(endpoint, otlp.gauge_request("phoenix.delivered", 1.0, {"host.name": "h1"}))
        exported = httpx.get(f"http://{vendor.metrics_address}/metrics", timeout=5).text
        return next((line for line in exported.splitlines() if line.startswith("phoenix_delivered")), None)

    line = harness.wait_for("the vendor to receive the pipeline's data", delivered, 30, local_operator.log)
    assert f'received_api_key="{VENDOR_KEY}"' in line
    # the key went to the vendor, and nowhere else: not the status, the log or the rendered config
    found = harness.get(control_plane, namespace, "ppp", name)
    assert VENDOR_KEY not in json.dumps(found) and VENDOR_KEY not in local_operator.log()
    configs = list((local_operator.process.log_path.parent / "runtime").rglob("*.yaml"))
    assert configs and not any(VENDOR_KEY in config.read_text() for config in configs)
