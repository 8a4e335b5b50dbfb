"""First contact with a fresh Immich: the admin account and an API key for the suite."""

from __future__ import annotations

import secrets

from .base import Endpoint
from .credentials import API_KEY_ENV  # noqa: F401 - the API key of a deployment another process set up (--deployed)


class BootstrapError(RuntimeError):
    """Immich did not accept the suite's first-run set-up."""


def bootstrap_user(lan: Endpoint) -> str:
    """Create the admin (a fresh server has none), log in, and return a new API key with the "all" permission."""
    client = lan.client()
    try:
        email, password = f"admin-{secrets.token_hex(4)}@conformance.test", secrets.token_urlsafe(18)
        signup = client.sign_up_admin(email, password, "Conformance Admin")
        if signup.status_code != 201:
            raise BootstrapError(f"admin sign-up answered {signup.status_code}: {signup.text[:200]} "
                                 "(the sandbox expects a fresh server with no admin)")
        login = client.login(email, password)
        if login.status_code != 201:
            raise BootstrapError(f"login answered {login.status_code}: {login.text[:200]}")
        key = client.create_api_key(login.json()["accessToken"], "conformance-suite")
        if key.status_code != 201:
            raise BootstrapError(f"creating an API key answered {key.status_code}: {key.text[:200]}")
        return key.json()["secret"]
    finally:
        client.close()
