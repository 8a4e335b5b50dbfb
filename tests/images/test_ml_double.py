"""The machine-learning double answers what Immich's machine learning answers to health checks, and nothing more."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.ml_double import SettingsError, listen_address
from immich_conformance.procs import LOOPBACK, ManagedProcess, free_port


@pytest.fixture(scope="module")
def ml_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("ml") / "ml.log"
    env = {**os.environ, "IMMICH_HOST": LOOPBACK, "IMMICH_PORT": str(port)}
    process = ManagedProcess("ml-double", [sys.executable, "-m", "immich_conformance.ml_double"], log_path=log,
                             env=env, cwd=REPO_ROOT).start()
    url = f"http://{LOOPBACK}:{port}"
    try:
        process.wait_ready(lambda: httpx.get(f"{url}/ping", timeout=1).status_code == 200, timeout=20)
        yield url
    finally:
        process.stop()


def test_ping_answers_pong_as_text(ml_url: str) -> None:
    response = httpx.get(f"{ml_url}/ping")
    assert response.status_code == 200
    assert response.text == "pong"
    assert response.headers["content-type"].startswith("text/plain")


def test_root_names_the_service(ml_url: str) -> None:
    response = httpx.get(f"{ml_url}/")
    assert response.status_code == 200
    assert response.json() == {"message": "Immich ML"}


def test_inference_is_refused_not_invented(ml_url: str) -> None:
    response = httpx.post(f"{ml_url}/predict", files={"entries": (None, "{}")})
    assert response.status_code == 501
    assert "detail" in response.json()


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nothing", 404), ("GET", "/predict", 405),
                                                         ("POST", "/ping", 405)])
def test_anything_else_is_a_fastapi_style_error(ml_url: str, method: str, path: str, status: int) -> None:
    response = httpx.request(method, f"{ml_url}{path}")
    assert response.status_code == status
    assert set(response.json()) == {"detail"}


def test_listen_address_follows_immichs_environment() -> None:
    assert listen_address({}) == ("0.0.0.0", 3003)
    assert listen_address({"IMMICH_HOST": "[::]", "IMMICH_PORT": "3004"}) == ("::", 3004)
    with pytest.raises(SettingsError, match="IMMICH_PORT"):
        listen_address({"IMMICH_PORT": "http"})


def test_a_bad_port_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "immich_conformance.ml_double"], capture_output=True, text=True,
                          env={**os.environ, "IMMICH_PORT": "70000"}, cwd=REPO_ROOT, timeout=30, check=False)
    assert done.returncode == 2
    assert "IMMICH_PORT='70000' is not a TCP port" in done.stderr
    assert "Traceback" not in done.stderr
