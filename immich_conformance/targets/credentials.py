"""The secrets every command reads, under one set of environment variable names.

``IMMICH_API_KEY`` (an Immich API key, permission "all") and ``CF_ACCESS_CLIENT_ID`` / ``CF_ACCESS_CLIENT_SECRET`` (an
Access service token): the names Immich's and Cloudflare's own documentation use. The pytest targets, the load test
and the rehearsal all read them here. The names of earlier versions are still accepted, with a one-line deprecation
message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

API_KEY_ENV = "IMMICH_API_KEY"
TOKEN_ID_ENV = "CF_ACCESS_CLIENT_ID"
TOKEN_SECRET_ENV = "CF_ACCESS_CLIENT_SECRET"
DEPRECATED = {
    "IMMICH_CONFORMANCE_API_KEY": API_KEY_ENV,
    "IMMICH_CONFORMANCE_SERVICE_TOKEN_ID": TOKEN_ID_ENV,
    "IMMICH_CONFORMANCE_SERVICE_TOKEN_SECRET": TOKEN_SECRET_ENV,
}
_warned: set[str] = set()


def secret(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of ``name`` (stripped; "" when unset), or of its deprecated old name, saying so once."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if value:
        return value
    for old, new in DEPRECATED.items():
        if new == name and env.get(old, "").strip():
            if old not in _warned:
                _warned.add(old)
                print(f"immich-conformance: {old} is deprecated, set {new} instead", file=sys.stderr)
            return env[old].strip()
    return ""


def secrets_environment(api_key: str, token: tuple[str, str] | None = None) -> dict[str, str]:
    """The environment that hands these secrets to a command the suite starts (the deprecated names cleared)."""
    env = {old: "" for old in DEPRECATED}
    env[API_KEY_ENV] = api_key
    if token is not None:
        env[TOKEN_ID_ENV], env[TOKEN_SECRET_ENV] = token
    return env
