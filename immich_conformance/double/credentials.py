"""Tokens, API key secrets and password hashes (only hashes are stored, as Immich does)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

_PBKDF2_ROUNDS = 60_000


def random_text(size: int = 32) -> str:
    """``size`` random bytes as base64 without its non-word characters (Immich's randomBytesAsText)."""
    return re.sub(r"\W", "", base64.b64encode(os.urandom(size)).decode())


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${_PBKDF2_ROUNDS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, rounds, salt, digest = stored.split("$")
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


DUMMY_HASH = hash_password(random_text(8))  # compared against for unknown users, so timing does not tell them apart


def checksum_from_text(text: str) -> bytes | None:
    """Immich's fromChecksum: 28 characters are base64, anything else hex; None when it decodes to nothing usable."""
    try:
        raw = base64.b64decode(text, validate=False) if len(text) == 28 else bytes.fromhex(text)
    except ValueError:
        return None
    return raw or None
