"""The operator as a real process against the test control plane."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from phoenix_operator import API_VERSION
from phoenix_operator.models import kinds
from phoenix_operator.runtime import process
from tests.harness import certs, controlplane

# where a container's termination message is written, by default
TERMINATION_LOG = "/dev/termination-log"


@dataclass
class Operator:
    process: process.ManagedProcess
    metrics_url: str
    health_url: str
    # with the Kubernetes runtime: the CA of its /metrics certificate, and a metrics reader's token
    metrics_ca: Path | None = None
    metrics_token: str | None = None

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def trusts_metrics(self) -> ssl.SSLContext | bool:
        """What a client verifies the /metrics certificate with: the CA the test made for it."""
        return ssl.create_default_context(cafile=self.metrics_ca) if self.metrics_ca else True

    def metrics(self) -> str:
        headers = {"Authorization": f"Bearer {self.metrics_token}"} if self.metrics_token else {}
        answer = httpx.get(self.metrics_url, headers=headers, verify=self.trusts_metrics(), timeout=5)
        answer.raise_for_status()
        return answer.text

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, as when a node dies."""
        assert self.process.pid is not None
        os.kill(self.process.pid, signal.SIGKILL)
        wait_for("the operator to die", lambda: not self.process.running(), 10)


def _start(plane: controlplane.ControlPlane, log: Path, arguments: list[str], kubeconfig: Path | None) -> Operator:
    metrics_port, liveness_port = process.free_port(), process.free_port()
    local = "--runtime" in arguments and arguments[arguments.index("--runtime") + 1] == "local"
    if not local:  # /metrics over TLS with a certificate the test trusts, for a token RBAC lets read it
        cert_dir = certs.write_server_certificate(log.parent / f"{log.stem}-metrics-tls")
        arguments = [*arguments, "--metrics-cert-dir", str(cert_dir)]
    managed = process.ManagedProcess(
        "operator",
        [
            sys.executable,
            "-m",
            "phoenix_operator",
            "operator",
            "run",
            "--metrics-port",
            str(metrics_port),
            "--liveness-port",
            str(liveness_port),
            *arguments,
        ],
        log,
        env={**os.environ, "KUBECONFIG": str(kubeconfig or plane.kubeconfig)},
    )
    managed.start()
    health_url = f"http://127.0.0.1:{liveness_port}/healthz"
    if local:
        found = Operator(managed, f"http://127.0.0.1:{metrics_port}/metrics", health_url)
    else:
        metrics_url = f"https://127.0.0.1:{metrics_port}/metrics"
        found = Operator(managed, metrics_url, health_url, cert_dir / "ca.crt", metrics_reader_token(plane))
    try:
        managed.wait_healthy(lambda: _ok(found.health_url), 60, "liveness")
    except process.StartupError:
        managed.stop()
        raise
    return found


@contextlib.contextmanager
def running(
    plane: controlplane.ControlPlane,
    namespace: str | None,
    workdir: Path,
    *extra: str,
    kubeconfig: Path | None = None,
    log_format: str | None = "plain",
) -> Iterator[Operator]:
    """The operator watching `namespace`, or all namespaces (-A) for None; log_format None keeps its default."""
    log = workdir / f"operator-{uuid.uuid4().hex[:6]}.log"
    arguments = ["--namespace", namespace] if namespace else ["-A"]
    arguments += ["--log-format", log_format] if log_format else []
    arguments += extra
    found = process.on_free_ports(lambda: _start(plane, log, arguments, kubeconfig))
    try:
        yield found
    finally:
        found.process.stop()


def _ok(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


def namespace(plane: controlplane.ControlPlane) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    plane.kubectl("create", "namespace", name)
    return name


# the collection of each kind tests read, by the name they call it
COLLECTIONS = {
    "configmap": "api/v1/namespaces/{namespace}/configmaps",
    "service": "api/v1/namespaces/{namespace}/services",
    "pod": "api/v1/namespaces/{namespace}/pods",
    "deployment": "apis/apps/v1/namespaces/{namespace}/deployments",
    "daemonset": "apis/apps/v1/namespaces/{namespace}/daemonsets",
    "replicaset": "apis/apps/v1/namespaces/{namespace}/replicasets",
    "job": "apis/batch/v1/namespaces/{namespace}/jobs",
    "hpa": "apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
    "endpointslice": "apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
    "pdb": "apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets",
    **{kind.short_name: f"apis/{API_VERSION}/namespaces/{{namespace}}/{kind.plural}" for kind in kinds.KINDS},
}


def get(plane: controlplane.ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    """The object, or None where `kubectl get` would fail."""
    return plane.read(f"{COLLECTIONS[kind].format(namespace=namespace)}/{name}")


def listed(plane: controlplane.ControlPlane, namespace: str, kind: str, **params: str) -> list[dict[str, Any]]:
    """The kind's objects in `namespace`, each naming its kind and apiVersion as `kubectl get -o json` shows them
    (a list of built-in objects leaves them out); raises where kubectl would fail, so that no answer never reads
    as nothing there."""
    found = plane.read(COLLECTIONS[kind].format(namespace=namespace), **params)
    assert found is not None, f"the API server did not list {kind} in {namespace}"
    named = {"apiVersion": found["apiVersion"], "kind": str(found["kind"]).removesuffix("List")}
    return [{**named, **item} for item in found["items"]]


def phase(plane: controlplane.ControlPlane, namespace: str, name: str) -> str | None:
    """The experiment's phase, or None before it has one."""
    found = get(plane, namespace, "pexp", name) or {}
    current: str | None = (found.get("status") or {}).get("phase")
    return current


def wait_for(what: str, probe: Callable[[], Any], timeout: float, describe: Callable[[], str] = lambda: "") -> Any:
    """Poll `probe` until it returns something truthy; fail with `describe()` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{describe()}")


def never(what: str, probe: Callable[[], Any], seconds: float = 4.0) -> None:
    """Fail if `probe` returns something truthy at any poll within `seconds`: one look proves too little."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not probe(), f"{what} appeared"
        time.sleep(0.5)


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            result: dict[str, Any] = found
            return result
    return None


def wait_condition(
    plane: controlplane.ControlPlane,
    namespace: str,
    kind: str,
    name: str,
    type_: str,
    status: str,
    timeout: float,
    describe: Callable[[], str] = lambda: "",
) -> dict[str, Any]:
    """The object's condition `type_` once it has `status`."""

    def probe() -> dict[str, Any] | None:
        found = condition(get(plane, namespace, kind, name), type_)
        return found if found and found["status"] == status else None

    result: dict[str, Any] = wait_for(f"{kind}/{name} {type_}={status}", probe, timeout, describe)
    return result


def apply(plane: controlplane.ControlPlane, namespace: str, manifest: dict[str, Any]) -> None:
    plane.kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(manifest))


def experiment(name: str, **spec: Any) -> dict[str, Any]:
    """A small experiment of the examples' templates; `spec` overrides its fields."""
    return {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixExperiment",
        "metadata": {"name": name},
        "spec": {
            "baseline": {"template": "baseline"},
            "candidate": {"template": "candidate", "parameters": {"aggregateAwayAttributes": ["process.pid"]}},
            "load": {"loadSim": {"profile": "realistic", "hosts": 2, "processesPerHost": 5, "intervalSeconds": 1}},
            "duration": "5m",
            "warmup": "1s",
            "analysisInterval": "1s",
            **spec,
        },
    }


def _running_job_pod(plane: controlplane.ControlPlane, namespace: str, job: str, timeout: float) -> dict[str, Any]:
    def running_pod() -> dict[str, Any] | None:
        pods = [p for p in listed(plane, namespace, "pod", labelSelector=f"job-name={job}")
                if (p.get("status") or {}).get("phase") == "Running"]  # fmt: skip
        return pods[0] if pods else None

    pod: dict[str, Any] = wait_for(f"a running pod of the Job {job}", running_pod, timeout)
    return pod


def exit_job_pod(plane: controlplane.ControlPlane, namespace: str, job: str, code: int, timeout: float = 30) -> None:
    """Make the running pod of a Job exit with `code`, as its process would (the test bed's kwok acts on the label)."""
    pod = _running_job_pod(plane, namespace, job, timeout)["metadata"]["name"]
    plane.kubectl("label", "-n", namespace, "pod", pod, f"{controlplane.EXIT_CODE_LABEL}={code}")


def run_job_pod(
    plane: controlplane.ControlPlane, namespace: str, job: str, workdir: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the Job pod's command here, as its kubelet would, and end the pod as the command ended.

    The image's `phoenix` is this checkout's; the termination-message file is
    one in `workdir`, and what the command wrote there becomes the pod's
    termination message. Here the pod shares this host's network, so what it
    would serve on its own address listens on 127.0.0.1, on a free port.
    """
    pod = _running_job_pod(plane, namespace, job, timeout)
    (container,) = pod["spec"]["containers"]
    command = list(container["command"])
    assert command[0] == "phoenix", command
    message_file = workdir / f"{pod['metadata']['name']}.termination-log"
    command = [str(message_file) if part == TERMINATION_LOG else part for part in command[1:]]
    for option, value in (("--metrics-address", "127.0.0.1"), ("--metrics-port", str(process.free_port()))):
        if option in command:
            command[command.index(option) + 1] = value
    ran = subprocess.run(
        [sys.executable, "-m", "phoenix_operator", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    name = pod["metadata"]["name"]
    if message_file.is_file():
        message = message_file.read_text()
        annotation = f"{controlplane.TERMINATION_MESSAGE_ANNOTATION}={message}"
        plane.kubectl("annotate", "-n", namespace, "pod", name, annotation)
    plane.kubectl("label", "-n", namespace, "pod", name, f"{controlplane.EXIT_CODE_LABEL}={ran.returncode}")
    return ran


def install_operator_rbac(plane: controlplane.ControlPlane) -> None:
    """The operator's ServiceAccount and ClusterRole, as kustomize/base installs them."""
    plane.kubectl("create", "namespace", "phoenix-system", check=False)
    rbac = controlplane.REPO / "kustomize" / "base" / "rbac"
    plane.kubectl("apply", "--server-side", "-n", "phoenix-system", "-k", str(rbac))


def operator_kubeconfig(plane: controlplane.ControlPlane, path: Path) -> Path:
    """A kubeconfig with the operator ServiceAccount's token: the operator's role and nothing more."""
    install_operator_rbac(plane)
    token = plane.kubectl("create", "token", "phoenix-operator", "-n", "phoenix-system").stdout.strip()
    return plane.token_kubeconfig(path, token)


METRICS_READER = "metrics-reader"  # a ServiceAccount in phoenix-system bound to ClusterRole phoenix-metrics-reader


def metrics_reader_token(plane: controlplane.ControlPlane) -> str:
    """A token of a ServiceAccount that may read the operator's /metrics, as a Prometheus's would be."""
    install_operator_rbac(plane)
    plane.kubectl("create", "serviceaccount", METRICS_READER, "-n", "phoenix-system", check=False)
    plane.kubectl(
        "create", "clusterrolebinding", METRICS_READER, "--clusterrole", "phoenix-metrics-reader",
        "--serviceaccount", f"phoenix-system:{METRICS_READER}", check=False,
    )  # fmt: skip
    return plane.kubectl("create", "token", METRICS_READER, "-n", "phoenix-system").stdout.strip()


def kubectl_phoenix(plane: controlplane.ControlPlane, *args: str) -> str:
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


def started_under(marker: str) -> list[str]:
    """Command lines of live processes that name `marker` in their command line or environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (entry / "environ").read_bytes().decode(errors="replace")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and (marker in cmdline or marker in environ):
                found.append(cmdline)
    return found
