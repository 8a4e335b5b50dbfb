"""The load test's users: LAN and external uploaders, a browser, and an uploader of bodies over the limit. Each
upload is new, valid JPEG bytes made while it is sent, written to the ledgers before it starts and when answered."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from locust import User, between, constant, task
from locust.clients import HttpSession

from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.targets import Endpoint
from immich_conformance.upload_bodies import MultipartUpload, PhotoSpec

from .backoff import Backoff, path_is_down
from .early_answer import post_lazily
from .gate import upload_name
from .ledger import UploadRecord
from .run_state import PATH_NAMES, STATE, disk_ledger, external, path_state, settings

OVERSIZE_NAME = "POST /api/assets [external, over limit]"
OVERSIZE_TIMEOUT = 60.0


class StreamedBody:
    """An upload's multipart body, generated while it is sent; ``len()`` gives requests the exact Content-Length."""

    def __init__(self, upload: MultipartUpload) -> None:
        self.upload = upload

    def __len__(self) -> int:
        return self.upload.content_length

    def __iter__(self) -> Iterator[bytes]:
        return self.upload.chunks()


class ImmichUser(User):
    abstract = True
    pace = constant(0)
    """The wait between tasks while the paths answer."""

    def on_start(self) -> None:
        self.settings = settings()
        self.backoffs: dict[str, Backoff] = {path: Backoff() for path in PATH_NAMES}

    def wait_time(self) -> float:
        return max(self.pace(), *(b.wait for b in self.backoffs.values()))

    def answered(self, path: str, status: int | None, *, ok: bool, detail: str = "") -> None:
        path_state(path, self.backoffs[path], ok=ok, down=path_is_down(status),
                    detail=detail or f"answered {status}")

    def session(self, endpoint: Endpoint) -> HttpSession:
        session = HttpSession(base_url=endpoint.url, request_event=self.environment.events.request, user=self)
        session.headers.update(endpoint.headers)
        return session

    def upload(self, client: HttpSession, path: str, auth: dict[str, str]) -> None:
        image = PhotoSpec.unique(random.choice(self.environment.parsed_options.upload_sizes))
        upload = MultipartUpload.for_photo(image)
        asset_id: str | None = None
        checksum = image.sha1_base64()
        ledger = disk_ledger()
        ledger.intend(checksum, path=path)  # before a byte is sent: a kill from here on leaves a line to clean up
        try:
            with client.post("/api/assets", data=StreamedBody(upload), name=upload_name(path), catch_response=True,
                             headers={**auth, "Content-Type": upload.content_type}) as response:
                ok = False
                if response.status_code == 201:
                    body = _json(response)
                    asset_id = body.get("id")
                    if asset_id:
                        ledger.created(checksum, asset_id)
                    ok = body.get("status") == "created" and bool(asset_id)
                    if not ok:
                        response.failure(f"201 without a created asset: {response.text[:200]}")
                else:
                    response.failure(_failure_text(response))
                self.answered(path, response.status_code, ok=ok, detail=_failure_text(response))
        finally:
            # also when the request failed or was interrupted: the clean-up looks such uploads up by checksum
            STATE.ledger.add(UploadRecord.for_photo(path, image, upload.content_length, asset_id, time.time()))


class LanUploader(ImmichUser):
    """Uploads over the LAN path (the NodePort) with the API key."""

    weight = 3
    pace = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.client = self.session(self.settings.lan)
        self.auth = {"x-api-key": self.settings.api_key}

    @task
    def upload_photo(self) -> None:
        self.upload(self.client, "lan", self.auth)


class ExternalUploader(ImmichUser):
    """Uploads through the public hostname: the edge, Access (service token), the origin proxy, Immich."""

    weight = 3
    pace = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.client = self.session(external(self.settings))
        self.auth = {**self.settings.service_token_headers, "x-api-key": self.settings.api_key}

    @task
    def upload_photo(self) -> None:
        self.upload(self.client, "external", self.auth)


class Browser(ImmichUser):
    """Pings and looks up assets uploaded in this run (by this process), on both paths."""

    weight = 1
    pace = between(0.5, 1.5)

    def on_start(self) -> None:
        super().on_start()
        self.paths = {
            "lan": (self.session(self.settings.lan), {"x-api-key": self.settings.api_key}),
            "external": (self.session(external(self.settings)),
                         {**self.settings.service_token_headers, "x-api-key": self.settings.api_key}),
        }

    def _pick(self) -> tuple[str, HttpSession, dict[str, str]]:
        path = random.choice(("lan", "external"))
        client, auth = self.paths[path]
        return path, client, auth

    @task(1)
    def ping(self) -> None:
        path, client, auth = self._pick()
        with client.get("/api/server/ping", name=f"GET /api/server/ping [{path}]", headers=auth,
                        catch_response=True) as response:
            ok = response.status_code == 200 and _json(response).get("res") == "pong"
            if not ok:
                response.failure(_failure_text(response))
            self.answered(path, response.status_code, ok=ok, detail=_failure_text(response))

    @task(3)
    def look_up_asset(self) -> None:
        asset_id = STATE.ledger.random_asset_id()
        if asset_id is None:
            self.ping()
            return
        path, client, auth = self._pick()
        with client.get(f"/api/assets/{asset_id}", name=f"GET /api/assets/{{id}} [{path}]", headers=auth,
                        catch_response=True) as response:
            ok = response.status_code == 200 and _json(response).get("id") == asset_id
            if not ok:
                response.failure(_failure_text(response))
            self.answered(path, response.status_code, ok=ok, detail=_failure_text(response))


class UnexpectedAnswer(Exception):
    pass


def _failure_text(response: Any) -> str:
    if response.status_code == 0:
        return f"no answer: {response.error!r}"
    return f"{response.status_code}: {(response.text or '')[:200]}"


def _json(response: Any) -> dict[str, Any]:
    """The body as a JSON object; empty when it is not one (an HTML error page from a proxy)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class OversizeUploader(ImmichUser):
    """Sends a body one byte over the limit through the public hostname; the edge must answer 413 (a success)."""

    weight = 1
    pace = between(1, 2)

    def on_start(self) -> None:
        super().on_start()
        self.endpoint = external(self.settings)
        self.auth = {**self.settings.service_token_headers, "x-api-key": self.settings.api_key}

    @task
    def upload_too_large(self) -> None:
        upload = MultipartUpload.with_total_size(MAX_BODY_BYTES + 1)
        headers = {**self.endpoint.headers, **self.auth, **upload.headers()}
        status: int | None = None
        with self.environment.events.request.measure("POST", OVERSIZE_NAME) as meta:
            answer = post_lazily(self.endpoint.url, "/api/assets", headers, upload.chunks(), timeout=OVERSIZE_TIMEOUT)
            status = answer.status
            meta["context"] = {"body_bytes_sent": answer.body_bytes_sent}
            if answer.status != 413:
                raise UnexpectedAnswer(f"a {MAX_BODY_BYTES + 1}-byte body was answered {answer.status} "
                                       f"({answer.detail}), not 413")
        # (an OSError from post_lazily is recorded as the request's failure by measure(); status stays None)
        error = meta.get("exception")
        self.answered("edge", status, ok=error is None, detail=repr(error))


USER_CLASSES: dict[str, type[ImmichUser]] = {
    "lan": LanUploader, "external": ExternalUploader, "browse": Browser, "oversize": OversizeUploader,
}
