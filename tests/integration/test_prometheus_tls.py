"""An experiment measures through a real Prometheus that serves only TLS, asks for a client certificate and a
password (its --web.config.file), with every credential read from the experiment's Secrets."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml

from phoenix_operator import binaries
from phoenix_operator.measure import prometheus as measure_prometheus
from phoenix_operator.runtime import local_components, process
from tests.harness import certs, controlplane
from tests.harness import operator as harness

pytestmark = pytest.mark.integration
USER = "phoenix"


@pytest.fixture
def secured_prometheus(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, Path]]]:
    """A Prometheus on https://127.0.0.1 requiring a client certificate and basic auth; (url, password, pki)."""
    server = certs.write_server_certificate(tmp_path / "server")
    client = certs.write_pki(tmp_path / "client")
    password = secrets.token_urlsafe(16)
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": str(server / "tls.crt"),
                    "key_file": str(server / "tls.key"),
                    "client_auth_type": "RequireAndVerifyClientCert",
                    "client_ca_file": str(client["client_ca"]),
                },
                "basic_auth_users": {USER: bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()},
            }
        )
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(local_components.prometheus_config([], "5s"))
    pki = {"ca": server / "ca.crt", "cert": client["admin_cert"], "key": client["admin_key"]}
    trusted = measure_prometheus.tls_context(*(pki[k].read_text() for k in ("ca", "cert", "key")))

    def start(port: int) -> process.ManagedProcess:
        managed = process.ManagedProcess(
            "prometheus",
            [
                str(binaries.require(binaries.PROMETHEUS)), f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                f"--web.config.file={web}",
            ],
            tmp_path / "prometheus.log",
        )  # fmt: skip
        managed.start()
        ready = f"https://127.0.0.1:{port}/-/ready"

        def answers() -> bool:
            try:
                return httpx.get(ready, auth=(USER, password), verify=trusted, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        managed.wait_healthy(answers, 60, "readiness")
        started.append(port)
        return managed

    started: list[int] = []
    running = process.on_free_ports(lambda: start(process.free_port()))
    try:
        yield f"https://127.0.0.1:{started[-1]}", password, pki
    finally:
        running.stop()


@pytest.fixture
def operator(control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path) -> Iterator[harness.Operator]:
    flags = ("--measure-step", "1s", "--prometheus-timeout", "6s")
    with harness.running(control_plane, namespace, tmp_path, *flags) as running:
        yield running


def _prometheus(url: str, ca_secret: str) -> dict[str, Any]:
    def ref(name: str, key: str) -> dict[str, str]:
        return {"name": name, "key": key}

    client = "prometheus-client"
    return {
        "url": url,
        "basicAuth": {"username": ref(client, "username"), "password": ref(client, "password")},
        "tls": {"ca": ref(ca_secret, "ca.crt"), "cert": ref(client, "tls.crt"), "key": ref(client, "tls.key")},
    }


def test_an_experiment_reaches_a_tls_prometheus_with_its_secrets_and_a_wrong_ca_is_named(
    control_plane: controlplane.ControlPlane,
    namespace: str,
    operator: harness.Operator,
    secured_prometheus: tuple[str, str, dict[str, Path]],
    tmp_path: Path,
) -> None:
    url, password, pki = secured_prometheus
    control_plane.kubectl(
        "create", "secret", "generic", "prometheus-client", "-n", namespace, f"--from-literal=username={USER}",
        f"--from-literal=password={password}", f"--from-file=tls.crt={pki['cert']}",
        f"--from-file=tls.key={pki['key']}",
    )  # fmt: skip
    control_plane.kubectl("create", "secret", "generic", "prometheus-ca", "-n", namespace, f"--from-file={pki['ca']}")
    stranger = certs.write_server_certificate(tmp_path / "stranger")  # a CA that signed nothing Prometheus serves
    control_plane.kubectl(
        "create", "secret", "generic", "stranger-ca", "-n", namespace, f"--from-file={stranger / 'ca.crt'}"
    )
    for name, ca in (("tls", "prometheus-ca"), ("wrong-ca", "stranger-ca")):
        harness.apply(control_plane, namespace, harness.experiment(name, analysis={"prometheus": _prometheus(url, ca)}))
    # through TLS, the client certificate and the password, Prometheus answers: no series of this experiment yet
    measured = harness.wait_condition(
        control_plane, namespace, "pexp", "tls", "MeasurementAvailable", "False", 60, operator.log
    )
    assert measured["reason"] == "NoData", measured
    refused = harness.wait_condition(
        control_plane, namespace, "pexp", "wrong-ca", "MeasurementAvailable", "False", 60, operator.log
    )
    assert refused["reason"] == "PrometheusUnreachable", refused
    assert "does not trust" in refused["message"] and "spec.analysis.prometheus.tls.ca" in refused["message"], refused
    # none of the credentials is written anywhere a user or a log collector reads
    stored = json.dumps([harness.get(control_plane, namespace, "pexp", n) for n in ("tls", "wrong-ca")])
    events = control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    for secret in (password, pki["key"].read_text().splitlines()[1]):
        assert secret not in stored and secret not in events and secret not in operator.log()
