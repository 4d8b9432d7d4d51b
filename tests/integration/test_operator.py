"""The operator against the test bed, with the Kubernetes runtime.

The test bed's controllers roll Deployments and DaemonSets, run Jobs and
collect garbage, and kwok's fake nodes make pods Ready; no container runs,
so the tests check the objects the operator writes and what it makes of the
status the controllers write.
"""

from __future__ import annotations

import copy
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from phoenix_operator.models import kinds, pipeline
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local_components
from tests import conftest
from tests.harness import controlplane, faults, otlp
from tests.harness import operator as harness

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXAMPLES = controlplane.REPO / "examples"
IMAGE = "registry.example/phoenix-operator:test"


@pytest.fixture
def operator(control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path) -> Iterator[harness.Operator]:
    with harness.running(
        control_plane,
        namespace,
        tmp_path,
        "--image",
        IMAGE,
        "--prometheus-url",
        "http://127.0.0.1:9",  # nothing listens on the discard port
        "--measure-step",
        "1s",
        "--prometheus-timeout",
        "6s",
    ) as running:
        yield running


def _example(name: str) -> dict[str, Any]:
    """The example's Phoenix object, without the Secret its exporter reads."""
    documents = yaml.safe_load_all((EXAMPLES / name).read_text())
    (loaded,) = [d for d in documents if str(d["apiVersion"]).startswith("phoenix.io/")]
    return dict(loaded)


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return container


def test_a_pipeline_becomes_configmap_workload_and_service_owned_by_it(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = _example("pipeline.yaml")
    harness.apply(control_plane, namespace, manifest)
    child = reconcile_pipeline.child_name(manifest["metadata"]["name"])
    owner = harness.get(control_plane, namespace, "ppp", manifest["metadata"]["name"])
    assert owner is not None
    # the operator writes its children one after another, so each is waited for
    workload, config, service = (
        harness.wait_for(
            f"the {kind}", functools.partial(harness.get, control_plane, namespace, kind, child), 30, operator.log
        )
        for kind in ("daemonset", "configmap", "service")
    )
    for obj in (workload, config, service):
        (reference,) = obj["metadata"]["ownerReferences"]
        assert (reference["kind"], reference["uid"], reference["controller"]) == (
            "PhoenixProcessPipeline",
            owner["metadata"]["uid"],
            True,
        )
    rendered = yaml.safe_load(config["data"]["config.yaml"])
    assert "otlp_http/vendor" in rendered["exporters"]
    # the ConfigMap holds a reference to the Secret, never its value
    assert rendered["exporters"]["otlp_http/vendor"]["headers"] == {"api-key": "${env:PHOENIX_HEADER_VENDOR_API_KEY}"}
    container = _container(workload)
    assert {
        "name": "PHOENIX_HEADER_VENDOR_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "vendor-credentials", "key": "api-key"}},
    } in container["env"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["image"] == manifest["spec"].get("collector", {}).get(
        "image", "otel/opentelemetry-collector-contrib:0.155.0"
    )
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318, 8888, 8889}
    # what Prometheus copies onto the collector's telemetry (components/prometheus)
    labels = service["metadata"]["labels"]
    assert (labels["phoenix.io/experiment"], labels["phoenix.io/variant"]) == (
        manifest["metadata"]["name"],
        "candidate",
    )
    status = harness.wait_for(
        "ConfigValid",
        lambda: harness.condition(
            harness.get(control_plane, namespace, "ppp", manifest["metadata"]["name"]), "ConfigValid"
        ),
        30,
        operator.log,
    )
    assert status["status"] == "True"
    pipeline = harness.get(control_plane, namespace, "ppp", manifest["metadata"]["name"])
    assert (
        pipeline["status"]["configHash"]
        == workload["spec"]["template"]["metadata"]["annotations"]["phoenix.io/config-hash"]
    )  # type: ignore[index]
    # the operator's bookkeeping is the one status field that holds the spec it handled: no free-form stanza in the
    # status, no annotation, so handling the pipeline wrote the object itself not once
    assert "kopf" not in pipeline["status"]  # type: ignore[index]
    assert json.loads(pipeline["status"]["lastHandledConfiguration"])["spec"] == pipeline["spec"]  # type: ignore[index]
    annotations = pipeline["metadata"].get("annotations") or {}  # type: ignore[index]
    assert not [k for k in annotations if k.startswith(("phoenix.io/", "kopf."))], annotations

    # a collector on every node, each pod Ready: the pipeline is
    harness.wait_condition(
        control_plane, namespace, "ppp", manifest["metadata"]["name"], "Ready", "True", 30, operator.log
    )
    rolled = harness.get(control_plane, namespace, "daemonset", child)
    assert rolled is not None and rolled["status"]["numberReady"] == controlplane.NODES
    # the Service routes to those pods: the EndpointSlice controller lists each one's address
    pods = json.loads(control_plane.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    addresses = sorted(
        p["status"]["podIP"] for p in pods if p["metadata"]["ownerReferences"][0]["uid"] == rolled["metadata"]["uid"]
    )

    def sliced() -> list[str] | None:
        listed = control_plane.kubectl(
            "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={child}", "-o", "json"
        ).stdout
        slices = json.loads(listed)["items"]
        found = sorted(a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"])
        return slices if found == addresses else None

    slices = harness.wait_for("the Service's EndpointSlice", sliced, 30)
    assert len(addresses) == controlplane.NODES
    # the operator counts a collector ready once a slice of its pipeline routes to it
    assert all(s["metadata"]["labels"]["phoenix.io/pipeline"] == manifest["metadata"]["name"] for s in slices)
    ready = harness.get(control_plane, namespace, "ppp", manifest["metadata"]["name"])
    assert ready is not None and ready["status"]["readyReplicas"] == controlplane.NODES


def _load_condition(plane: controlplane.ControlPlane, namespace: str, name: str, type_: str) -> dict[str, Any]:
    return harness.condition(harness.get(plane, namespace, "lsim", name), type_) or {}


@pytest.fixture
def load_target(otelcol: conftest.StartCollector) -> local_components.LocalCollector:
    """A real collector for a load Job's pod, run here by the harness, to send to."""

    def render(listen: render_pipeline.Listen) -> str:
        spec = pipeline.BaselineVariant(template="baseline")
        return render_pipeline.render(spec, experiment="load", variant="baseline", listen=listen).text

    return otelcol(render)


SHORT_LOAD = {"hosts": 2, "processesPerHost": 3, "intervalSeconds": 1, "duration": "3s"}


def test_a_load_job_that_lost_batches_ends_its_loadsim_naming_the_target_that_refused(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator: harness.Operator,
    load_target: local_components.LocalCollector,
    tmp_path: Path,
) -> None:
    with faults.refusing_otlp_endpoint() as refusing:
        targets = [{"endpoint": load_target.otlp_http_url}, {"endpoint": refusing}]
        harness.apply(control_plane, namespace, _loadsim("doomed", targets=targets, **SHORT_LOAD))
        harness.wait_for(
            "Sending",
            lambda: _load_condition(control_plane, namespace, "doomed", "Ready").get("reason") == "Sending",
            30,
        )
        ran = harness.run_job_pod(control_plane, namespace, "doomed-load", tmp_path)
    assert ran.returncode == 2, ran.stderr  # the load's own verdict: some batches never arrived
    harness.wait_for(
        "BatchesLost",
        lambda: _load_condition(control_plane, namespace, "doomed", "Ready").get("reason") == "BatchesLost",
        30,
        operator.log,
    )
    # every batch of the 3 s load was refused by one target, none by the collector
    refused = json.loads(ran.stdout)["batches"] * SHORT_LOAD["hosts"]
    succeeded = _load_condition(control_plane, namespace, "doomed", "Succeeded")
    assert (succeeded["status"], succeeded["reason"]) == ("False", "BatchesLost")
    assert succeeded["message"] == f"batches not delivered: {refused} of {refused} to {refusing}"
    warnings = [e for e in _events(control_plane, namespace, "doomed") if e["type"] == "Warning"]
    assert [(e["reason"], e["message"]) for e in warnings] == [("BatchesLost", succeeded["message"])]
    status = (harness.get(control_plane, namespace, "lsim", "doomed") or {}).get("status", {})
    assert status["failedBatches"] == {load_target.otlp_http_url: 0, refusing: refused}
    done = harness.get(control_plane, namespace, "lsim", "doomed")
    assert done is not None and done["status"]["pointsSent"] == otlp.accepted_points(load_target.telemetry_address) > 0


def test_a_load_job_that_completes_finishes_its_loadsim_with_what_it_delivered(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator: harness.Operator,
    load_target: local_components.LocalCollector,
    tmp_path: Path,
) -> None:
    targets = [{"endpoint": load_target.otlp_http_url}]
    harness.apply(control_plane, namespace, _loadsim("complete", targets=targets, **SHORT_LOAD))
    harness.wait_for(
        "Sending", lambda: _load_condition(control_plane, namespace, "complete", "Ready").get("reason") == "Sending", 30
    )
    started = harness.get(control_plane, namespace, "lsim", "complete")
    job = harness.get(control_plane, namespace, "job", "complete-load")
    assert started is not None and job is not None
    assert started["status"]["startedAt"] == job["status"]["startTime"]  # when the Job controller started it
    ran = harness.run_job_pod(control_plane, namespace, "complete-load", tmp_path)
    assert ran.returncode == 0, ran.stderr
    finished = harness.wait_for(
        "Succeeded",
        lambda: (c := _load_condition(control_plane, namespace, "complete", "Succeeded")).get("status") == "True" and c,
        30,
        operator.log,
    )
    assert finished["reason"] == "Finished"
    done = harness.get(control_plane, namespace, "lsim", "complete")
    assert done is not None and done["status"]["completedAt"] >= done["status"]["startedAt"]
    # what the collector itself counts as received, not only what the load says it sent
    assert done["status"]["pointsSent"] == otlp.accepted_points(load_target.telemetry_address) > 0
    assert done["status"]["failedBatches"] == {load_target.otlp_http_url: 0}


TOKEN = "s3cret-prometheus-token"  # noqa: S105 (the test's own)
VENDOR_KEY = "s3cret-vendor-key"


@pytest.fixture
def guarded_prometheus(prometheus: conftest.StartPrometheus) -> Iterator[tuple[str, list[str | None]]]:
    """A real Prometheus behind a proxy that refuses requests without the bearer TOKEN.

    Yields the proxy's URL and the Authorization header of every request it saw.
    """
    upstream = prometheus([]).url
    seen: list[str | None] = []

    class Guard(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.end_headers()
                return
            answer = httpx.get(upstream + self.path, timeout=10)
            self.send_response(answer.status_code)
            self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Guard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_secrets_reach_prometheus_and_the_collector_and_nothing_anyone_reads(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator: harness.Operator,
    guarded_prometheus: tuple[str, list[str | None]],
    tmp_path: Path,
) -> None:
    """A Prometheus token and an exporter's header, each from a Secret, through a whole experiment: the
    token goes to Prometheus and the header to the collector's environment, and neither value is in any
    log line, event, status, report or rendered object."""
    url, seen = guarded_prometheus
    control_plane.kubectl(
        "create", "secret", "generic", "prometheus-token", "-n", namespace, f"--from-literal=token={TOKEN}\n"
    )
    control_plane.kubectl(
        "create", "secret", "generic", "vendor-credentials", "-n", namespace, f"--from-literal=api-key={VENDOR_KEY}"
    )
    (vendored,) = [
        d for d in yaml.safe_load_all((EXAMPLES / "pipeline.yaml").read_text()) if d["kind"] == "PhoenixProcessPipeline"
    ]
    harness.apply(control_plane, namespace, vendored)
    source = {"url": url, "secretRef": {"name": "prometheus-token", "key": "token"}}
    analysis = {"prometheus": source}
    harness.apply(control_plane, namespace, harness.experiment("tokened", analysis=analysis, duration="15s"))
    # through the guard, Prometheus answers: it has no series of this experiment
    measured = harness.wait_condition(
        control_plane, namespace, "pexp", "tokened", "MeasurementAvailable", "False", 60, operator.log
    )
    assert measured["reason"] == "NoData", measured
    harness.wait_for(
        "a verdict", lambda: harness.phase(control_plane, namespace, "tokened") == "Completed", 90, operator.log
    )
    harness.wait_condition(
        control_plane, namespace, "ppp", vendored["metadata"]["name"], "Ready", "True", 60, operator.log
    )
    assert seen and all(header == f"Bearer {TOKEN}" for header in seen), seen
    # the header reaches the collector as an environment variable from the Secret, never as a literal
    workloads = json.loads(control_plane.kubectl("get", "deployments,daemonsets", "-n", namespace, "-o", "json").stdout)
    (collector,) = [w for w in workloads["items"] if w["metadata"]["name"].startswith(vendored["metadata"]["name"])]
    env = [e for c in collector["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])]
    assert any((e.get("valueFrom") or {}).get("secretKeyRef", {}).get("name") == "vendor-credentials" for e in env)
    report = tmp_path / "report.html"
    printed = subprocess.run(
        [sys.executable, "-m", "phoenix_operator", "report", "tokened", "-n", namespace, "--html", str(report)],
        capture_output=True, text=True, check=False, env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)},
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    readable = {
        "operator log": operator.log(),
        "report": printed.stdout + printed.stderr + report.read_text(),
        **{
            kind: control_plane.kubectl("get", kind, "-n", namespace, "-o", "json").stdout
            for kind in ("events", "pexp", "ppp", "lsim", "configmaps", "deployments", "daemonsets", "jobs", "pods")
        },
    }
    assert "Inconclusive" in readable["report"]
    leaks = [(where, secret) for where, text in readable.items() for secret in (TOKEN, VENDOR_KEY) if secret in text]
    assert not leaks, leaks


def test_all_namespaces_with_the_default_json_logs(control_plane: controlplane.ControlPlane, tmp_path: Path) -> None:
    """`operator run -A` reconciles in every namespace; every line it logs by default is a JSON object."""
    namespaces = [harness.namespace(control_plane) for _ in range(2)]
    with harness.running(control_plane, None, tmp_path, "--image", IMAGE, log_format=None) as op:
        for namespace in namespaces:
            harness.apply(control_plane, namespace, _pipeline("everywhere", template="baseline"))
        for namespace in namespaces:
            harness.wait_condition(control_plane, namespace, "ppp", "everywhere", "ConfigValid", "True", 30, op.log)
        lines = op.log().splitlines()
    assert lines
    records = [json.loads(line) for line in lines]
    assert all(isinstance(record, dict) and record.get("message") for record in records), lines[:5]


def _ready_since(plane: controlplane.ControlPlane, namespace: str, name: str) -> str | None:
    """When the pipeline last became Ready, while it is."""
    ready = harness.condition(harness.get(plane, namespace, "ppp", name), "Ready") or {}
    return ready.get("lastTransitionTime") if ready.get("status") == "True" else None


def _rolled(plane: controlplane.ControlPlane, namespace: str, name: str, hash_: str) -> str | None:
    """When the pipeline became Ready on the config `hash_`, once it has."""
    status = (harness.get(plane, namespace, "ppp", name) or {}).get("status") or {}
    return _ready_since(plane, namespace, name) if status.get("configHash") == hash_ else None


def _config_hash(plane: controlplane.ControlPlane, namespace: str, kind: str, name: str) -> str | None:
    found = harness.get(plane, namespace, kind, name)
    template = ((found or {}).get("spec") or {}).get("template") or {}
    hash_: str | None = ((template.get("metadata") or {}).get("annotations") or {}).get("phoenix.io/config-hash")
    return hash_


def test_a_daemonset_pipeline_is_ready_again_only_once_every_node_runs_the_new_config(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = _pipeline("node-agents", template="baseline", collector={"mode": "daemonset"})
    harness.apply(control_plane, namespace, manifest)
    child = reconcile_pipeline.child_name("node-agents")
    first = harness.wait_for("Ready", lambda: _ready_since(control_plane, namespace, "node-agents"), 30, operator.log)
    old_hash = _config_hash(control_plane, namespace, "daemonset", child)
    edited = copy.deepcopy(manifest)
    edited["spec"]["parameters"] = {"batchTimeout": "3s"}
    harness.apply(control_plane, namespace, edited)
    new_hash = harness.wait_for(
        "the new config",
        lambda: (h := _config_hash(control_plane, namespace, "daemonset", child)) != old_hash and h,
        30,
    )
    # the controller replaces one node's pod at a time; each new pod takes seconds to start
    again = harness.wait_for(
        "Ready on the new config", lambda: _rolled(control_plane, namespace, "node-agents", new_hash), 60, operator.log
    )
    assert again > first, "Ready went False while pods of the old config ran, and True after"
    daemonset = harness.get(control_plane, namespace, "daemonset", child)
    assert daemonset is not None
    assert daemonset["status"]["updatedNumberScheduled"] == daemonset["status"]["numberReady"] == controlplane.NODES


def test_an_autoscaled_collector_keeps_the_replicas_its_hpa_set(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = _pipeline("scaled", template="baseline", collector={"autoscaling": {"minReplicas": 2, "maxReplicas": 5}})
    harness.apply(control_plane, namespace, manifest)
    child = reconcile_pipeline.child_name("scaled")
    hpa = harness.wait_for("the HPA", lambda: harness.get(control_plane, namespace, "hpa", child), 30, operator.log)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": child}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    # what the HPA controller does: scale the Deployment through its scale subresource
    control_plane.kubectl("scale", "-n", namespace, "deployment", child, "--replicas=4")
    edited = copy.deepcopy(manifest)
    edited["spec"]["parameters"] = {"batchTimeout": "3s"}
    harness.apply(control_plane, namespace, edited)

    def rolled() -> dict[str, Any] | None:
        found = harness.get(control_plane, namespace, "ppp", "scaled")
        deployment = harness.get(control_plane, namespace, "deployment", child)
        hash_now = ((found or {}).get("status") or {}).get("configHash")
        annotations = (deployment or {}).get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        return deployment if hash_now and annotations.get("phoenix.io/config-hash") == hash_now else None

    deployment = harness.wait_for("the new config applied", rolled, 30, operator.log)
    assert deployment["spec"]["replicas"] == 4
    shown = control_plane.kubectl("get", "-n", namespace, "deployment", child, "-o", "json", "--show-managed-fields")
    managed = json.loads(shown.stdout)["metadata"]["managedFields"]
    owned_by_operator = [entry["fieldsV1"] for entry in managed if entry["manager"] == "phoenix-operator"]
    assert owned_by_operator and all("f:replicas" not in entry.get("f:spec", {}) for entry in owned_by_operator)


def _replica_sets(plane: controlplane.ControlPlane, namespace: str, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    listed = json.loads(plane.kubectl("get", "replicasets", "-n", namespace, "-o", "json").stdout)["items"]
    uid = deployment["metadata"]["uid"]
    return [rs for rs in listed if any(o["uid"] == uid for o in rs["metadata"].get("ownerReferences") or [])]


def test_a_spec_change_rolls_the_config_hash_through_a_new_replicaset(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = _pipeline("rolling", template="baseline", parameters={"batchTimeout": "1s"})
    harness.apply(control_plane, namespace, manifest)
    child = reconcile_pipeline.child_name("rolling")
    first = harness.wait_for("Ready", lambda: _ready_since(control_plane, namespace, "rolling"), 30, operator.log)
    old_hash = _config_hash(control_plane, namespace, "deployment", child)
    edited = copy.deepcopy(manifest)
    edited["spec"]["parameters"]["batchTimeout"] = "2s"
    harness.apply(control_plane, namespace, edited)
    new_hash = harness.wait_for(
        "a new config hash",
        lambda: (h := _config_hash(control_plane, namespace, "deployment", child)) != old_hash and h,
        30,
        operator.log,
    )
    config = harness.get(control_plane, namespace, "configmap", child)
    assert yaml.safe_load(config["data"]["config.yaml"])["processors"]["batch"]["timeout"] == "2s"  # type: ignore[index]
    # Ready went False until the new ReplicaSet's pod was ready, then True again
    again = harness.wait_for(
        "Ready on the new config", lambda: _rolled(control_plane, namespace, "rolling", new_hash), 60, operator.log
    )
    assert again > first
    pipeline = harness.get(control_plane, namespace, "ppp", "rolling")
    assert pipeline is not None and pipeline["status"]["observedGeneration"] == pipeline["metadata"]["generation"]
    deployment = harness.get(control_plane, namespace, "deployment", child)
    assert deployment is not None
    replica_sets = {
        rs["spec"]["template"]["metadata"]["annotations"]["phoenix.io/config-hash"]: rs
        for rs in _replica_sets(control_plane, namespace, deployment)
    }
    assert set(replica_sets) == {old_hash, new_hash}
    harness.wait_for(
        "the old ReplicaSet scaled down",
        lambda: (
            (harness.get(control_plane, namespace, "replicaset", replica_sets[old_hash]["metadata"]["name"]) or {})
            .get("status", {})
            .get("replicas")
            == 0
        ),
        30,
    )


def test_a_config_the_collector_rejects_never_replaces_the_running_one(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = _pipeline("vendor", template="baseline", collector={"replicas": 2})
    harness.apply(control_plane, namespace, manifest)
    child = reconcile_pipeline.child_name("vendor")
    harness.wait_for("Ready", lambda: _ready_since(control_plane, namespace, "vendor"), 30, operator.log)
    running_hash = _config_hash(control_plane, namespace, "deployment", child)
    running_config = (harness.get(control_plane, namespace, "configmap", child) or {}).get("data")
    assert running_config
    # the models accept this address; the collector's own validation does not
    edited = copy.deepcopy(manifest)
    edited["spec"]["exporters"] = [{"name": "vendor", "type": "otlp", "endpoint": "http://[::1"}]
    harness.apply(control_plane, namespace, edited)
    condition = harness.wait_condition(
        control_plane, namespace, "ppp", "vendor", "ConfigValid", "False", 30, operator.log
    )
    assert condition["reason"] == "CollectorRejected"
    assert condition["message"] == "exporters::otlp_grpc/vendor::clientconfig: address [::1: missing ']' in address"
    ready = harness.condition(harness.get(control_plane, namespace, "ppp", "vendor"), "Ready")
    assert ready is not None and ready["reason"] == "ConfigRejected"
    assert f"config {running_hash} keeps running" in ready["message"]

    def deployed() -> bool:
        config = harness.get(control_plane, namespace, "configmap", child) or {}
        return _config_hash(control_plane, namespace, "deployment", child) != running_hash or (
            config.get("data") != running_config
        )

    harness.never("the rejected config deployed", deployed)
    deployment = harness.get(control_plane, namespace, "deployment", child)
    assert deployment is not None and deployment["status"]["readyReplicas"] == 2
    assert len(_replica_sets(control_plane, namespace, deployment)) == 1
    events = [e for e in _events(control_plane, namespace, "vendor") if e["reason"] == "CollectorRejected"]
    assert [e["type"] for e in events] == ["Warning"]


def _parsed(pipeline_object: dict[str, Any]) -> kinds.PhoenixProcessPipeline:
    return kinds.PhoenixProcessPipeline.model_validate(
        {k: pipeline_object[k] for k in ("apiVersion", "kind", "metadata", "spec")}
    )


def _pipeline(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": name},
        "spec": spec,
    }


def _loadsim(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "LoadSim",
        "metadata": {"name": name},
        "spec": {"targets": [{"endpoint": "http://collector:4318"}], **spec},
    }


def _events(plane: controlplane.ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = json.loads(
        plane.kubectl(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}", "-o", "json"
        ).stdout
    )
    items: list[dict[str, Any]] = listed["items"]
    return items


def test_an_experiment_against_a_running_pipeline_shadows_it_and_leaves_it_alone(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    production = _example("pipeline.yaml")  # a DaemonSet with a vendor exporter and its API key
    production["metadata"]["name"] = "process-metrics"
    harness.apply(control_plane, namespace, production)
    harness.wait_condition(control_plane, namespace, "ppp", "process-metrics", "Ready", "True", 30, operator.log)
    before = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert before is not None
    harness.apply(control_plane, namespace, harness.experiment("lean", baseline={"pipelineRef": "process-metrics"}))
    shadow = harness.wait_for(
        "the shadow baseline", lambda: harness.get(control_plane, namespace, "ppp", "lean-baseline"), 30, operator.log
    )
    # the running pipeline's own spec, minus where its data goes, labelled as the experiment's baseline
    copied = {"exporters": [], "experiment_ref": "lean", "variant": "baseline"}
    assert _parsed(shadow).spec == _parsed(before).spec.model_copy(update=copied)
    # the experiment creates its children one after another
    candidate = harness.wait_for(
        "the candidate", lambda: harness.get(control_plane, namespace, "ppp", "lean-candidate"), 30, operator.log
    )
    assert _parsed(candidate).spec.collector == _parsed(before).spec.collector
    load = harness.wait_for("the load", lambda: harness.get(control_plane, namespace, "lsim", "lean-load"), 30)
    assert load["spec"]["targets"] == [{"pipelineRef": "lean-baseline"}, {"pipelineRef": "lean-candidate"}]
    # its ConfigMap renders no vendor exporter, so not one synthetic point can leave for the vendor
    config = harness.wait_for(
        "the shadow's config",
        lambda: harness.get(control_plane, namespace, "configmap", reconcile_pipeline.child_name("lean-baseline")),
        30,
        operator.log,
    )
    assert "vendor" not in config["data"]["config.yaml"]
    after = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert after is not None and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]


def test_a_mirrored_experiment_copies_the_running_pipelines_input_to_its_shadows_until_aborted(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    """In the test bed's cluster: the copy is a pipeline of its own in the running pipeline's ConfigMap,
    sending to the shadows' Services, rolled one pod at a time; aborting restores the config it had."""
    production = _example("production/pipeline.yaml")  # two replicas, with a vendor exporter
    harness.apply(control_plane, namespace, production)
    harness.wait_condition(control_plane, namespace, "ppp", "process-metrics", "Ready", "True", 30, operator.log)
    before = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert before is not None
    experiment_manifest = _example("production/experiment.yaml")
    name = experiment_manifest["metadata"]["name"]
    harness.apply(control_plane, namespace, experiment_manifest)
    assert harness.get(control_plane, namespace, "lsim", f"{name}-load") is None
    running = harness.wait_for(
        "the copy running",
        lambda: (
            (found := harness.get(control_plane, namespace, "pexp", name))
            and (found.get("status") or {}).get("phase") == "Running"
            and found
        ),
        60,
        operator.log,
    )
    assert running["status"]["loadSource"] == "mirror" and "loadSim" not in running["status"]
    mirrored = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert mirrored is not None and mirrored["status"]["mirrors"] == [name]
    assert mirrored["spec"] == before["spec"] and mirrored["metadata"]["generation"] == before["metadata"]["generation"]
    config = yaml.safe_load(
        harness.get(control_plane, namespace, "configmap", reconcile_pipeline.child_name("process-metrics"))["data"][  # type: ignore[index]
            "config.yaml"
        ]
    )
    pipelines = config["service"]["pipelines"]
    # the production pipeline itself is unchanged: the same processors, to Prometheus and the vendor
    assert pipelines["metrics"]["exporters"] == ["prometheus", "otlp_http/vendor"]
    copy = pipelines[f"metrics/mirror-{name}"]
    assert copy["processors"] == [f"filter/mirror-{name}", f"batch/mirror-{name}"]
    for variant in ("baseline", "candidate"):
        exporter = config["exporters"][f"otlp_http/mirror-{name}-{variant}"]
        assert exporter["endpoint"] == f"http://{name}-{variant}-collector.{namespace}.svc:4318"
        assert exporter["sending_queue"]["block_on_overflow"] is False
    workload = harness.get(control_plane, namespace, "deployment", reconcile_pipeline.child_name("process-metrics"))
    assert workload is not None
    assert workload["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    control_plane.kubectl("patch", "pexp", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"abort":true}}')
    harness.wait_for(
        "the config without the copy",
        lambda: (
            (found := harness.get(control_plane, namespace, "ppp", "process-metrics"))
            and found["status"].get("configHash") == before["status"]["configHash"]
            and not found["status"].get("mirrors")
            and (harness.condition(found, "Ready") or {}).get("status") == "True"
        ),
        60,
        operator.log,
    )
    after = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert after is not None
    assert not [k for k in after["metadata"].get("annotations", {}) if k.startswith("mirror.phoenix.io/")]
    assert (
        _config_hash(control_plane, namespace, "deployment", reconcile_pipeline.child_name("process-metrics"))
        == (before["status"]["configHash"])
    )


def test_an_experiment_against_a_missing_pipeline_fails_at_once_and_creates_nothing(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    harness.apply(control_plane, namespace, harness.experiment("orphan", baseline={"pipelineRef": "nowhere"}))
    failed = harness.wait_condition(control_plane, namespace, "pexp", "orphan", "Succeeded", "False", 30, operator.log)
    assert failed["reason"] == "BaselineNotFound"
    assert failed["message"] == f"baseline.pipelineRef: pipeline nowhere in namespace {namespace} does not exist"
    for kind, name in (("ppp", "orphan-baseline"), ("ppp", "orphan-candidate"), ("lsim", "orphan-load")):
        assert harness.get(control_plane, namespace, kind, name) is None


def test_an_experiment_creates_its_children_runs_and_fails_when_prometheus_stays_down(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    harness.apply(control_plane, namespace, harness.experiment("down"))
    harness.wait_for(
        "Initializing", lambda: harness.phase(control_plane, namespace, "down") == "Initializing", 30, operator.log
    )
    experiment = harness.get(control_plane, namespace, "pexp", "down")
    assert experiment is not None
    for kind, name in (("ppp", "down-baseline"), ("ppp", "down-candidate"), ("lsim", "down-load")):
        child = harness.wait_for(
            f"{kind}/{name}", lambda k=kind, n=name: harness.get(control_plane, namespace, k, n), 30, operator.log
        )
        assert child["metadata"]["ownerReferences"][0]["uid"] == experiment["metadata"]["uid"]
    harness.wait_for(
        "Running", lambda: harness.phase(control_plane, namespace, "down") in ("Running", "Failed"), 60, operator.log
    )
    job = harness.wait_for(
        "the LoadSim Job", lambda: harness.get(control_plane, namespace, "job", "down-load-load"), 30, operator.log
    )
    # the test bed's pods start within seconds, so order is shown by timestamps, not by watching for a gap
    for variant in ("baseline", "candidate"):
        ready = harness.condition(harness.get(control_plane, namespace, "ppp", f"down-{variant}"), "Ready")
        assert ready is not None and ready["status"] == "True"
        assert ready["lastTransitionTime"] <= job["metadata"]["creationTimestamp"], f"load Job before {variant} Ready"
    container = _container(job)
    assert container["image"] == IMAGE
    assert container["command"][:3] == ["phoenix", "loadsim", "run"]
    targets = [container["command"][i + 1] for i, arg in enumerate(container["command"]) if arg == "--target"]
    assert targets == [f"http://down-{v}-collector.{namespace}.svc:4318" for v in ("baseline", "candidate")]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    unavailable = harness.wait_condition(
        control_plane, namespace, "pexp", "down", "MeasurementAvailable", "False", 30, operator.log
    )
    assert unavailable["reason"] == "PrometheusUnreachable"
    assert "127.0.0.1:9" in unavailable["message"]
    assert "verdict" not in harness.get(control_plane, namespace, "pexp", "down")["status"]  # type: ignore[index]
    harness.wait_for("Failed", lambda: harness.phase(control_plane, namespace, "down") == "Failed", 30, operator.log)
    failed = harness.get(control_plane, namespace, "pexp", "down")
    succeeded = harness.condition(failed, "Succeeded")
    assert succeeded is not None and (succeeded["status"], succeeded["reason"]) == ("False", "PrometheusUnreachable")
    reasons = {e["reason"] for e in _events(control_plane, namespace, "down")}
    assert {"Initializing", "Running", "PrometheusUnreachable"} <= reasons
    harness.wait_for(
        "the load to be torn down", lambda: harness.get(control_plane, namespace, "lsim", "down-load") is None, 30
    )


def test_measuring_resumes_when_prometheus_comes_back(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path
) -> None:
    # bound but not listening: connections are refused, and no other process can take the port meanwhile
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    port = held.getsockname()[1]
    experiment = harness.experiment("back", analysis={"prometheus": {"url": f"http://127.0.0.1:{port}"}})
    harness.apply(control_plane, namespace, experiment)
    limit = ("--prometheus-timeout", "3m")
    with (
        held,
        harness.running(control_plane, namespace, tmp_path, "--image", IMAGE, "--measure-step", "1s", *limit) as op,
    ):
        down = harness.wait_condition(
            control_plane, namespace, "pexp", "back", "MeasurementAvailable", "False", 60, op.log
        )
        assert down["reason"] == "PrometheusUnreachable"
        held.close()
        server = local_components.LocalPrometheus([], tmp_path / "prometheus", port=port)
        server.start()
        try:
            back = harness.wait_for(
                "Prometheus to be reachable again",
                lambda: (
                    (
                        c := harness.condition(
                            harness.get(control_plane, namespace, "pexp", "back"), "MeasurementAvailable"
                        )
                    )
                    and c["reason"] != "PrometheusUnreachable"
                    and c
                ),
                60,
                op.log,
            )
        finally:
            server.stop()
        # it answers now, and has no series of this experiment: measuring goes on, no failure
        assert back["reason"] == "NoData", back
        assert harness.phase(control_plane, namespace, "back") == "Running"


def test_invalid_experiments_are_reported_and_the_rest_keep_being_served(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    # rules the CRD schema cannot state, so the API server stores such objects (the
    # cross-field rules it can state refuse the rest at apply: test_control_plane)
    load = {"profile": "realistic", "hosts": 2, "processesPerHost": 5, "intervalSeconds": 1, "duration": "0s"}
    invalid = {
        "load-of-no-length": {"load": {"loadSim": load}},
        "foreign-parameter": {"candidate": {"template": "candidate", "parameters": {"seriesBudget": 10}}},
        "unparsable-query": {"analysis": {"criticalQueries": [{"name": "cpu-total", "query": "sum(rate(x[1m])"}]}},
    }
    for name, spec in invalid.items():
        harness.apply(control_plane, namespace, harness.experiment(name, **spec))
    harness.apply(control_plane, namespace, harness.experiment("healthy"))
    harness.wait_for(
        "the healthy one to start",
        lambda: harness.phase(control_plane, namespace, "healthy") == "Initializing",
        30,
        operator.log,
    )
    for name in invalid:
        condition = harness.wait_for(
            f"{name} to be reported",
            lambda n=name: harness.condition(harness.get(control_plane, namespace, "pexp", n), "SpecAccepted"),
            30,
            operator.log,
        )
        assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
        harness.never(
            f"a pipeline of the invalid {name}",
            lambda n=name: harness.get(control_plane, namespace, "ppp", f"{n}-baseline"),
        )
        assert any(
            e["type"] == "Warning" and e["reason"] == "InvalidSpec" for e in _events(control_plane, namespace, name)
        )
    messages = {
        n: harness.condition(harness.get(control_plane, namespace, "pexp", n), "SpecAccepted")["message"]
        for n in invalid
    }  # type: ignore[index]
    assert "spec.load.loadSim: duration must be positive" in messages["load-of-no-length"]
    assert "spec.candidate.parameters.seriesBudget: unknown field" in messages["foreign-parameter"]
    assert "critical query cpu-total is not PromQL: unclosed left parenthesis" in messages["unparsable-query"]


def test_edits_to_a_started_experiment_are_refused_with_a_condition(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = harness.experiment("frozen")
    harness.apply(control_plane, namespace, manifest)
    harness.wait_for(
        "Initializing", lambda: harness.phase(control_plane, namespace, "frozen") == "Initializing", 30, operator.log
    )
    edited = copy.deepcopy(manifest)
    edited["spec"]["duration"] = "9m"
    harness.apply(control_plane, namespace, edited)
    refused = harness.wait_condition(
        control_plane, namespace, "pexp", "frozen", "SpecAccepted", "False", 30, operator.log
    )
    assert refused["reason"] == "ImmutableWhileRunning"
    assert "spec.duration" in refused["message"]
    aborted = copy.deepcopy(manifest)
    aborted["spec"]["abort"] = True
    harness.apply(control_plane, namespace, aborted)
    harness.wait_for(
        "Aborted", lambda: harness.phase(control_plane, namespace, "frozen") == "Aborted", 30, operator.log
    )
    harness.wait_for(
        "the children to be removed",
        lambda: harness.get(control_plane, namespace, "ppp", "frozen-candidate") is None,
        30,
    )


def _experiment_reconciles(operator: harness.Operator) -> float:
    prefix = 'phoenix_reconciles_total{kind="PhoenixExperiment",outcome="success"} '
    line = next((line for line in operator.metrics().splitlines() if line.startswith(prefix)), prefix + "0")
    return float(line.removeprefix(prefix))


def test_a_finished_experiment_costs_nothing_and_its_ttl_deletes_it(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    kept, expiring = (
        harness.experiment("kept", abort=True),
        harness.experiment("expiring", abort=True, ttlSecondsAfterFinished=3),
    )
    for manifest in (kept, expiring):
        harness.apply(control_plane, namespace, manifest)
    harness.wait_for("Aborted", lambda: harness.phase(control_plane, namespace, "kept") == "Aborted", 30, operator.log)
    # the only experiment left is finished: nothing steps it any more
    harness.wait_for(
        "the one with a ttl to be deleted",
        lambda: harness.get(control_plane, namespace, "pexp", "expiring") is None,
        30,
        operator.log,
    )
    before = _experiment_reconciles(operator)
    harness.never(
        "a reconcile of a finished experiment", lambda: _experiment_reconciles(operator) > before, seconds=3 * 2.0 + 1
    )
    assert harness.phase(control_plane, namespace, "kept") == "Aborted"  # without a ttl, kept


def test_the_operator_serves_its_metrics(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    harness.apply(control_plane, namespace, harness.experiment("counted"))
    harness.wait_for(
        "Initializing", lambda: harness.phase(control_plane, namespace, "counted") == "Initializing", 30, operator.log
    )
    text = harness.wait_for(
        "metrics",
        lambda: (t := operator.metrics()) and 'phoenix_experiments{phase="Initializing"} 1.0' in t and t,
        30,
        operator.log,
    )
    assert 'phoenix_reconciles_total{kind="PhoenixExperiment",outcome="success"}' in text
    assert "phoenix_reconcile_duration_seconds_bucket" in text


def _children(plane: controlplane.ControlPlane, namespace: str, name: str) -> dict[str, list[str]]:
    """uids of everything carrying the experiment's label, or named after its load."""
    found: dict[str, list[str]] = {}
    for kind in ("ppp", "lsim"):
        listed = json.loads(
            plane.kubectl("get", kind, "-n", namespace, "-l", f"phoenix.io/experiment={name}", "-o", "json").stdout
        )
        found[kind] = sorted(item["metadata"]["uid"] for item in listed["items"])
    jobs = json.loads(plane.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
    found["job"] = sorted(j["metadata"]["uid"] for j in jobs)
    return found


def _running_in_metrics(exposition: str, namespace: str, name: str) -> bool:
    labels = (f'namespace="{namespace}"', f'experiment="{name}"', 'phase="Running"')
    return any(
        line.startswith("phoenix_experiment_phase{")
        and all(label in line for label in labels)
        and line.endswith(" 1.0")
        for line in exposition.splitlines()
    )


def test_a_killed_operator_resumes_every_phase_without_duplicates(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path
) -> None:
    flags = ("--image", IMAGE, "--prometheus-url", "http://127.0.0.1:9", "--measure-step", "1s")
    harness.apply(control_plane, namespace, harness.experiment("restart"))
    with harness.running(control_plane, namespace, tmp_path, *flags) as first:
        harness.wait_for(
            "Initializing", lambda: harness.phase(control_plane, namespace, "restart") == "Initializing", 30, first.log
        )
        first.kill()
    with harness.running(control_plane, namespace, tmp_path, *flags) as second:
        harness.wait_for(
            "Running", lambda: harness.phase(control_plane, namespace, "restart") == "Running", 60, second.log
        )
        running = harness.get(control_plane, namespace, "pexp", "restart")
        children = _children(control_plane, namespace, "restart")
        second.kill()
    with harness.running(control_plane, namespace, tmp_path, *flags) as third:
        # the condition the second operator wrote proves nothing; the third's own metrics show it stepped the experiment
        harness.wait_for(
            "the restarted operator to step the Running experiment",
            lambda: _running_in_metrics(third.metrics(), namespace, "restart"),
            30,
            third.log,
        )
        measured = harness.condition(harness.get(control_plane, namespace, "pexp", "restart"), "MeasurementAvailable")
        assert measured is not None and measured["reason"] == "PrometheusUnreachable"
        resumed = harness.get(control_plane, namespace, "pexp", "restart")
        assert resumed is not None and running is not None
        assert resumed["status"]["phase"] == "Running"
        assert resumed["status"]["startedAt"] == running["status"]["startedAt"]
        assert _children(control_plane, namespace, "restart") == children
        assert [len(children[k]) for k in ("ppp", "lsim", "job")] == [2, 1, 1]
        assert "Traceback" not in third.log()


def test_concurrent_edits_during_reconciles_are_retried_not_fatal(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = _pipeline("contended", template="baseline")
    harness.apply(control_plane, namespace, manifest)
    child = reconcile_pipeline.child_name("contended")
    harness.wait_for(
        "the Deployment", lambda: harness.get(control_plane, namespace, "deployment", child), 30, operator.log
    )
    for i in range(15):
        # another writer keeps changing the pipeline, its Deployment and the Deployment's status
        control_plane.kubectl("label", "-n", namespace, "ppp", "contended", f"edit={i}", "--overwrite")
        control_plane.kubectl(
            "annotate", "-n", namespace, "deployment", child, f"other-controller/touch={i}", "--overwrite"
        )
        edited = copy.deepcopy(manifest)
        edited["spec"]["parameters"] = {"batchTimeout": f"{i % 3 + 1}s"}
        harness.apply(control_plane, namespace, edited)
    pipeline = harness.wait_for(
        "Ready with the last config",
        lambda: (
            (p := harness.get(control_plane, namespace, "ppp", "contended"))
            and (harness.condition(p, "Ready") or {}).get("status") == "True"
            and p["status"].get("observedGeneration") == p["metadata"]["generation"]
            and p
        ),
        60,
        operator.log,
    )
    deployment = harness.get(control_plane, namespace, "deployment", child)
    assert deployment is not None
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["phoenix.io/config-hash"] == pipeline["status"]["configHash"]
    assert deployment["metadata"]["annotations"]["other-controller/touch"] == "14"  # the other writer's field survives
    assert operator.process.running()


def test_invalid_pipelines_and_loads_deploy_nothing_and_say_why(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    pipelines = {
        "foreign-parameter": {"template": "baseline", "parameters": {"seriesBudget": 100}},
        "two-vendors": {
            "template": "baseline",
            "exporters": [
                {"name": "v", "type": "otlphttp", "endpoint": "http://a.example"},
                {"name": "v", "type": "otlp", "endpoint": "http://b.example"},
            ],
        },
    }
    for name, spec in pipelines.items():
        harness.apply(control_plane, namespace, _pipeline(name, **spec))
    for name, expected in (("foreign-parameter", "seriesBudget: unknown field"), ("two-vendors", "repeated: v")):
        condition = harness.wait_condition(
            control_plane, namespace, "ppp", name, "ConfigValid", "False", 30, operator.log
        )
        assert condition["reason"] == "InvalidSpec" and expected in condition["message"]
        harness.never(
            f"a Deployment of the invalid {name}",
            lambda n=name: harness.get(control_plane, namespace, "deployment", reconcile_pipeline.child_name(n)),
        )
    harness.apply(control_plane, namespace, _loadsim("zero-length", duration="0s"))
    condition = harness.wait_condition(
        control_plane, namespace, "lsim", "zero-length", "Ready", "False", 30, operator.log
    )
    assert "duration must be positive" in condition["message"]
    harness.never(
        "a Job of the invalid LoadSim", lambda: harness.get(control_plane, namespace, "job", "zero-length-load")
    )


def test_an_adaptive_pipeline_keeps_its_config_and_says_why_while_prometheus_is_unreachable(
    control_plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator
) -> None:
    manifest = _example("adaptive/pipeline.yaml")
    name = manifest["metadata"]["name"]
    harness.apply(control_plane, namespace, manifest)

    def budget_condition() -> dict[str, Any] | None:
        found = harness.get(control_plane, namespace, "ppp", name)
        return harness.condition(found, "BudgetMet") if found else None

    met = harness.wait_for("the loop's first turn", budget_condition, 30, operator.log)
    assert (met["status"], met["reason"]) == ("Unknown", "NotMeasured"), met
    found = harness.get(control_plane, namespace, "ppp", name)
    assert found is not None
    adaptive = found["status"]["adaptive"]
    assert (adaptive["seriesBudget"], adaptive["k"], adaptive.get("keepExecutables", [])) == (20000, 0, [])
    # nothing measured, nothing changed: the ConfigMap holds the config rendered before any choice
    config = harness.get(control_plane, namespace, "configmap", reconcile_pipeline.child_name(name))
    assert config is not None and 'set(attributes["process.executable.name"], "other")' in config["data"]["config.yaml"]
    table = control_plane.kubectl("get", "ppp", name, "-n", namespace).stdout.splitlines()
    # an unmeasured SERIES column is blank, so the columns are read where their headers start
    budget, k = table[0].index("BUDGET"), table[0].index(" K ") + 1
    assert (table[1][budget:].split()[0], table[1][k:].split()[0]) == ("20000", "0"), table
    assert f'phoenix_pipeline_series_budget{{namespace="{namespace}",pipeline="{name}"}} 20000.0' in operator.metrics()
