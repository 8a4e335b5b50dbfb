"""Shared pieces of the API double's tests: a database per server, the double as a subprocess, uploads, accounts."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from immich_conformance.double.spec_check import OpenApiSpec
from immich_conformance.log_colours import without_colours
from immich_conformance.postgres import LocalPostgres
from immich_conformance.procs import LOOPBACK, ManagedProcess, free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"
_names = itertools.count(1)


@dataclass
class Database:
    env: dict[str, str]
    dsn: str

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []


def new_database(postgres: LocalPostgres) -> Database:
    name = f"immich_{next(_names)}"
    dsn = postgres.create_database(name, f"pw-{uuid.uuid4().hex[:12]}", name)
    return Database(env=postgres.immich_env(), dsn=dsn)


class DoubleServer:
    """``python -m immich_conformance.double`` as a subprocess with Immich's environment."""

    def __init__(self, run_dir: Path, db: Database, media: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.media = media
        self.db = db
        self.url = f"http://{LOOPBACK}:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMMICH_", "DB_"))}
        env.update(db.env)
        env.update({
            "IMMICH_PORT": str(self.port),
            "IMMICH_HOST": LOOPBACK,
            "IMMICH_MEDIA_LOCATION": str(media),
            "REDIS_HOSTNAME": LOOPBACK,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        })
        env.update(extra_env)
        self.process = ManagedProcess(
            f"immich-double-{self.port}", [sys.executable, "-m", "immich_conformance.double"],
            log_path=run_dir / f"double-{self.port}.log", env=env, cwd=REPO_ROOT,
        )

    def _ping(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/server/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 15) -> DoubleServer:
        self.process.start()
        self.process.wait_ready(self._ping, timeout=timeout)
        return self

    def run_until_exit(self, timeout: float = 15) -> int:
        """Start and expect the process to end by itself (a refused start); its exit code."""
        self.process.start()
        assert self.process.proc is not None
        try:
            return self.process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.stop()
            raise AssertionError(f"the double kept running; log:\n{self.process.log_tail()}") from None

    def stop(self) -> int | None:
        self.process.stop()
        return self.process.proc.returncode if self.process.proc else None

    def log(self) -> str:
        """The log as text (Immich colours it, and so does the double): what a reader of its lines sees."""
        return without_colours(self.process.log_since(0))

    def raw_log(self) -> str:
        return self.process.log_since(0)


def checked_client(base_url: str, spec: OpenApiSpec, **kwargs: Any) -> httpx.Client:
    def check(response: httpx.Response) -> None:
        response.read()
        spec.check_response(response)

    return httpx.Client(base_url=base_url, timeout=10, event_hooks={"response": [check]}, **kwargs)


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    access_token: str
    api_key: str


def sign_up_and_log_in(client: httpx.Client, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Account:
    signed = client.post("/api/auth/admin-sign-up", json={"email": email, "name": "Admin", "password": password})
    assert signed.status_code == 201, signed.text
    login = client.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 201, login.text
    token = login.json()["accessToken"]
    key = client.post("/api/api-keys", json={"name": "suite", "permissions": ["all"]},
                      headers={"Authorization": f"Bearer {token}"})
    assert key.status_code == 201, key.text
    return Account(signed.json()["id"], email, token, key.json()["secret"])


def add_user(db: Database, email: str) -> Account:
    """A second, non-admin user with an API key, made directly in the database (the double has no user admin API)."""
    user_id = str(uuid.uuid4())
    secret = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
    db.query("INSERT INTO users (id, email, name, password_hash) VALUES (%s, %s, %s, 'x')", (user_id, email, "Other"))
    db.query("INSERT INTO api_keys (id, key_hash, user_id, name, permissions) VALUES (%s, %s, %s, 'k', %s)",
             (str(uuid.uuid4()), hashlib.sha256(secret.encode()).digest(), user_id, ["all"]))
    return Account(user_id, email, "", secret)


def upload_form(data: bytes, name: str = "photo.jpg", **fields: str) -> dict[str, Any]:
    form = {"fileCreatedAt": "2024-05-01T10:00:00.000Z", "fileModifiedAt": "2024-05-01T12:00:00+02:00"}
    form.update(fields)
    return {"files": {"assetData": (name, data, "image/jpeg")}, "data": form}


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def wait_for(probe: Any, what: str, timeout: float = 10) -> Any:
    return wait_until(probe, timeout=timeout, what=what)


def read_http_reply(sock: socket.socket) -> tuple[str, bytes]:
    """Read one HTTP/1.1 reply from a raw socket (its timeout bounds the wait): the head and the body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.decode(errors="replace"), body
