"""The install manifests: they build, the API server takes them, and the
operator works with exactly the permissions its role grants."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = pytest.mark.integration
KUSTOMIZE = controlplane.REPO / "kustomize"


def _build(plane: controlplane.ControlPlane, overlay: str) -> list[dict[str, Any]]:
    built = plane.kubectl("kustomize", str(KUSTOMIZE / overlay)).stdout
    return [doc for doc in yaml.safe_load_all(built) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_the_operator_role_names_every_verb_and_resource_without_wildcards(
    control_plane: controlplane.ControlPlane,
) -> None:
    role = _one(_build(control_plane, "base"), "ClusterRole", "phoenix-operator")
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        assert not {"update", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_the_manager_runs_restricted_with_probes_and_resources(control_plane: controlplane.ControlPlane) -> None:
    docs = _build(control_plane, "overlays/dev")
    pod = _one(docs, "Deployment", "phoenix-operator")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and security["runAsNonRoot"]
    assert security["readOnlyRootFilesystem"] and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and security["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" and container["readinessProbe"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["args"][:2] == ["operator", "run"] and "--log-format=plain" in container["args"]
    production = _one(_build(control_plane, "overlays/production"), "Deployment", "phoenix-operator")
    assert production["spec"]["replicas"] == 2
    assert "--peering=phoenix" in production["spec"]["template"]["spec"]["containers"][0]["args"]
    # the API server takes the whole dev install (nothing runs: there is no kubelet)
    control_plane.kubectl("apply", "--server-side", "-k", str(KUSTOMIZE / "overlays/dev"))
    deployment = harness.get(control_plane, "phoenix-system", "deployment", "phoenix-operator")
    assert deployment is not None and deployment["spec"]["template"]["spec"]["serviceAccountName"] == "phoenix-operator"


def test_the_operator_works_with_only_its_role(control_plane: controlplane.ControlPlane, tmp_path: Path) -> None:
    control_plane.kubectl("create", "namespace", "phoenix-system", check=False)
    control_plane.kubectl("apply", "--server-side", "-n", "phoenix-system", "-k", str(KUSTOMIZE / "base" / "rbac"))
    token = control_plane.kubectl("create", "token", "phoenix-operator", "-n", "phoenix-system").stdout.strip()
    kubeconfig = control_plane.token_kubeconfig(tmp_path / "operator.kubeconfig", token)
    namespace = harness.namespace(control_plane)
    experiment = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixExperiment",
        "metadata": {"name": "scoped"},
        "spec": {
            "baseline": {"template": "baseline"},
            "candidate": {"template": "candidate"},
            "warmup": "1s",
            "analysisInterval": "1s",
            "analysis": {"prometheus": {"url": "http://127.0.0.1:9", "secretRef": {"name": "prom", "key": "token"}}},
        },
    }
    control_plane.kubectl("create", "secret", "generic", "prom", "-n", namespace, "--from-literal=token=t0ken")
    harness.apply(control_plane, namespace, experiment)
    with harness.running(
        control_plane, namespace, tmp_path, "--image", "img", "--measure-step", "1s", kubeconfig=kubeconfig
    ) as operator:
        for name in ("scoped-baseline", "scoped-candidate"):
            child = f"{name}-collector"
            harness.wait_for(
                child, lambda c=child: harness.get(control_plane, namespace, "deployment", c), 30, operator.log
            )
            status = {"status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}
            control_plane.kubectl(
                "patch",
                "-n",
                namespace,
                "deployment",
                child,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps(status),
            )
        harness.wait_for(
            "the Job", lambda: harness.get(control_plane, namespace, "job", "scoped-load-load"), 30, operator.log
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        started = {"status": {"startTime": now, "active": 1}}
        control_plane.kubectl(
            "patch",
            "-n",
            namespace,
            "job",
            "scoped-load-load",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(started),
        )
        # measuring reads the Secret, then fails to reach Prometheus: every step ran with the role alone
        condition = harness.wait_condition(
            control_plane, namespace, "pexp", "scoped", "MeasurementAvailable", "False", 60, operator.log
        )
        assert "unreachable" in condition["message"]
        log = operator.log()
        assert "Forbidden" not in log and " 403" not in log, log
