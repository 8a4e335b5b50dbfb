"""Start-up: a clean exit on SIGTERM, and Immich's storage-integrity refusals (an unmounted NAS writes nothing)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from double_harness import Database, files_under, sign_up_and_log_in, upload_form

from immich_conformance.double.storage_integrity import MEDIA_FOLDERS

DOCS = "Please see https://immich.app/docs/administration/system-integrity#folder-checks for more information."


def test_first_start_marks_every_folder_then_an_empty_mount_is_refused(double_factory: Any, run_dir: Path) -> None:
    first = double_factory().start()
    markers = {folder: first.media / folder / ".immich" for folder in MEDIA_FOLDERS}
    assert all(marker.is_file() for marker in markers.values())
    assert first.stop() == 0  # SIGTERM: a clean exit
    assert "Shutting down" in first.log()

    # The NAS did not mount: the same path is now an empty directory.
    nas = first.media.with_name(first.media.name + "-real")
    first.media.rename(nas)
    first.media.mkdir()
    refused = double_factory(db=first.db, media=first.media)
    assert refused.run_until_exit() == 1
    expected = (f'Failed to read: "<UPLOAD_LOCATION>/encoded-video/.immich '
                f'({first.media}/encoded-video/.immich) - {DOCS}"')
    assert expected in refused.log()
    assert list(first.media.iterdir()) == []  # nothing written to the wrong disk

    # The NAS is back, but one folder lost its marker: that folder is named.
    first.media.rmdir()
    nas.rename(first.media)
    markers["upload"].unlink()
    named = double_factory(db=first.db, media=first.media)
    assert named.run_until_exit() == 1
    assert '"<UPLOAD_LOCATION>/upload/.immich' in named.log()


def test_ignoring_mount_check_errors_starts_anyway(double_factory: Any) -> None:
    first = double_factory().start()
    first.stop()
    (first.media / "thumbs" / ".immich").unlink()
    lenient = double_factory(db=first.db, media=first.media, IMMICH_IGNORE_MOUNT_CHECK_ERRORS="true",
                             IMMICH_DOUBLE_VERSION="v3.1.0").start()
    assert "Ignoring mount folder errors" in lenient.log()
    version = httpx.get(f"{lenient.url}/api/server/version", timeout=5).json()
    assert version == {"major": 3, "minor": 1, "patch": 0, "prerelease": None}


def test_unwritable_media_location_is_refused(double_factory: Any, run_dir: Path) -> None:
    not_a_folder = run_dir / "media-is-a-file"
    not_a_folder.write_text("a file where the media folder should be")
    refused = double_factory(media=not_a_folder)
    assert refused.run_until_exit() == 1
    assert f'Failed to create "<UPLOAD_LOCATION>/encoded-video/.immich - {DOCS}"' in refused.log()


def test_inconsistent_media_location_is_refused(double_factory: Any) -> None:
    first = double_factory().start()
    with httpx.Client(base_url=first.url, timeout=10) as client:
        account = sign_up_and_log_in(client)
        uploaded = client.post("/api/assets", headers={"x-api-key": account.api_key}, **upload_form(os.urandom(999)))
        assert uploaded.status_code == 201
    first.stop()
    db: Database = first.db
    db.query("UPDATE system_metadata SET value = '{\"location\": \"/elsewhere\"}' WHERE key = 'MediaLocation'")
    refused = double_factory(db=db, media=first.media)
    assert refused.run_until_exit() == 1
    assert "Detected an inconsistent media location" in refused.log()


def test_moved_media_location_migrates_paths(double_factory: Any, run_dir: Path) -> None:
    first = double_factory().start()
    with httpx.Client(base_url=first.url, timeout=10) as client:
        account = sign_up_and_log_in(client)
        asset_id = client.post("/api/assets", headers={"x-api-key": account.api_key},
                               **upload_form(os.urandom(777))).json()["id"]
    first.stop()
    moved = run_dir / f"{first.media.name}-moved"
    shutil.move(first.media, moved)
    second = double_factory(db=first.db, media=moved).start()
    assert "Media location changed" in second.log()
    info = httpx.get(f"{second.url}/api/assets/{asset_id}", headers={"x-api-key": account.api_key}, timeout=5).json()
    assert info["originalPath"].startswith(f"{moved}/upload/")
    assert Path(info["originalPath"]).is_file()
    assert files_under(moved / "upload")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IMMICH_MEDIA_LOCATION": "relative/media"}, "IMMICH_MEDIA_LOCATION='relative/media' must be absolute"),
        ({"IMMICH_PORT": "http"}, "IMMICH_PORT='http' is not a TCP port"),
        ({"IMMICH_DOUBLE_VERSION": "latest"}, "IMMICH_DOUBLE_VERSION='latest' is not a release version"),
    ],
)
def test_bad_configuration_is_explained(double_factory: Any, env: dict[str, str], message: str) -> None:
    server = double_factory(**env)
    assert server.run_until_exit() == 2
    assert message in server.log() and "Traceback" not in server.log()


def test_unreachable_database_is_explained(double_factory: Any) -> None:
    broken = Database(env={"DB_HOSTNAME": "127.0.0.1", "DB_PORT": "1", "DB_USERNAME": "u", "DB_PASSWORD": "p",
                           "DB_DATABASE_NAME": "d"}, dsn="")
    server = double_factory(db=broken, IMMICH_DOUBLE_DB_WAIT="0.3")
    assert server.run_until_exit() == 1
    log = server.log()
    assert "cannot connect to the database at 127.0.0.1:1/d" in log and "Traceback" not in log
