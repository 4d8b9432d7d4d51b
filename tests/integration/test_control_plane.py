"""The real API server serves Phoenix's CRDs and accepts every example."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

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
    assert stored["spec"], "the API server pruned the whole spec"


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
