"""An envtest-style control plane: real etcd and kube-apiserver, no kubelet.

It is what the operator and CLI talk to in tests: the same API server code
as a cluster, with CRDs, RBAC and admission, on loopback ports.
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from phoenix_operator import binaries
from phoenix_operator.models import kinds
from phoenix_operator.runtime import process
from tests.harness import certs

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ControlPlane:
    url: str
    kubeconfig: Path
    workdir: Path

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

    def install_crds(self) -> None:
        self.kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
        names = [f"crd/{kind.crd_name}" for kind in kinds.KINDS]
        self.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)


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


def _ready(url: str, cert: Path, key: Path, ca: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    with contextlib.suppress(httpx.HTTPError, OSError):
        return httpx.get(f"{url}/readyz", verify=context, timeout=2.0).status_code == 200
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


def _apiserver(
    binary: Path, workdir: Path, etcd_port: int, pki: dict[str, Path], timeout: float
) -> tuple[process.ManagedProcess, str]:
    """A started, ready kube-apiserver and its URL."""
    secure_port = process.free_port()
    cert_dir = workdir / "apiserver-certs"
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
            "--disable-admission-plugins=ServiceAccount",
            "--v=0",
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


@contextlib.contextmanager
def running(workdir: Path, timeout: float = 90.0) -> Iterator[ControlPlane]:
    etcd_bin = binaries.require(binaries.ETCD)
    apiserver_bin = binaries.require(binaries.KUBE_APISERVER)
    pki = certs.write_pki(workdir / "pki")
    etcd, etcd_port = process.on_free_ports(lambda: _etcd(etcd_bin, workdir, timeout))
    try:
        apiserver, url = process.on_free_ports(lambda: _apiserver(apiserver_bin, workdir, etcd_port, pki, timeout))
        try:
            kubeconfig = workdir / "kubeconfig"
            admin = {"client-certificate-data": _b64(pki["admin_cert"]), "client-key-data": _b64(pki["admin_key"])}
            _write_kubeconfig(kubeconfig, url, workdir / "apiserver-certs" / "apiserver.crt", admin)
            yield ControlPlane(url, kubeconfig, workdir)
        finally:
            apiserver.stop()
    finally:
        etcd.stop()
