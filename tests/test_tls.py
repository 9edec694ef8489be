"""HTTPS: certificate checks, ca_bundle and SSL_CERT_FILE, against a FakeHubSpot on TLS."""

from __future__ import annotations

import datetime as dt
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hubspot_upsert as hu
from hubspot_upsert import HubSpot
from hubspot_upsert.testing import FakeHubSpot

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject: str, issuer: x509.Name, key: Any) -> Any:
    """A certificate builder valid from yesterday for 30 days."""
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )


def _write_key(path: Path, key: Any) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA and a certificate for localhost signed by it."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _certificate("hubspot-upsert test CA", _name("hubspot-upsert test CA"), ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _certificate("localhost", ca.subject, key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": d / "ca.pem", "cert": d / "cert.pem", "key": d / "key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(paths["key"], key)
    return paths


@pytest.fixture
def tls_fake(pki: dict[str, Path]) -> Iterator[FakeHubSpot]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    with FakeHubSpot(ssl_context=context) as fake:
        yield fake


def test_untrusted_certificate_is_a_clear_error_and_not_retried(
    tls_fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert tls_fake.url.startswith("https://localhost:")
    hs = HubSpot(tls_fake.token, base_url=tls_fake.url, backoff=0.01)
    with pytest.raises(hu.TransportError) as info:
        hs.create_or_update("ada@example.com")
    message = str(info.value)
    assert "certificate" in message.lower() or "issuer" in message.lower(), message
    assert info.value.attempts == 1
    assert "ada" not in message and tls_fake.token not in message
    assert tls_fake.request_count == 0


def test_ca_bundle_option(tls_fake: FakeHubSpot, pki: dict[str, Path]) -> None:
    hs = HubSpot(tls_fake.token, base_url=tls_fake.url, ca_bundle=pki["ca"])
    assert hs.create_or_update("ada@example.com").is_new
    assert tls_fake.contact("ada@example.com") is not None


def test_ssl_cert_file_is_honoured(tls_fake: FakeHubSpot, pki: dict[str, Path]) -> None:
    code = (
        "from hubspot_upsert import HubSpot\n"
        f"print(HubSpot({tls_fake.token!r}, base_url={tls_fake.url!r})"
        ".create_or_update('env@example.com').is_new)\n"
    )
    env = {**os.environ, "SSL_CERT_FILE": str(pki["ca"])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_missing_or_bad_ca_bundle_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=r"ca_bundle '.*nope\.pem' cannot be read"):
        HubSpot("t", ca_bundle=missing)
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="holds no PEM certificate"):
        HubSpot("t", ca_bundle=empty)


def test_a_self_signed_certificate_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _certificate("localhost", _name("localhost"), key)  # signed by its own key
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(tmp_path / "key.pem", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with FakeHubSpot(ssl_context=context) as fake:
        hs = HubSpot(fake.token, base_url=fake.url, backoff=0.01)
        with pytest.raises(hu.TransportError) as info:
            hs.create_or_update("ada@example.com")
    message = str(info.value)
    assert "self-signed" in message and "ca_bundle" in message, message
    assert info.value.attempts == 1


def test_kept_connections_the_server_closed_are_replaced(pki: dict[str, Path]) -> None:
    """HubSpot's load balancers close idle connections, over TLS without notice: the next
    upsert goes on a new connection, with no retry spent and nothing sent twice."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    with FakeHubSpot(ssl_context=context, keepalive_timeout=0.1) as fake:
        hs = HubSpot(fake.token, base_url=fake.url, ca_bundle=pki["ca"], max_retries=0)
        for i in range(4):
            assert hs.create_or_update(f"p{i}@example.com").is_new
            time.sleep(0.25)
        assert fake.request_count == len(fake.contacts) == 4
