"""Cloudflare Access signing keys, JWKS documents and JWTs, as Cloudflare documents them.

A team signs Access JWTs with RS256 and names the key in the header's ``kid``. Its JWKS, served at
``https://<team>.cloudflareaccess.com/cdn-cgi/access/certs``, has ``keys`` (JWKs), ``public_cert`` (the current key's
certificate) and ``public_certs`` (all of them). Keys rotate; the previous key stays published for a while.

The key ring lives in one JSON file so that the process that serves the JWKS (the edge stand-in) and the process that
mints test tokens (the suite) share it; the serving side re-reads it, so a rotation written by one is seen by the other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

DEFAULT_TTL_SECONDS = 24 * 3600


def issuer_for(team_domain: str) -> str:
    return f"https://{team_domain}"


def jwks_url_for(team_domain: str) -> str:
    return f"https://{team_domain}/cdn-cgi/access/certs"


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, bits: int = 2048) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(kid=secrets.token_hex(32), private_key=key)

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def public_pem(self) -> str:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": jwk["e"], "n": jwk["n"]}

    def certificate_pem(self, team_domain: str) -> str:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, team_domain)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .sign(self.private_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid, **(headers or {})})


@dataclass
class KeyRing:
    """A team's Access keys: ``keys[-1]`` signs; earlier ones stay published until retired."""

    team_domain: str
    keys: list[SigningKey] = field(default_factory=list)

    @classmethod
    def generate(cls, team_domain: str, count: int = 2) -> KeyRing:
        return cls(team_domain=team_domain, keys=[SigningKey.generate() for _ in range(count)])

    @property
    def issuer(self) -> str:
        return issuer_for(self.team_domain)

    @property
    def active(self) -> SigningKey:
        return self.keys[-1]

    def key(self, kid: str) -> SigningKey:
        for k in self.keys:
            if k.kid == kid:
                return k
        raise KeyError(f"no key with kid {kid!r} in the key ring of {self.team_domain}")

    def rotate(self, keep: int = 2) -> SigningKey:
        """Add a new signing key; keep the newest ``keep`` keys published (the previous one stays valid)."""
        new = SigningKey.generate()
        self.keys = [*self.keys, new][-keep:]
        return new

    def jwks(self) -> dict[str, Any]:
        certs = [{"kid": k.kid, "cert": k.certificate_pem(self.team_domain)} for k in self.keys]
        return {"keys": [k.public_jwk() for k in self.keys], "public_cert": certs[-1], "public_certs": certs}

    def claims(
        self,
        aud: str | list[str],
        *,
        ttl: int = DEFAULT_TTL_SECONDS,
        common_name: str | None = None,
        email: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Claims as Access puts them: service tokens carry ``common_name`` and an empty ``sub``, users ``email``."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "aud": [aud] if isinstance(aud, str) else list(aud),
            "iss": self.issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "type": "app",
            "identity_nonce": secrets.token_urlsafe(12),
        }
        if common_name is not None:
            claims.update(common_name=common_name, sub="")
        else:
            claims.update(email=email or "operator@example.test", sub=secrets.token_hex(16), country="XX")
        return claims

    def mint(self, aud: str | list[str], **kwargs: Any) -> str:
        return self.active.sign(self.claims(aud, **kwargs))

    # --- sharing between processes -------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        doc = {"team_domain": self.team_domain, "keys": [{"kid": k.kid, "pem": k.private_pem()} for k in self.keys]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        doc = json.loads(path.read_text())
        # The ring's keys are the run's own (generated by ``KeyRing``, saved mode 0600): checking each RSA key's
        # arithmetic again on every load (about 30 ms of CPU a key) guards against keys from elsewhere, which these
        # are not.
        keys = [
            SigningKey(kid=k["kid"], private_key=serialization.load_pem_private_key(
                k["pem"].encode(), password=None, unsafe_skip_rsa_key_validation=True))
            for k in doc["keys"]
        ]
        return cls(team_domain=doc["team_domain"], keys=keys)  # type: ignore[arg-type]
