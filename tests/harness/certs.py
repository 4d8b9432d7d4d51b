"""Certificates for the test control plane (a client CA and an admin in system:masters) and for servers on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _cert(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    signer: rsa.RSAPrivateKey,
    ca: bool,
    server_ip: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server_ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pki(directory: Path) -> dict[str, Path]:
    """Client CA, admin client cert/key and a service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phoenix-test-client-ca")])
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    admin_key = _key()
    admin_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.COMMON_NAME, "phoenix-admin"),
        ]
    )
    admin = _cert(admin_name, admin_key, ca_name, ca_key, ca=False)
    sa_key = _key()
    paths = {
        "client_ca": directory / "client-ca.crt",
        "admin_cert": directory / "admin.crt",
        "admin_key": directory / "admin.key",
        "sa_key": directory / "sa.key",
        "sa_pub": directory / "sa.pub",
    }
    paths["client_ca"].write_bytes(_pem(ca))
    paths["admin_cert"].write_bytes(_pem(admin))
    _write_key(admin_key, paths["admin_key"])
    _write_key(sa_key, paths["sa_key"])
    paths["sa_pub"].write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return paths


def write_server_certificate(directory: Path) -> Path:
    """A CA (ca.crt) and a certificate it signed for 127.0.0.1 (tls.crt, tls.key), as a TLS Secret mounts them."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, key = _key(), _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phoenix-test-server-ca")])
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    (directory / "ca.crt").write_bytes(_pem(_cert(ca_name, ca_key, ca_name, ca_key, ca=True)))
    (directory / "tls.crt").write_bytes(_pem(_cert(server_name, key, ca_name, ca_key, ca=False, server_ip="127.0.0.1")))
    _write_key(key, directory / "tls.key")
    return directory
