"""The operator's /metrics, as a Prometheus and a stranger in the cluster reach it: over TLS, and only with a
token whose user the real API server's RBAC lets get /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = pytest.mark.integration


def test_metrics_need_tls_and_a_token_bound_to_the_metrics_reader_role(
    control_plane: controlplane.ControlPlane, tmp_path: Path
) -> None:
    # the operator with its own ClusterRole and nothing more: the reviews are among its verbs
    kubeconfig = harness.operator_kubeconfig(control_plane, tmp_path / "operator.kubeconfig")
    namespace = harness.namespace(control_plane)
    control_plane.kubectl("create", "serviceaccount", "stranger", "-n", namespace)
    stranger = control_plane.kubectl("create", "token", "stranger", "-n", namespace).stdout.strip()
    with harness.running(control_plane, namespace, tmp_path, kubeconfig=kubeconfig) as operator:
        assert operator.metrics_url.startswith("https://") and operator.metrics_token

        def scrape(token: str | None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.get(operator.metrics_url, headers=headers, verify=operator.trusts_metrics(), timeout=10)

        assert scrape(None).status_code == 401
        assert scrape("not-a-token-anyone-issued").status_code == 401
        refused = scrape(stranger)
        assert refused.status_code == 403 and "phoenix-metrics-reader" in refused.text
        served = scrape(operator.metrics_token)
        assert served.status_code == 200 and "phoenix_reconciles_total" in served.text
        # granting the role to the stranger lets it in, once its last answer (kept a minute) is not in the way
        control_plane.kubectl(
            "create", "clusterrolebinding", f"stranger-{namespace}", "--clusterrole", "phoenix-metrics-reader",
            "--serviceaccount", f"{namespace}:stranger",
        )  # fmt: skip
        other = control_plane.kubectl("create", "token", "stranger", "-n", namespace).stdout.strip()
        assert scrape(other).status_code == 200
        # no plain HTTP, and no certificate a client would trust without the operator's CA
        with pytest.raises(httpx.HTTPError):
            httpx.get(operator.metrics_url.replace("https://", "http://"), timeout=10)
        with pytest.raises(httpx.ConnectError):
            httpx.get(operator.metrics_url, headers={"Authorization": f"Bearer {operator.metrics_token}"}, timeout=10)
        log = operator.log()
    assert "metrics request refused: 401" in log and "metrics request refused: 403" in log
    assert not any(token in log for token in (stranger, other, operator.metrics_token))
    control_plane.kubectl("delete", "clusterrolebinding", f"stranger-{namespace}")
