"""The real API server serves Phoenix's CRDs and accepts every example."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoenix_operator.models import manifests
from tests.harness import controlplane

pytestmark = pytest.mark.integration
EXAMPLES = sorted((controlplane.REPO / "examples").rglob("*.yaml"))


def test_reports_the_pinned_kubernetes_version(control_plane: controlplane.ControlPlane) -> None:
    versions = (controlplane.REPO / "tools" / "versions.env").read_text()
    pinned = next(line.split("=")[1] for line in versions.splitlines() if line.startswith("KUBERNETES_VERSION="))
    server = json.loads(control_plane.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert server["gitVersion"] == f"v{pinned}"


def test_kubectl_lists_experiments_by_short_name(control_plane: controlplane.ControlPlane) -> None:
    namespace = f"list-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", namespace)
    result = control_plane.kubectl("get", "pexp", "-n", namespace, "-o", "json")
    assert json.loads(result.stdout)["items"] == []
    resources = control_plane.kubectl("api-resources", "--api-group=phoenix.io", "-o", "name").stdout.split()
    assert sorted(resources) == [
        "loadsims.phoenix.io",
        "phoenixexperiments.phoenix.io",
        "phoenixprocesspipelines.phoenix.io",
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(controlplane.REPO)))
def test_every_example_is_accepted_by_its_crd(control_plane: controlplane.ControlPlane, example: Path) -> None:
    namespace = "ex-" + example.stem.replace("_", "-")[:40]
    control_plane.kubectl("create", "namespace", namespace, check=False)
    result = control_plane.kubectl(
        "apply",
        "--server-side",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        str(example),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stored = json.loads(control_plane.kubectl("get", "-n", namespace, "-f", str(example), "-o", "json").stdout)
    # a file with more than one object (an exporter's Secret beside its pipeline) comes back as a List
    phoenix = [o for o in stored.get("items", [stored]) if o["apiVersion"].startswith("phoenix.io/")]
    assert phoenix and all(o["spec"] for o in phoenix), "the API server pruned the whole spec"


def test_crd_schema_rejects_what_the_models_reject(
    control_plane: controlplane.ControlPlane,
) -> None:
    bad = """apiVersion: phoenix.io/v1alpha1
kind: LoadSim
metadata: {name: bad-load}
spec:
  hosts: 0
  duration: -5m
  targets: [{endpoint: "http://127.0.0.1:4318"}]
"""
    result = control_plane.kubectl("apply", "-f", "-", check=False, input_text=bad)
    assert result.returncode != 0
    assert "spec.hosts" in result.stderr
    assert "spec.duration" in result.stderr


def test_printer_columns_answer_the_first_question(
    control_plane: controlplane.ControlPlane,
) -> None:
    control_plane.kubectl(
        "apply",
        "-n",
        "default",
        "-f",
        str(controlplane.REPO / "examples/quickstart/experiment.yaml"),
    )
    header = control_plane.kubectl("get", "pexp", "-n", "default").stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "DECISION", "REDUCTION", "SAVINGS/MO", "AGE"]


def test_crds_pass_client_and_server_dry_run(control_plane: controlplane.ControlPlane) -> None:
    crds = str(controlplane.REPO / "crds")
    for mode in ("client", "server"):
        result = control_plane.kubectl("apply", f"--dry-run={mode}", "-k", crds, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("customresourcedefinition.apiextensions.k8s.io/") == 3


def _quickstart_with(**spec: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((controlplane.REPO / "examples/quickstart/experiment.yaml").read_text())
    manifest["spec"].update(spec)
    return manifest


def _pipeline_with(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "ruled"},
        "spec": {"template": "adaptive", "parameters": {"seriesBudget": 1000}, **spec},
    }


CROSS_FIELD = {
    "warmup-too-long": (_quickstart_with(warmup="10m", duration="5m"), "warmup must be shorter than duration"),
    "interval-too-long": (
        _quickstart_with(analysisInterval="6m", duration="5m"),
        "analysisInterval must be positive and no longer than duration",
    ),
    "drift-interval-too-long": (
        _quickstart_with(driftWatch={"duration": "1h", "interval": "2h"}),
        "driftWatch.interval must not exceed its duration",
    ),
    "auto-without-target": (_quickstart_with(promotion={"policy": "auto"}), "policy auto needs targetPipelineRef"),
    "mirror-without-pipeline-ref": (
        # its own name: another test's quickstart in the namespace owns the load it would change
        {**_quickstart_with(load={"source": "mirror"}), "metadata": {"name": "mirror-without-ref"}},
        "load.source mirror copies the input of the baseline's pipelineRef, so it needs one",
    ),
    "repeated-query": (
        _quickstart_with(analysis={"criticalQueries": [{"name": "q", "query": "up"}, {"name": "q", "query": "up"}]}),
        'duplicate entries for key [name="q"]',
    ),
    "client-cert-without-key": (
        _quickstart_with(
            analysis={"prometheus": {"url": "https://p:9090", "tls": {"cert": {"name": "c", "key": "tls.crt"}}}}
        ),
        "cert and key go together",
    ),
    "tls-on-http": (
        _quickstart_with(analysis={"prometheus": {"url": "http://p:9090", "tls": {"ca": {"name": "c", "key": "ca"}}}}),
        "tls needs an https:// url",
    ),
    "token-and-password": (
        _quickstart_with(
            analysis={
                "prometheus": {
                    "url": "https://p:9090",
                    "secretRef": {"name": "t", "key": "token"},
                    "basicAuth": {"username": {"name": "b", "key": "u"}, "password": {"name": "b", "key": "p"}},
                }
            }
        ),
        "give a bearer token (secretRef) or basicAuth, not both",
    ),
    "k-range": (_pipeline_with(parameters={"seriesBudget": 1000, "minK": 9, "maxK": 3}), "minK must not exceed maxK"),
    "autoscaled-daemonset": (
        _pipeline_with(collector={"mode": "daemonset", "autoscaling": {"maxReplicas": 3}}),
        "autoscaling needs mode deployment",
    ),
    "replica-range": (
        _pipeline_with(collector={"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}),
        "minReplicas must not exceed maxReplicas",
    ),
    "exporter-without-endpoint": (
        _pipeline_with(exporters=[{"name": "vendor", "type": "otlphttp"}]),
        "endpoint is required, except for type newrelic",
    ),
    "newrelic-without-key": (
        _pipeline_with(exporters=[{"name": "nr", "type": "newrelic"}]),
        "type newrelic needs an api-key header from a Secret",
    ),
}


@pytest.mark.parametrize("case", sorted(CROSS_FIELD))
def test_the_api_server_refuses_what_the_cross_field_rules_forbid(
    control_plane: controlplane.ControlPlane, case: str
) -> None:
    """The models' cross-field rules, as CEL in the CRDs: admission says what is wrong at once."""
    manifest, message = CROSS_FIELD[case]
    result = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "-n", "default", "-f", "-",
        check=False, input_text=json.dumps(manifest),
    )  # fmt: skip
    assert result.returncode != 0, f"{case} was accepted"
    assert message in result.stderr, result.stderr
    # and the models, which the operator and `phoenix validate` use, say the same
    with pytest.raises(manifests.InvalidManifest):
        manifests.parse_object(manifest)
