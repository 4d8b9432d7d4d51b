"""Serving the operator's /metrics: over TLS, to callers the API server authorizes.

The metrics name every experiment and pipeline in the cluster, so they are
served as kubebuilder's secure metrics are: each request's bearer token goes
to the API server (a TokenReview, then a SubjectAccessReview of `get` on the
non-resource URL /metrics), and only a user RBAC allows, such as the
Prometheus bound to the `phoenix-metrics-reader` ClusterRole, reads them.
Answers are kept for a minute per token, so a scrape every 30 s costs the API
server two reviews a minute at most. The local runtime serves them on the
loopback only, in plain HTTP, to its own Prometheus.
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prometheus_client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phoenix_operator.runtime import base as runtime_base

REVIEW_SECONDS = 60.0
CLIENT_TIMEOUT_SECONDS = 10.0
MAX_REMEMBERED_TOKENS = 1000
CERT_FILE, KEY_FILE = "tls.crt", "tls.key"  # as a kubernetes.io/tls Secret mounts them

# the API server's answer for a token: may it read /metrics? None: it authenticates no one
Review = Callable[[str], bool | None]


@dataclass(frozen=True)
class Secured:
    cert_dir: Path  # holds tls.crt and tls.key
    review: Review


class _Reviews:
    """The API server's recent answers per token (hashed), so scrapes do not each cost two reviews."""

    def __init__(self, review: Review) -> None:
        self._review = review
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[bool | None, float]] = {}

    def may_read(self, token: str) -> bool | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            answer, expires = self._answers.get(key, (None, 0.0))
            if expires > now:
                return answer
        answer = self._review(token)  # outside the lock: a slow API server must not serialize every scrape
        with self._lock:
            if len(self._answers) >= MAX_REMEMBERED_TOKENS:
                self._answers.clear()
            self._answers[key] = (answer, now + REVIEW_SECONDS)
        return answer


def _handler(reviews: _Reviews | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self._answer(404, b"only /metrics is served\n")
                return
            if reviews is not None:
                scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                try:
                    allowed = reviews.may_read(token.strip()) if scheme.lower() == "bearer" and token else None
                except runtime_base.StoreError as error:
                    self._answer(503, f"cannot authorize the request: {error}\n".encode())
                    return
                if allowed is None:
                    self._answer(401, b"a bearer token the API server authenticates is required\n")
                    return
                if not allowed:
                    self._answer(403, b"forbidden: get on /metrics not granted (ClusterRole phoenix-metrics-reader)\n")
                    return
            self._answer(200, prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST)

        def _answer(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Scrapes are not news: only refusals are logged, by their request line (never a header)."""
            if str(code)[:1] in ("4", "5"):
                logging.getLogger("phoenix").info("metrics request refused: %s %s", code, self.requestline)

        def log_message(self, format: str, *args: object) -> None:
            logging.getLogger("phoenix").debug("metrics server: " + format, *args)

    Handler.timeout = CLIENT_TIMEOUT_SECONDS  # a client that stops talking frees its thread
    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake happens here, in the request's own thread: a client that never
        completes one holds up no other scrape, as it would in the accepting thread."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(CLIENT_TIMEOUT_SECONDS)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # not TLS, or gone: nothing to answer
        with wrapped:
            super().finish_request(wrapped, client_address)


def serve(port: int, secured: Secured | None) -> http.server.ThreadingHTTPServer:
    """Serve /metrics in a thread of its own: on every address over TLS when `secured`, else on the loopback."""
    address = ("0.0.0.0" if secured else "127.0.0.1", port)  # noqa: S104 (a scrape comes from another pod)
    server = _Server(address, _handler(_Reviews(secured.review) if secured else None))
    if secured is not None:
        server.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        server.tls.load_cert_chain(secured.cert_dir / CERT_FILE, secured.cert_dir / KEY_FILE)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def self_signed(directory: Path, hostnames: list[str]) -> Path:
    """A certificate for `hostnames` signed by its own key, written as tls.crt and tls.key in `directory`.

    What an operator without a mounted certificate serves: the traffic is
    encrypted, and a scraper that pins no CA (`insecureSkipVerify`) accepts it.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.datetime.now(datetime.UTC)
    alternatives: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alternatives.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CERT_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = directory / KEY_FILE
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory
