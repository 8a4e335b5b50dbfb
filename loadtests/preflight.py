"""Before the first user starts: both paths answer, the API key works, the edge accepts the service token.

Each check is one request with a short timeout; the first failure on a path ends that path's checks. The problems
come back as sentences saying what failed and how to fix it (empty: the target is ready).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

import httpx

from immich_conformance.trust_store import system_trust

from .target_settings import ENV_API_KEY, ENV_EXTERNAL_URL, ENV_TOKEN_ID, ENV_TOKEN_SECRET, TargetSettings

TIMEOUT = httpx.Timeout(10.0)


@dataclass(frozen=True)
class Probe:
    status: int | None
    detail: str


def _request(client: httpx.Client, method: str, path: str, **kwargs: object) -> Probe:
    try:
        response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    except httpx.TransportError as exc:
        return Probe(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return Probe(response.status_code, response.text[:160].strip().replace("\n", " "))


def _pong(client: httpx.Client) -> Probe:
    probe = _request(client, "GET", "/api/server/ping")
    if probe.status == 200 and '"pong"' not in probe.detail.replace(" ", ""):
        return Probe(-1, f"200 without {{\"res\":\"pong\"}}: {probe.detail}")
    return probe


def _check_key(client: httpx.Client, where: str, api_key: str) -> str | None:
    """The key authenticates, and may upload (a bulk-upload-check of a checksum no asset has)."""
    headers = {"x-api-key": api_key}
    me = _request(client, "GET", "/api/users/me", headers=headers)
    if me.status in (401, 403):
        return (f"the API key is refused {where} (GET /api/users/me answered {me.status}: {me.detail}): set "
                f"{ENV_API_KEY} to a valid Immich API key with the \"all\" permission")
    if me.status != 200:
        return f"GET /api/users/me {where} answered {me.status or 'nothing'} ({me.detail}), not 200"
    checksum = base64.b64encode(secrets.token_bytes(20)).decode()
    check = _request(client, "POST", "/api/assets/bulk-upload-check", headers=headers,
                     json={"assets": [{"id": "preflight", "checksum": checksum}]})
    if check.status != 200:
        return (f"the API key may not upload {where} (POST /api/assets/bulk-upload-check answered {check.status}: "
                f"{check.detail}): give the key in {ENV_API_KEY} the \"all\" permission")
    return None


def check_target(settings: TargetSettings) -> list[str]:
    problems: list[str] = []
    lan = settings.lan
    with httpx.Client(base_url=lan.url, headers=lan.headers, timeout=TIMEOUT, follow_redirects=False,
                      verify=system_trust()) as client:
        pong = _pong(client)
        if pong.status is None:
            problems.append(f"the LAN path {lan.url} does not answer ({pong.detail}): start Immich, or give --host "
                            "the URL of its NodePort")
        elif pong.status != 200:
            problems.append(f"the LAN path {lan.url} answered GET /api/server/ping with {pong.status} "
                            f"({pong.detail}), not 200 pong: is --host Immich's NodePort?")
        elif problem := _check_key(client, f"on the LAN path {lan.url}", settings.api_key):
            problems.append(problem)
    external = settings.external
    if external is None:
        return problems
    where = f"{external.url}" + (f" (Host: {external.headers['Host']})" if "Host" in external.headers else "")
    headers = {**external.headers, **settings.service_token_headers}
    with httpx.Client(base_url=external.url, headers=headers, timeout=TIMEOUT, follow_redirects=False,
                      verify=system_trust()) as client:
        pong = _pong(client)
        if pong.status is None:
            problems.append(f"the external path {where} does not answer ({pong.detail}): check {ENV_EXTERNAL_URL} "
                            "and that the edge (or the tunnel) is up")
        elif pong.status in (301, 302, 303, 307, 401, 403):
            problems.append(f"the edge refused the service token on {where} (GET /api/server/ping answered "
                            f"{pong.status}): set {ENV_TOKEN_ID} and {ENV_TOKEN_SECRET} to a service token the "
                            "Access application's policy allows (Service Auth)")
        elif pong.status != 200:
            problems.append(f"the external path {where} answered GET /api/server/ping with {pong.status} "
                            f"({pong.detail}), not 200 pong: the edge cannot reach Immich through the origin proxy")
        elif not problems and (problem := _check_key(client, f"through the edge {where}", settings.api_key)):
            problems.append(problem)
    return problems
