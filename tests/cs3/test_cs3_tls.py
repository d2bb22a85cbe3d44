"""TLS: the client trusts a given CA on both planes and refuses a server it cannot verify."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cs3sync.cs3 import CS3Client, CS3Config, errors
from cs3sync.cs3.channel import grpc_credentials, http_verify

pytestmark = pytest.mark.anyio


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_http_verify_and_grpc_credentials(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "server")
    cfg = CS3Config(
        host="localhost:1", ssl_ca_cert=str(cert), ssl_client_cert=str(cert), ssl_client_key=str(key)
    )
    ctx = http_verify(cfg)
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert isinstance(grpc_credentials(cfg), grpc.ChannelCredentials)
    assert http_verify(cfg.replace(ssl_verify=False)) is False
    assert http_verify(CS3Config(host="h:1")) is True  # system store


async def test_grpc_over_tls(tmp_path: Path) -> None:
    import cs3.gateway.v1beta1.gateway_api_pb2_grpc as gw_grpc

    cert, key = _self_signed(tmp_path, "server")
    other, _ = _self_signed(tmp_path, "other")
    secret = tmp_path / "secret"
    secret.write_text("relativity")
    server = grpc.aio.server()
    gw_grpc.add_GatewayAPIServicer_to_server(gw_grpc.GatewayAPIServicer(), server)
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        base = CS3Config(
            host=f"localhost:{port}", client_id="einstein", token_path=str(secret), retry_attempts=1
        )
        # trusted CA: the handshake succeeds and the bare servicer answers UNIMPLEMENTED to the login
        async with CS3Client(base.replace(ssl_ca_cert=str(cert))) as client:
            with pytest.raises(errors.Unimplemented):
                await client.stat("/home/einstein")
        # a CA that did not sign the server's certificate: refused, reported as unreachable
        async with CS3Client(base.replace(ssl_ca_cert=str(other))) as client:
            with pytest.raises(errors.Transient) as exc:
                await client.stat("/home/einstein")
            assert exc.value.connectivity
    finally:
        await server.stop(None)
