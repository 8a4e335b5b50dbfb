"""Cloudflare Access decisions for one request: who it is (service token, CF_Authorization cookie) or how it is refused.

The decision looks at headers only; it never reads the request body.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
from multidict import CIMultiDictProxy, MultiMapping

from immich_conformance.edge.config import EdgeConfig, ServiceToken
from immich_conformance.edge.keys import LoadedRing
from immich_conformance.limits import ACCESS_COOKIE, SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER


@dataclass(frozen=True)
class Granted:
    """The request may pass; ``assertion`` goes to the origin in Cf-Access-Jwt-Assertion."""

    assertion: str
    via: str  # "service-token" or "cookie"
    who: str  # the service token's name, or the user's email
    email: str | None = None
    set_cookie: str | None = None  # a CF_Authorization value to hand the client, if any


@dataclass(frozen=True)
class Refused:
    """The request is answered at the edge and never reaches the origin."""

    status: int  # 302 (login), 401 or 403
    reason: str
    location: str | None = None


Decision = Granted | Refused


def login_url(config: EdgeConfig, path_qs: str) -> str:
    """Where Access sends a visitor without a session: the team domain's login page for this application."""
    query = urlencode({"kid": config.aud, "redirect_url": path_qs or "/"})
    return f"https://{config.team_domain}/cdn-cgi/access/login/{config.public_hostname}?{query}"


def service_token_claims(config: EdgeConfig, token: ServiceToken, now: float | None = None) -> dict[str, Any]:
    """The application token Access issues for a service token, field for field as Cloudflare documents it."""
    issued = int(time.time() if now is None else now)
    return {
        "type": "app",
        "aud": [config.aud],
        "exp": issued + config.session_seconds,
        "iss": config.issuer,
        "common_name": token.client_id,
        "iat": issued,
        "sub": "",
    }


def cookie_values(headers: MultiMapping[str] | CIMultiDictProxy[str], name: str) -> list[str]:
    """All values of cookie ``name`` in the request's Cookie header(s)."""
    values: list[str] = []
    for header in headers.getall("Cookie", []):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key.strip() == name:
                values.append(value.strip().strip('"'))
    return values


def verify_app_token(token: str, config: EdgeConfig, loaded: LoadedRing) -> dict[str, Any] | None:
    """The claims of an application token this team issued for this application, or None if it is not one."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    if not isinstance(kid, str):
        return None
    try:
        key = loaded.ring.key(kid)
    except KeyError:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=config.aud,
            issuer=config.issuer,
            options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("type") != "app":
        return None
    return claims


def _find_token(config: EdgeConfig, client_id: str, client_secret: str) -> ServiceToken | None:
    for token in config.service_tokens:
        # compare every token's id and secret in constant time; the id alone is not secret but cheap to hide too
        id_ok = hmac.compare_digest(token.client_id.encode(), client_id.encode())
        secret_ok = hmac.compare_digest(token.client_secret.encode(), client_secret.encode())
        if id_ok and secret_ok:
            return token
    return None


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method == "OPTIONS" and "Origin" in headers and "Access-Control-Request-Method" in headers


def decide(
    method: str,
    path_qs: str,
    headers: CIMultiDictProxy[str],
    config: EdgeConfig,
    loaded: LoadedRing,
) -> Decision:
    """Access's answer for a request to the application, from its headers."""
    ids = headers.getall(SERVICE_TOKEN_ID_HEADER, [])
    secrets_ = headers.getall(SERVICE_TOKEN_SECRET_HEADER, [])
    if ids or secrets_:
        token = None
        if len(ids) == 1 and len(secrets_) == 1:
            token = _find_token(config, ids[0].strip(), secrets_[0].strip())
        if token is not None:
            assertion = loaded.ring.active.sign(service_token_claims(config, token))
            return Granted(
                assertion=assertion,
                via="service-token",
                who=token.name,
                set_cookie=None if config.strict_service_token_auth else assertion,
            )
        if config.strict_service_token_auth:
            what = "duplicate or incomplete service-token headers" if not (len(ids) == 1 == len(secrets_)) \
                else "service token not valid"
            return Refused(401, what)
        # without strict service-token authentication a failed token falls back to the login flow

    for value in cookie_values(headers, ACCESS_COOKIE):
        claims = verify_app_token(value, config, loaded)
        if claims is not None:
            email = claims.get("email") if isinstance(claims.get("email"), str) else None
            who = email or str(claims.get("common_name") or claims.get("sub") or "session")
            return Granted(assertion=value, via="cookie", who=who, email=email)

    if is_preflight(method, headers):
        return Refused(403, "CORS preflight without credentials")
    if config.service_auth_401_redirect:
        return Refused(401, "no credentials")
    return Refused(302, "no credentials", location=login_url(config, path_qs))
