"""The /metrics server's own properties: its self-signed certificate, one review per token a minute, and no
client that stalls its TLS handshake holding up a scrape. Who may read is the API server's answer, tested
against the real one in tests/integration/test_metrics_security.py; here a function stands in for it."""

from __future__ import annotations

import socket
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from phoenix_operator.handlers import metrics_server
from phoenix_operator.runtime import base as runtime_base
from phoenix_operator.runtime import process

ANSWERS = {"reader": True, "stranger": False}
UNREACHABLE = {"unreachable"}  # tokens whose review meets an API server that does not answer


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, Counter[str]]]:
    asked: Counter[str] = Counter()

    def review(token: str) -> bool | None:
        asked[token] += 1
        if token in UNREACHABLE:
            raise runtime_base.StoreError("review a metrics request's token: the API server is unreachable")
        return ANSWERS.get(token)

    cert_dir = metrics_server.self_signed(tmp_path / "tls", ["phoenix-operator-metrics"])
    port = process.free_port()
    server = metrics_server.serve(port, metrics_server.Secured(cert_dir, review))
    trusted = ssl.create_default_context(cafile=cert_dir / metrics_server.CERT_FILE)
    try:
        yield f"https://127.0.0.1:{port}", trusted, asked
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, trusted: ssl.SSLContext, token: str | None, path: str = "/metrics") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url + path, headers=headers, verify=trusted, timeout=5)


def test_the_self_signed_certificate_serves_tls_and_the_key_is_private(
    served: tuple[str, ssl.SSLContext, Counter[str]], tmp_path: Path
) -> None:
    url, trusted, _ = served
    assert _get(url, trusted, "reader").status_code == 200
    assert (tmp_path / "tls" / metrics_server.KEY_FILE).stat().st_mode & 0o077 == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https", "http") + "/metrics", timeout=5)


def test_each_token_costs_one_review_a_minute_and_every_refusal_has_its_code(
    served: tuple[str, ssl.SSLContext, Counter[str]],
) -> None:
    url, trusted, asked = served
    codes = [_get(url, trusted, token).status_code for token in ("reader", "reader", "stranger", "stranger", None)]
    assert codes == [200, 200, 403, 403, 401]
    assert asked == {"reader": 1, "stranger": 1}  # no token asks nothing
    assert _get(url, trusted, "unreachable").status_code == 503
    assert _get(url, trusted, "reader", "/debug").status_code == 404
    basic = httpx.get(url + "/metrics", headers={"Authorization": "Basic cmVhZGVy"}, verify=trusted, timeout=5)
    assert basic.status_code == 401


@pytest.mark.alone  # a wall-clock bound: on a busy machine the scrape itself may take longer
def test_a_client_that_stalls_its_handshake_holds_up_no_scrape(
    served: tuple[str, ssl.SSLContext, Counter[str]],
) -> None:
    url, trusted, _ = served
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as stalled:  # connects, then never says hello
        stalled.sendall(b"\x16")
        started = time.monotonic()
        assert _get(url, trusted, "reader").status_code == 200
        assert time.monotonic() - started < 2
