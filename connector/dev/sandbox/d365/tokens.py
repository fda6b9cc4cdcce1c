"""Entra-like identity for the simulator: a self-signed loopback certificate and client-credentials tokens.

MSAL (under azure-identity) refuses a non-https authority, so the simulator serves HTTPS with a
certificate made at start (SAN 127.0.0.1 and localhost); tests pass its PEM as `connection_verify`.
Tokens are HS256 JWTs carrying `aud` (the resource asked for), `tid`, `oid`, `appid` and `exp`, checked on
`/data/` as F&O does: wrong audience, tenant or an expired token -> 401.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import ssl
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


@cache
def loopback_certificate() -> Certificate:
    """One key pair and certificate per process (EC keys are fast to make; valid one day)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ml-connector D365 sandbox")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="d365-sandbox-"))
    cert_path = folder / "ca.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(cert_path, key_path)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenError(Exception):
    """Why a bearer token was refused (goes into the WWW-Authenticate error_description)."""


class TokenIssuer:
    """Issues and checks tokens for one simulated tenant and app registration."""

    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str, lifetime: int) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime = lifetime
        self.object_id = "5d2f6c1e-8a4b-4c3e-9f1a-2b7c8d9e0f11"
        self._key = secrets.token_bytes(32)
        self._not_before = 0.0  # tokens issued before this are revoked (expire_tokens)
        self.issued = 0

    def issue(self, audience: str) -> tuple[str, int]:
        now = time.time()
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "tid": self.tenant_id,
            "oid": self.object_id,
            "appid": self.client_id,
            "iat": now,
            "nbf": int(now),
            "exp": int(now + self.lifetime),
            "jti": secrets.token_hex(8),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        self.issued += 1
        return f"{header}.{body}.{signature}", self.lifetime

    def expire_all(self) -> None:
        """Make every token issued so far invalid, as if it had expired (lets tests renew without waiting)."""
        self._not_before = time.time()

    def check(self, token: str, *, audience: str) -> dict[str, object]:
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("The token is malformed.")
        expected = _b64(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            raise TokenError("The token signature is invalid.")
        claims: dict[str, object] = json.loads(_unb64(parts[1]))
        now = time.time()
        if float(claims["exp"]) <= now or float(claims["iat"]) <= self._not_before:  # type: ignore[arg-type]
            raise TokenError("The token is expired.")
        if claims.get("aud") != audience:
            raise TokenError(f"The audience '{claims.get('aud')}' is invalid.")
        if claims.get("tid") != self.tenant_id or not claims.get("oid"):
            raise TokenError("The token was issued for another tenant.")
        return claims
