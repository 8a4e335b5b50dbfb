"""Every HTTP client of the suite verifies servers with one trust store, loaded once per process, and still verifies."""

from __future__ import annotations

import ast
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from immich_conformance import REPO_ROOT
from immich_conformance.conditions import url_answers_ok
from immich_conformance.immich_client import ImmichClient
from immich_conformance.procs import LOOPBACK, free_port
from immich_conformance.trust_store import system_trust

HTTPX_CALLS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "Client", "AsyncClient"}


@pytest.fixture
def loads_of_the_trust_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every CA bundle read into an SSL context from here on (a fresh process's view: the cache is emptied)."""
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    system_trust.cache_clear()
    yield loads
    system_trust.cache_clear()


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, trustme.CA]]:
    """An HTTPS server on loopback whose certificate no trust store holds: its own CA, given to the test."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(LOOPBACK).configure_cert(context)
    server = http.server.ThreadingHTTPServer((LOOPBACK, free_port()), Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{LOOPBACK}:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()


def test_the_clients_of_a_process_read_the_trust_store_once(loads_of_the_trust_store: list[object]) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}"
    for _ in range(3):
        ImmichClient(closed).close()
        with pytest.raises(httpx.ConnectError):
            url_answers_ok(f"{closed}/api/server/ping")()
    assert len(loads_of_the_trust_store) == 1


def test_the_shared_trust_store_still_refuses_a_server_it_does_not_trust(tls_server: tuple[str, trustme.CA]) -> None:
    url, _ = tls_server
    system_trust.cache_clear()
    client = ImmichClient(url)
    try:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get("/", authenticated=False)
    finally:
        client.close()


def test_the_shared_trust_store_is_httpxs_default_one(tls_server: tuple[str, trustme.CA], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca = tls_server
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # httpx's default honours it: so does the shared store
    system_trust.cache_clear()
    try:
        assert url_answers_ok(f"{url}/")()
    finally:
        system_trust.cache_clear()


def test_every_http_call_of_the_product_says_how_it_verifies() -> None:
    """A client made without ``verify=`` reads the whole CA bundle again: the product passes ``system_trust()``
    (or says plainly that it does not verify)."""
    unverified = []
    for folder in ("immich_conformance", "steps", "loadtests"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "httpx"
                        and node.func.attr in HTTPX_CALLS
                        and not any(keyword.arg == "verify" for keyword in node.keywords)):
                    unverified.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not unverified, f"httpx calls without verify=system_trust(): {unverified}"
