"""A release change at start: recorded and logged; one deliberately broken build silently loses one asset, the
other fails its migration and exits at every start."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from double_harness import sign_up_and_log_in, upload_form

from immich_conformance.rehearsal.health import startup_errors


def _seed(server: Any) -> tuple[str, list[str]]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        account = sign_up_and_log_in(client)
        ids = []
        for n in range(3):
            response = client.post("/api/assets", headers={"x-api-key": account.api_key},
                                   **upload_form(f"photo {n} {uuid.uuid4()}".encode()))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return account.api_key, ids


def _present(server: Any, api_key: str, ids: list[str]) -> list[str]:
    with httpx.Client(base_url=server.url, timeout=10, headers={"x-api-key": api_key}) as client:
        return [i for i in ids if client.get(f"/api/assets/{i}").status_code == 200]


@pytest.mark.parametrize(("fault", "lost"), [(None, 0), ("drop-one-asset-on-upgrade", 1)], ids=["good", "broken"])
def test_upgrade_to_a_new_release(double_factory: Any, fault: str | None, lost: int) -> None:
    old = double_factory(IMMICH_DOUBLE_VERSION="v3.0.3").start()
    api_key, ids = _seed(old)
    old.stop()
    env = {"IMMICH_DOUBLE_VERSION": "v3.1.0", **({"IMMICH_DOUBLE_FAULT": fault} if fault else {})}
    new = double_factory(db=old.db, media=old.media, **env).start()
    version = httpx.get(f"{new.url}/api/server/version", timeout=5).json()
    assert (version["major"], version["minor"], version["patch"]) == (3, 1, 0)
    assert "Version has changed: v3.0.3 -> v3.1.0" in new.process.log_tail(200)
    assert len(_present(new, api_key, ids)) == len(ids) - lost
    history = old.db.query("SELECT version FROM version_history ORDER BY id")
    assert [row[0] for row in history] == ["v3.0.3", "v3.1.0"]


def test_an_unknown_fault_is_refused(double_factory: Any) -> None:
    server = double_factory(IMMICH_DOUBLE_FAULT="eat-everything")
    assert server.run_until_exit() == 2
    assert "IMMICH_DOUBLE_FAULT='eat-everything' is not a known fault" in server.process.log_tail()


def test_a_failed_migration_stops_every_start(double_factory: Any) -> None:
    old = double_factory(IMMICH_DOUBLE_VERSION="v3.0.3").start()
    api_key, ids = _seed(old)
    old.stop()
    for _ in range(2):  # a restart meets the same failure: a crash loop
        broken = double_factory(db=old.db, media=old.media, IMMICH_DOUBLE_VERSION="v3.1.0",
                                IMMICH_DOUBLE_FAULT="fail-migration-on-upgrade")
        assert broken.run_until_exit() == 1
        assert "Migration from v3.0.3 to v3.1.0 failed" in broken.process.log_tail()
    history = old.db.query("SELECT version FROM version_history ORDER BY id")
    assert [row[0] for row in history] == ["v3.0.3"]
    again = double_factory(db=old.db, media=old.media, IMMICH_DOUBLE_VERSION="v3.0.3").start()
    assert _present(again, api_key, ids) == ids


def test_a_logged_migration_error_is_served_on(double_factory: Any) -> None:
    """The build that only looks healthy: at the first start after the upgrade it logs a failed migration as
    Immich's DatabaseRepository does, and serves on; the gate's log check finds the line, not on a good upgrade."""
    old = double_factory(IMMICH_DOUBLE_VERSION="v3.0.3").start()
    api_key, ids = _seed(old)
    assert startup_errors(old.log()) == []
    old.stop()
    broken = double_factory(db=old.db, media=old.media, IMMICH_DOUBLE_VERSION="v3.1.0",
                            IMMICH_DOUBLE_FAULT="log-migration-error-on-upgrade").start()
    assert httpx.get(f"{broken.url}/api/server/version", timeout=5).json()["minor"] == 1
    assert _present(broken, api_key, ids) == ids
    errors = startup_errors(broken.log())
    assert errors and re.search(r"\s+ERROR \[Microservices:DatabaseRepository\] Kysely migrations failed: ",
                                errors[-1]), broken.log()
    assert 'WARN [Microservices:DatabaseRepository] Migration "' in errors[0]
    broken.stop()
    again = double_factory(db=old.db, media=old.media, IMMICH_DOUBLE_VERSION="v3.1.0",
                           IMMICH_DOUBLE_FAULT="log-migration-error-on-upgrade").start()
    assert startup_errors(again.log()) == [], "only the first start after the upgrade logs it"
