"""The test bed: a cluster's control plane with fake nodes, on loopback ports.

Real etcd, kube-apiserver (CRDs, RBAC, admission), kube-scheduler and the
kube-controller-manager controllers the operator relies on (CONTROLLERS);
kwok plays the kubelet of NODES fake nodes, following kwok-stages.yaml. So
Deployments roll through ReplicaSets to pods that become Ready, Jobs run
pods, Services get EndpointSlices and owner references cascade, as in a
cluster; only no container ever runs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from phoenix_operator import binaries
from phoenix_operator.models import kinds
from phoenix_operator.runtime import process
from tests.harness import certs

REPO = Path(__file__).resolve().parents[2]
# What the operator relies on a cluster's controller-manager for.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "daemonset-controller",
    "job-controller",
    "endpointslice-controller",
    "garbage-collector-controller",
)
NODES = 3
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
# A pod that a test labels with this exits with the label's value as its code.
EXIT_CODE_LABEL = "phoenix-test/exit-code"
TERMINATION_MESSAGE_ANNOTATION = "phoenix-test/termination-message"


@dataclass
class ControlPlane:
    url: str
    kubeconfig: Path
    workdir: Path
    # the admin's connection, for what tests read over and over while they wait: a kubectl
    # process costs about 80 ms of CPU a call, which a two-core machine's experiments feel
    reader: httpx.Client
    # etcd and kube-apiserver, each with the check that it serves again after a restart
    components: dict[str, tuple[process.ManagedProcess, Callable[[], bool]]] = field(default_factory=dict)

    def read(self, path: str, **params: str) -> dict[str, Any] | None:
        """GET one API path as the admin; None for any answer but 200 (absent, refused, or the server down),
        as `kubectl get` would fail."""
        with contextlib.suppress(httpx.HTTPError):
            answer = self.reader.get(path, params=params)
            if answer.status_code == 200:
                found: dict[str, Any] = answer.json()
                return found
        return None

    def crash(self, name: str) -> None:
        """SIGKILL etcd or kube-apiserver, as a node failure would: nothing is flushed or said goodbye."""
        component, _ = self.components[name]
        assert component.pid is not None
        os.killpg(component.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while component.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not component.running(), f"{name} survived SIGKILL"

    def revive(self, name: str, timeout: float = 90.0) -> None:
        """Start it again with the same flags: the same ports, and for etcd the same data."""
        component, serves = self.components[name]
        component.start()
        component.wait_healthy(serves, timeout, "serving again")

    def kubectl(
        self, *args: str, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
            input=input_text,
        )

    def token_kubeconfig(self, path: Path, token: str) -> Path:
        """A kubeconfig that authenticates with a bearer token, e.g. a ServiceAccount's."""
        _write_kubeconfig(path, self.url, self.workdir / "apiserver-certs" / "apiserver.crt", {"token": token})
        return path

    def install_crds(self, timeout: float = 120) -> None:
        """Apply the CRDs and wait until they are served. A busy API server can answer an apply or a read with an
        error for a moment (kubectl then exits 1 at once), so both are retried until the deadline."""
        deadline = time.monotonic() + timeout
        self._until_it_succeeds(deadline, "apply", "--server-side", "-k", str(REPO / "crds"))
        names = [f"crd/{kind.crd_name}" for kind in kinds.KINDS]
        # each wait within kubectl()'s own 60 s limit
        self._until_it_succeeds(deadline, "wait", "--for=condition=Established", "--timeout=50s", *names)

    def _until_it_succeeds(self, deadline: float, *args: str) -> None:
        while (result := self.kubectl(*args, check=False)).returncode != 0:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"kubectl {args[0]} kept failing until its deadline: {result.stderr.strip()}")
            time.sleep(1)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _write_kubeconfig(path: Path, url: str, ca: Path, user: dict[str, str]) -> None:
    """One cluster, one user (client certificate or token), one context named phoenix-test."""
    credentials = "".join(f"\n    {key}: {value}" for key, value in user.items())
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: phoenix-test
  cluster:
    server: {url}
    certificate-authority-data: {_b64(ca)}
users:
- name: user
  user:{credentials}
contexts:
- name: phoenix-test
  context: {{cluster: phoenix-test, user: user, namespace: default}}
current-context: phoenix-test
""",
        encoding="utf-8",
    )


def _admin(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


def _ready(url: str, cert: Path, key: Path, ca: Path) -> bool:
    with contextlib.suppress(httpx.HTTPError, OSError):
        return httpx.get(f"{url}/readyz", verify=_admin(cert, key, ca), timeout=2.0).status_code == 200
    return False


def _etcd(binary: Path, workdir: Path, timeout: float) -> tuple[process.ManagedProcess, int]:
    """A started etcd and its client port."""
    client_port, peer_port = process.free_port(), process.free_port()
    etcd = process.ManagedProcess(
        "etcd",
        [
            str(binary),
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client_port}",
            f"--advertise-client-urls=http://127.0.0.1:{client_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        workdir / "etcd.log",
    )
    etcd.start()
    try:
        etcd.wait_healthy(lambda: process.port_open(client_port), timeout, "client port")
    except process.StartupError:
        etcd.stop()
        raise
    return etcd, client_port


AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


def audited_requests(audit_log: Path, since: float, until: float) -> list[dict[str, Any]]:
    """The audit events of the requests the API server received between `since` and `until` (epoch seconds)."""
    events = [json.loads(line) for line in audit_log.read_text(encoding="utf-8").splitlines()]
    return [e for e in events if since <= datetime.fromisoformat(e["requestReceivedTimestamp"]).timestamp() <= until]


def _apiserver(
    binary: Path, workdir: Path, etcd_port: int, pki: dict[str, Path], timeout: float, audit_log: Path | None
) -> tuple[process.ManagedProcess, str]:
    """A started, ready kube-apiserver and its URL; with `audit_log`, it writes every request's metadata there."""
    secure_port = process.free_port()
    cert_dir = workdir / "apiserver-certs"
    audit: list[str] = []
    if audit_log is not None:
        policy = workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        audit = [f"--audit-policy-file={policy}", f"--audit-log-path={audit_log}"]
    apiserver = process.ManagedProcess(
        "kube-apiserver",
        [
            str(binary),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--cert-dir={cert_dir}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={secure_port}",
            f"--client-ca-file={pki['client_ca']}",
            f"--service-account-key-file={pki['sa_pub']}",
            f"--service-account-signing-key-file={pki['sa_key']}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.0.0.0/16",  # room for a Service per pipeline in the scale benchmark
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # nodes join untainted: no node-lifecycle controller would lift a not-ready taint
            "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
            "--v=0",
            *audit,
        ],
        workdir / "kube-apiserver.log",
    )
    url = f"https://127.0.0.1:{secure_port}"
    apiserver.start()
    try:
        apiserver.wait_healthy(lambda: (cert_dir / "apiserver.crt").is_file(), timeout, "serving certificate")
        ca = cert_dir / "apiserver.crt"
        apiserver.wait_healthy(lambda: _ready(url, pki["admin_cert"], pki["admin_key"], ca), timeout, "/readyz")
    except process.StartupError:
        apiserver.stop()
        raise
    return apiserver, url


def _healthy(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError, OSError):
        return httpx.get(url, verify=False, timeout=2.0).status_code == 200  # noqa: S501 (its own self-signed cert)
    return False


def _healthy_at(component: process.ManagedProcess, url: str, timeout: float) -> process.ManagedProcess:
    """`component`, started and answering `url`; stopped again if it never does."""
    component.start()
    try:
        component.wait_healthy(lambda: _healthy(url), timeout, url)
    except process.StartupError:
        component.stop()
        raise
    return component


def _beside(binary: Path, workdir: Path, kubeconfig: Path, args: list[str], timeout: float) -> process.ManagedProcess:
    """kube-scheduler or kube-controller-manager, started and healthy."""
    port = process.free_port()
    component = process.ManagedProcess(
        binary.name,
        [str(binary), f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1",
         f"--secure-port={port}", *args],
        workdir / f"{binary.name}.log",
    )  # fmt: skip
    return _healthy_at(component, f"https://127.0.0.1:{port}/healthz", timeout)


def _kwok(binary: Path, workdir: Path, kubeconfig: Path, timeout: float) -> process.ManagedProcess:
    port = process.free_port()
    kwok = process.ManagedProcess(
        "kwok",
        [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--config={KWOK_STAGES}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.1.0.1",
            f"--server-address=127.0.0.1:{port}",
        ],
        workdir / "kwok.log",
    )
    return _healthy_at(kwok, f"http://127.0.0.1:{port}/healthz", timeout)


def _add_nodes(plane: ControlPlane, timeout: float) -> None:
    for index in range(NODES):
        name = f"node-{index}"
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
            },
        }
        plane.kubectl("apply", "-f", "-", input_text=json.dumps(node))
    plane.kubectl("wait", "--for=condition=Ready", f"--timeout={timeout:.0f}s", "node", "--all")


@contextlib.contextmanager
def running(workdir: Path, timeout: float = 90.0, audit_log: Path | None = None) -> Iterator[ControlPlane]:
    etcd_bin = binaries.require(binaries.ETCD)
    apiserver_bin = binaries.require(binaries.KUBE_APISERVER)
    pki = certs.write_pki(workdir / "pki")
    with contextlib.ExitStack() as started:
        etcd, etcd_port = process.on_free_ports(lambda: _etcd(etcd_bin, workdir, timeout))
        started.callback(etcd.stop)
        apiserver, url = process.on_free_ports(
            lambda: _apiserver(apiserver_bin, workdir, etcd_port, pki, timeout, audit_log)
        )
        started.callback(apiserver.stop)
        kubeconfig = workdir / "kubeconfig"
        ca = workdir / "apiserver-certs" / "apiserver.crt"
        admin = {"client-certificate-data": _b64(pki["admin_cert"]), "client-key-data": _b64(pki["admin_key"])}
        _write_kubeconfig(kubeconfig, url, ca, admin)
        reader = httpx.Client(base_url=url, verify=_admin(pki["admin_cert"], pki["admin_key"], ca), timeout=10.0)
        started.callback(reader.close)
        plane = ControlPlane(url, kubeconfig, workdir, reader)
        plane.components["etcd"] = (etcd, lambda: process.port_open(etcd_port))
        plane.components["kube-apiserver"] = (apiserver, lambda: _ready(url, pki["admin_cert"], pki["admin_key"], ca))
        scheduler_bin = binaries.require(binaries.KUBE_SCHEDULER)
        scheduler = process.on_free_ports(lambda: _beside(scheduler_bin, workdir, kubeconfig, [], timeout))
        started.callback(scheduler.stop)
        manager_bin = binaries.require(binaries.KUBE_CONTROLLER_MANAGER)
        controllers = [f"--controllers={','.join(CONTROLLERS)}", "--use-service-account-credentials=false"]
        manager = process.on_free_ports(lambda: _beside(manager_bin, workdir, kubeconfig, controllers, timeout))
        started.callback(manager.stop)
        kwok_bin = binaries.require(binaries.KWOK)
        kwok = process.on_free_ports(lambda: _kwok(kwok_bin, workdir, kubeconfig, timeout))
        started.callback(kwok.stop)
        _add_nodes(plane, timeout)
        yield plane
