"""The install manifests: they build, the API server takes them, and the
operator works with exactly the permissions its role grants."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoenix_operator import binaries
from phoenix_operator.models import kinds
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from tests import readme
from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = pytest.mark.integration
KUSTOMIZE = controlplane.REPO / "kustomize"
TOKEN_ACCESS = controlplane.REPO / "docs" / "prometheus-token-access.yaml"
OPERATOR = "system:serviceaccount:phoenix-system:phoenix-operator"
# resource -> verbs the operator needs; kubectl auth can-i --list must show exactly these
OPERATOR_NEEDS = {
    "phoenixexperiments.phoenix.io": "create delete get list patch watch",
    "phoenixprocesspipelines.phoenix.io": "create delete get list patch watch",
    "loadsims.phoenix.io": "create delete get list patch watch",
    "phoenixexperiments.phoenix.io/status": "get patch",
    "phoenixprocesspipelines.phoenix.io/status": "get patch",
    "loadsims.phoenix.io/status": "get patch",
    "configmaps": "create get patch",
    "services": "create get patch",
    "deployments.apps": "create get list patch watch",
    "daemonsets.apps": "create get list patch watch",
    "horizontalpodautoscalers.autoscaling": "create get patch",
    "poddisruptionbudgets.policy": "create get patch",
    "jobs.batch": "create get list patch watch",
    "pods": "list",
    "endpointslices.discovery.k8s.io": "list watch",
    "events": "create patch",
    "customresourcedefinitions.apiextensions.k8s.io": "list watch",
    "namespaces": "list watch",
    "clusterkopfpeerings.kopf.dev": "get list patch watch",
    "kopfpeerings.kopf.dev": "get list patch watch",
    "tokenreviews.authentication.k8s.io": "create",
    "subjectaccessreviews.authorization.k8s.io": "create",
}
# every authenticated user may ask what it may do
SELF_REVIEWS = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}


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
    # one image setting: no --image, the operator reads its own pod's; the Prometheus is the overlay's setting
    assert not [a for a in container["args"] if a.startswith(("--image", "--prometheus-url"))]
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    setting = env["PHOENIX_PROMETHEUS_URL"]["configMapKeyRef"]
    settings = _one(docs, "ConfigMap", setting["name"])
    assert settings["data"]["prometheusUrl"] == "http://prometheus-operated.monitoring.svc:9090"
    base = _one(_build(control_plane, "base"), "Deployment", "phoenix-operator")
    assert not [d for d in _build(control_plane, "base") if d["kind"] == "ConfigMap"], "no Prometheus in the base"
    assert base["spec"]["template"]["spec"]["containers"][0]["image"] == "phoenix-operator:0.1.0"
    production = _one(_build(control_plane, "overlays/production"), "Deployment", "phoenix-operator")
    assert production["spec"]["replicas"] == 2
    assert "--peering=phoenix" in production["spec"]["template"]["spec"]["containers"][0]["args"]
    # the API server takes the whole dev install (nothing runs: there is no kubelet)
    control_plane.kubectl("apply", "--server-side", "-k", str(KUSTOMIZE / "overlays/dev"))
    deployment = harness.get(control_plane, "phoenix-system", "deployment", "phoenix-operator")
    assert deployment is not None and deployment["spec"]["template"]["spec"]["serviceAccountName"] == "phoenix-operator"


def test_the_operator_works_with_only_its_role(control_plane: controlplane.ControlPlane, tmp_path: Path) -> None:
    kubeconfig = harness.operator_kubeconfig(control_plane, tmp_path / "operator.kubeconfig")
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
            "analysis": {
                "prometheus": {"url": "http://127.0.0.1:9", "secretRef": {"name": "prometheus-token", "key": "token"}}
            },
        },
    }
    control_plane.kubectl("create", "secret", "generic", "prometheus-token", "-n", namespace, "--from-literal=token=t")
    control_plane.kubectl("apply", "-n", namespace, "-f", str(TOKEN_ACCESS))
    harness.apply(control_plane, namespace, experiment)
    with harness.running(
        control_plane, namespace, tmp_path, "--image", "img", "--measure-step", "1s", kubeconfig=kubeconfig
    ) as operator:
        # measuring reads the Secret, then fails to reach Prometheus: every step ran with the role alone
        condition = harness.wait_condition(
            control_plane, namespace, "pexp", "scoped", "MeasurementAvailable", "False", 60, operator.log
        )
        assert "unreachable" in condition["message"]
        log = operator.log()
        assert "Forbidden" not in log and " 403" not in log, log


def test_load_jobs_run_the_image_the_operator_reads_from_its_own_pod(
    control_plane: controlplane.ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set once, by kustomize's `images:` on the operator's Deployment: no --image, and only the operator's role."""
    kubeconfig = harness.operator_kubeconfig(control_plane, tmp_path / "operator.kubeconfig")
    own = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "phoenix-operator-own", "namespace": "phoenix-system"},
        "spec": {
            # the namespace enforces the restricted Pod Security Standard
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "operator",
                    "image": "registry.example/team/phoenix-operator:1.2.3",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }
    control_plane.kubectl("apply", "-f", "-", input_text=json.dumps(own))
    monkeypatch.setenv("POD_NAME", "phoenix-operator-own")
    monkeypatch.setenv("POD_NAMESPACE", "phoenix-system")
    namespace = harness.namespace(control_plane)
    load = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "LoadSim",
        "metadata": {"name": "imaged"},
        "spec": {"targets": [{"endpoint": "http://collector:4318"}], "duration": "3s"},
    }
    harness.apply(control_plane, namespace, load)
    with harness.running(control_plane, namespace, tmp_path, "--measure-step", "1s", kubeconfig=kubeconfig) as operator:
        job = harness.wait_for(
            "the load's Job", lambda: harness.get(control_plane, namespace, "job", "imaged-load"), 30, operator.log
        )
        assert "LoadSim Jobs run the image registry.example/team/phoenix-operator:1.2.3" in operator.log()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/team/phoenix-operator:1.2.3"


def test_production_passes_a_server_side_dry_run(control_plane: controlplane.ControlPlane, tmp_path: Path) -> None:
    # a dry run creates nothing, so what the rest needs to exist is applied first, as on a second install
    docs = _build(control_plane, "overlays/production")
    prerequisites = [d for d in docs if d["kind"] in ("CustomResourceDefinition", "Namespace")]
    (tmp_path / "prerequisites.yaml").write_text(yaml.safe_dump_all(prerequisites))
    control_plane.kubectl("apply", "--server-side", "-f", str(tmp_path / "prerequisites.yaml"))
    control_plane.kubectl("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=30s")
    applied = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "-k", str(KUSTOMIZE / "overlays/production")
    )
    assert "deployment.apps/phoenix-operator serverside-applied (server dry run)" in applied.stdout


def _selects(selector: dict[str, Any], pod_template: dict[str, Any]) -> bool:
    labels = pod_template["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def _port_names(rules: list[dict[str, Any]]) -> set[str]:
    return {port["port"] for rule in rules for port in rule["ports"] if isinstance(port["port"], str)}


def test_the_network_policies_admit_only_scrapes_and_load_and_pass_a_dry_run(
    control_plane: controlplane.ControlPlane,
) -> None:
    operator_policy = _one(_build(control_plane, "overlays/production"), "NetworkPolicy", "phoenix-operator")["spec"]
    operator_pod = _one(_build(control_plane, "overlays/production"), "Deployment", "phoenix-operator")["spec"]
    assert _selects(operator_policy["podSelector"], operator_pod["template"])
    (scrape,) = operator_policy["ingress"]
    assert scrape["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert scrape["ports"] == [{"port": "metrics"}]  # not healthz, not anything else
    assert "metrics" in {p["name"] for p in operator_pod["template"]["spec"]["containers"][0]["ports"]}

    namespace_policies = _build(control_plane, "components/network-policy/collectors")
    pipeline = kinds.PhoenixProcessPipeline.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"template": "candidate"},
        }
    )
    workload = reconcile_pipeline.manifests(pipeline, reconcile_pipeline.render(pipeline))[1]
    load = kinds.LoadSim.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "LoadSim",
            "metadata": {"name": "l", "namespace": "ns", "uid": "u"},
            "spec": {"targets": [{"endpoint": "http://p-collector:4318"}]},
        }
    )
    job = reconcile_loadsim.job(load, ["http://p-collector:4318"], "img")
    policy = _one(namespace_policies, "NetworkPolicy", "phoenix-collectors")["spec"]
    assert _selects(policy["podSelector"], workload["spec"]["template"])
    otlp, scrapes = policy["ingress"]
    senders = [peer["podSelector"] for peer in otlp["from"]]
    assert any(_selects(s, job["spec"]["template"]) for s in senders), "the LoadSim's pods send"
    assert any(_selects(s, workload["spec"]["template"]) for s in senders), "a mirrored pipeline's copies"
    assert {"matchLabels": {"app.kubernetes.io/name": "otelcol"}} not in senders, "not every collector"
    # every port named is one the collector listens on, so a renamed port fails here, not in a cluster
    assert _port_names(policy["ingress"]) | _port_names(policy["egress"]) <= set(reconcile_pipeline.PORTS)
    assert _port_names([otlp]) == {"otlp-grpc", "otlp-http"} and _port_names([scrapes]) == {"metrics", "telemetry"}
    load_policy = _one(namespace_policies, "NetworkPolicy", "phoenix-loadsim")["spec"]
    assert _selects(load_policy["podSelector"], job["spec"]["template"])
    (load_scrape,) = load_policy["ingress"]  # its counters, for Prometheus only
    assert load_scrape["from"] == scrapes["from"] and _port_names([load_scrape]) == {"metrics"}
    assert {p["name"] for p in job["spec"]["template"]["spec"]["containers"][0]["ports"]} == {"metrics"}
    (_, to_collectors) = load_policy["egress"]
    assert _selects(to_collectors["to"][0]["podSelector"], workload["spec"]["template"])
    assert _port_names([to_collectors]) == {"otlp-grpc", "otlp-http"}
    namespace = harness.namespace(control_plane)
    applied = control_plane.kubectl(
        "apply", "--server-side", "--dry-run=server", "-n", namespace,
        "-k", str(KUSTOMIZE / "components/network-policy/collectors"),
    )  # fmt: skip
    for name in ("phoenix-collectors", "phoenix-loadsim"):
        assert f"networkpolicy.networking.k8s.io/{name} serverside-applied (server dry run)" in applied.stdout


def test_the_monitored_overlay_scrapes_alerts_and_ships_dashboards(
    control_plane: controlplane.ControlPlane, tmp_path: Path
) -> None:
    docs = _build(control_plane, "overlays/monitored")
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace" and "Cluster" not in d["kind"]} - {
        None
    } == {"phoenix-system"}
    collectors = _one(docs, "ServiceMonitor", "phoenix-collectors")["spec"]
    export, telemetry = collectors["endpoints"]
    assert (export["port"], export["honorLabels"], export["relabelings"][0]["replacement"]) == (
        "metrics",
        True,
        "export",
    )
    assert telemetry["relabelings"][0]["replacement"] == "telemetry"
    # labels the operator puts on every collector Service (see test_operator)
    assert {r.get("sourceLabels", [""])[0] for r in telemetry["relabelings"][1:]} == {
        "__meta_kubernetes_service_label_phoenix_io_experiment",
        "__meta_kubernetes_service_label_phoenix_io_variant",
    }
    # each LoadSim pod's counters, on the port its Job names
    (load_scrape,) = _one(docs, "PodMonitor", "phoenix-loadsim")["spec"]["podMetricsEndpoints"]
    assert load_scrape["port"] == "metrics"
    # the operator's /metrics: TLS, the Prometheus ServiceAccount's token, and that account may get /metrics
    (scrape,) = _one(docs, "ServiceMonitor", "phoenix-operator")["spec"]["endpoints"]
    assert (scrape["port"], scrape["scheme"]) == ("metrics", "https") and scrape["bearerTokenFile"]
    service = _one(docs, "Service", "phoenix-operator-metrics")["spec"]["ports"][0]
    container = _one(docs, "Deployment", "phoenix-operator")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": service["port"]} in container["ports"]
    binding = _one(docs, "ClusterRoleBinding", "phoenix-metrics-reader")
    assert binding["roleRef"]["name"] == "phoenix-metrics-reader"
    reader = _one(docs, "ClusterRole", "phoenix-metrics-reader")
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    dashboards = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert len(dashboards) == 3
    for dashboard in dashboards:
        (text,) = dashboard["data"].values()
        assert json.loads(text)["panels"]
    # promtool accepts every alert
    rules = tmp_path / "rules.yaml"
    groups = _one(docs, "PrometheusRule", "phoenix")["spec"]["groups"]
    rules.write_text(yaml.safe_dump({"groups": groups}))
    checked = subprocess.run(
        [str(binaries.require(binaries.PROMTOOL)), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in checked.stdout


@pytest.mark.parametrize(
    "overlay",
    [text for _, text in readme.blocks("yaml") if "kind: Kustomization" in text],
    ids=lambda text: text.splitlines()[0],
)
def test_every_overlay_the_readme_shows_builds_on_a_checkout(
    control_plane: controlplane.ControlPlane, tmp_path: Path, overlay: str
) -> None:
    # `../phoenix` is the reader's checkout, beside their overlay
    (tmp_path / "phoenix").symlink_to(controlplane.REPO)
    (tmp_path / "your-overlay").mkdir()
    (tmp_path / "your-overlay" / "kustomization.yaml").write_text(overlay, encoding="utf-8")
    built = [
        doc
        for doc in yaml.safe_load_all(control_plane.kubectl("kustomize", str(tmp_path / "your-overlay")).stdout)
        if doc
    ]
    spec = yaml.safe_load(overlay)
    deployment = _one(built, "Deployment", "phoenix-operator")
    for image in spec.get("images", []):
        assert (
            deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{image['newName']}:{image['newTag']}"
        )
    for generator in spec.get("configMapGenerator", []):
        (generated,) = [
            d for d in built if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(generator["name"])
        ]
        for literal in generator["literals"]:
            key, value = literal.split("=", 1)
            assert generated["data"][key] == value
    for pairs in (label["pairs"] for label in spec.get("labels", [])):
        for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
            for doc in (d for d in built if d["kind"] == kind):
                assert pairs.items() <= doc["metadata"]["labels"].items(), doc["metadata"]
    for patch in spec.get("patches", []):
        if patch["target"]["kind"] == "ClusterRoleBinding":
            (subject,) = _one(built, "ClusterRoleBinding", patch["target"]["name"])["subjects"]
            assert subject == yaml.safe_load(patch["patch"])[0]["value"]
    if "trackTimestampsStaleness" in overlay:
        export = _one(built, "ServiceMonitor", "phoenix-collectors")["spec"]["endpoints"][0]
        assert (export["port"], export["trackTimestampsStaleness"]) == ("metrics", True)


def test_the_argocd_health_checks_merge_into_argocd_cm(control_plane: controlplane.ControlPlane) -> None:
    (config_map,) = _build(control_plane, "components/argocd")
    assert (config_map["kind"], config_map["metadata"]["name"], config_map["metadata"]["namespace"]) == (
        "ConfigMap",
        "argocd-cm",
        "argocd",
    )
    assert len(config_map["data"]) == 3


def _can_i(plane: controlplane.ControlPlane, *args: str) -> bool:
    answer = plane.kubectl("auth", "can-i", *args, "--as", OPERATOR, check=False).stdout.strip()
    return answer == "yes"


def test_the_operator_may_do_exactly_what_it_needs(control_plane: controlplane.ControlPlane) -> None:
    harness.install_operator_rbac(control_plane)
    namespace = harness.namespace(control_plane)
    listed = control_plane.kubectl("auth", "can-i", "--list", "-n", namespace, "--as", OPERATOR).stdout
    rules = {}
    for line in listed.splitlines()[1:]:
        resource = line.split()[0]  # a non-resource URL line starts with its "[/path]"
        verbs = line.rsplit("[", 1)[-1].rstrip("]").split()
        if not resource.startswith("[") and resource not in SELF_REVIEWS:
            rules[resource] = " ".join(sorted(verbs))
    assert rules == OPERATOR_NEEDS
    # no Secret, until one is granted by name in its namespace
    assert not _can_i(control_plane, "get", "secret/prometheus-token", "-n", namespace)
    control_plane.kubectl("apply", "-n", namespace, "-f", str(TOKEN_ACCESS))
    assert _can_i(control_plane, "get", "secret/prometheus-token", "-n", namespace)
    assert not _can_i(control_plane, "get", "secret/other", "-n", namespace)
    assert not _can_i(control_plane, "list", "secrets", "-n", namespace)
    assert not _can_i(control_plane, "get", "secret/prometheus-token", "-n", "kube-system")
    # its own pod, for its image: in its own namespace only
    assert _can_i(control_plane, "get", "pods", "-n", "phoenix-system")
    for unrelated in ("get pods", "delete deployments", "create clusterrolebindings", "update phoenixexperiments"):
        verb, resource = unrelated.split()
        assert not _can_i(control_plane, verb, resource, "-n", namespace), unrelated
