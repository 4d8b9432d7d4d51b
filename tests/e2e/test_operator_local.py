"""The whole lifecycle through the operator: objects in the real API server,
real collectors, LoadSim and Prometheus run by the local runtime."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from phoenix_operator.models import experiment
from phoenix_operator.render import pipeline as render_pipeline
from tests import conftest
from tests.e2e import test_one_driver
from tests.harness import controlplane, otlp
from tests.harness import operator as harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]
CLUSTER_EXAMPLE = controlplane.REPO / "examples" / "experiment.yaml"
PIPELINE_EXAMPLE = controlplane.REPO / "examples" / "pipeline.yaml"
TOKEN_ACCESS = controlplane.REPO / "docs" / "prometheus-token-access.yaml"
DASHBOARDS = controlplane.REPO / "kustomize" / "components" / "grafana" / "dashboards"


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


def _the_plugin_reads_what_the_operator_wrote(
    plane: controlplane.ControlPlane, namespace: str, found: dict[str, Any], tmp_path: Path
) -> None:
    # the status the operator wrote is one the models accept, so the plugin can read it
    status = experiment.ExperimentStatus.model_validate(found["status"])
    assert status.results is not None and status.verdict is not None
    reduction = status.results.series_reduction
    assert reduction is not None
    shown = f"{reduction.estimate:.1%} [{reduction.ci_low:.1%}, {reduction.ci_high:.1%}]"
    assert shown in harness.kubectl_phoenix(plane, "status", "quickstart", "-n", namespace)
    page = tmp_path / "report.html"
    assert shown in harness.kubectl_phoenix(plane, "report", "quickstart", "-n", namespace, "--html", str(page))
    assert "Promote: quickstart" in page.read_text()
    promoted = yaml.safe_load(harness.kubectl_phoenix(plane, "promote", "quickstart", "-n", namespace, "--dry-run"))
    assert promoted["kind"] == "PhoenixProcessPipeline"
    assert promoted["spec"]["template"] == "candidate"
    assert promoted["spec"]["parameters"]["dropMetrics"] == ["process.memory.virtual"]
    assert harness.get(plane, namespace, "ppp", promoted["metadata"]["name"]) is None  # a dry run creates nothing


def test_the_quickstart_goes_from_pending_to_a_promoted_verdict(
    control_plane: controlplane.ControlPlane, namespace: str, local_operator: harness.Operator, tmp_path: Path
) -> None:
    """The small quickstart, a fifth of its load: `test_run_local` holds the full one to its numbers."""
    began = time.time()
    harness.apply(control_plane, namespace, test_one_driver.small_quickstart())
    seen: list[str] = []

    def completed() -> bool:
        phase = harness.phase(control_plane, namespace, "quickstart")
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
    assert float(row[3]) == pytest.approx(status["results"]["seriesReduction"]["estimate"])
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
