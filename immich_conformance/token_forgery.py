"""Tokens an attacker could present to the origin proxy, and the valid one Access would add.

Used by the proxy's adversarial corpus and by the origin scenarios, so both speak of the same forgeries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from .access_keys import KeyRing, SigningKey


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def service_claims(ring: KeyRing, aud: str, **overrides: Any) -> dict[str, Any]:
    """Claims as Access issues them to a service token; ``None`` overrides remove a claim."""
    claims = ring.claims(aud, common_name="conformance.access")
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned(ring: KeyRing, aud: str, alg: str = "none", signature: str = "") -> str:
    header = {"alg": alg, "typ": "JWT", "kid": ring.active.kid}
    return f"{b64(header)}.{b64(service_claims(ring, aud))}.{signature}"


def hs256_with_public_key(ring: KeyRing, aud: str) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the RSA public key the verifier trusts."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': ring.active.kid})}.{b64(service_claims(ring, aud))}"
    mac = hmac.new(ring.active.public_pem().encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def signed_by_stranger(ring: KeyRing, aud: str, *, known_kid: bool = True) -> str:
    """Correct claims, signed by a key that is not the team's (under one of the team's kids, or a new one)."""
    stranger = SigningKey.generate()
    if known_kid:
        stranger = SigningKey(ring.active.kid, stranger.private_key)
    return stranger.sign(service_claims(ring, aud))


def tampered(token: str) -> str:
    """A valid token whose payload was changed after signing."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["common_name"] = "someone-else.access"
    return f"{header}.{b64(claims)}.{signature}"


def expired(ring: KeyRing, aud: str, seconds_ago: int = 3600) -> str:
    now = int(time.time())
    return ring.active.sign(service_claims(ring, aud, iat=now - 86400, nbf=now - 86400, exp=now - seconds_ago))


def not_yet_valid(ring: KeyRing, aud: str) -> str:
    return ring.active.sign(service_claims(ring, aud, nbf=int(time.time()) + 600))


# The origin scenarios' vocabulary: what an operator calls each token -> how to make it (None: send no token).
ORIGIN_TOKENS: dict[str, Callable[[KeyRing, str], str | None]] = {
    "no Access token": lambda ring, aud: None,
    "a forged token": signed_by_stranger,
    "an expired token": expired,
    "a not-yet-valid token": not_yet_valid,
    "a token for another application": lambda ring, aud: ring.active.sign(service_claims(ring, "0" * 64)),
    "a token from another team": lambda ring, aud: ring.active.sign(
        service_claims(ring, aud, iss="https://another-team.cloudflareaccess.com")
    ),
    "an unsigned token": unsigned,
    "a valid Access token": lambda ring, aud: ring.active.sign(service_claims(ring, aud)),
}
