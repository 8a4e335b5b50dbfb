"""A thin Immich API client: only the calls the conformance scenarios and load tests make."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from .trust_store import system_trust
from .upload_bodies import MultipartUpload

TIMEOUT = httpx.Timeout(30.0, read=120.0)


@dataclass
class ImmichClient:
    """Talks to one endpoint (the LAN NodePort, or the public hostname through the edge) with fixed extra headers.

    ``api_key`` authenticates to Immich; ``headers`` carry what the path in front of Immich needs (an Access service
    token, a Host header). Every call returns the raw ``httpx.Response``: the scenarios judge status and body.
    """

    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=TIMEOUT,
                                  follow_redirects=False, verify=system_trust())

    def close(self) -> None:
        self._http.close()

    def _auth(self, authenticated: bool) -> dict[str, str]:
        return {"x-api-key": self.api_key} if authenticated and self.api_key else {}

    def get(self, path: str, *, authenticated: bool = True, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._http.get(path, headers={**self._auth(authenticated), **(headers or {})})

    def ping(self) -> httpx.Response:
        return self.get("/api/server/ping", authenticated=False)

    def version(self) -> httpx.Response:
        return self.get("/api/server/version", authenticated=False)

    def me(self, *, authenticated: bool = True) -> httpx.Response:
        return self.get("/api/users/me", authenticated=authenticated)

    def well_known(self) -> httpx.Response:
        return self.get("/.well-known/immich", authenticated=False)

    def upload(self, upload: MultipartUpload, *, chunked: bool = False) -> httpx.Response:
        """Stream an upload; ``chunked`` drops Content-Length so the body goes as Transfer-Encoding: chunked."""
        headers = {**self._auth(True), **upload.headers()}
        if chunked:
            headers.pop("Content-Length")
        return self._http.post("/api/assets", content=_stream(upload.chunks()), headers=headers)

    def asset(self, asset_id: str) -> httpx.Response:
        return self.get(f"/api/assets/{asset_id}")

    def bulk_upload_check(self, checksums: dict[str, str]) -> httpx.Response:
        """``checksums``: client-side id -> base64 or hex SHA-1."""
        assets = [{"id": key, "checksum": value} for key, value in checksums.items()]
        return self._http.post("/api/assets/bulk-upload-check", json={"assets": assets}, headers=self._auth(True))

    def delete_assets(self, ids: list[str], *, force: bool = True) -> httpx.Response:
        return self._http.request("DELETE", "/api/assets", json={"ids": ids, "force": force}, headers=self._auth(True))

    def sign_up_admin(self, email: str, password: str, name: str) -> httpx.Response:
        body = {"email": email, "password": password, "name": name}
        return self._http.post("/api/auth/admin-sign-up", json=body)

    def login(self, email: str, password: str) -> httpx.Response:
        return self._http.post("/api/auth/login", json={"email": email, "password": password})

    def create_api_key(self, access_token: str, name: str) -> httpx.Response:
        return self._http.post(
            "/api/api-keys",
            json={"name": name, "permissions": ["all"]},
            headers={"Authorization": f"Bearer {access_token}"},
        )


def _stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield from chunks


def json_or_empty(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}
