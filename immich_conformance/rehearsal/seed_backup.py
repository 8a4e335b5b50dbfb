"""A user's nightly backup and library, made for real on the from-release: the stack's containers with the Immich
API double (``--runtime containers --images local``), a library seeded (users, photos, a video, albums one of them
shared, tags, links; ``rehearsal.library``), then Immich's own ``backup-database`` job. The backup file and a copy
of the media location (its ``backups/`` left out) are written to OUT, ready for ``rehearse --restore`` and
``verify-backup``.

    python -m immich_conformance.rehearsal.seed_backup OUT      # prints the backup's path, then the library's
"""

from __future__ import annotations

import argparse
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ..backups import copy_library
from ..procs import WaitTimeout, wait_until
from ..targets.base import Target
from ..targets.containers import ContainersSandbox
from ..trust_store import system_trust
from ..upload_bodies import MultipartUpload, PhotoSpec
from .library import seed_library

BACKUP_TIMEOUT = 120.0
EXTRA_PHOTO_BYTES = 2048
UPLOADERS = 4


def upload_photos(target: Target, count: int) -> None:
    """``count`` more small unique photos for the admin (a large library, for the benchmark)."""
    client = target.lan.client(target.api_key)

    def one(_: int) -> None:
        answer = client.upload(MultipartUpload.for_photo(PhotoSpec.unique(EXTRA_PHOTO_BYTES)))
        if answer.status_code != 201:
            raise RuntimeError(f"uploading a photo answered {answer.status_code}: {answer.text[:200]}")

    try:
        with ThreadPoolExecutor(UPLOADERS) as pool:
            list(pool.map(one, range(count)))
    finally:
        client.close()


def seed_backup(out: Path, progress=print, extra_photos: int = 0,  # noqa: ANN001
                immich_tag: str | None = None) -> tuple[Path, Path]:
    """Seed a library on the from-release (``immich_tag``: the double's build of that release; default the pinned
    one), back it up by Immich's job; (the backup, the library copy) under ``out``. ``extra_photos``: that many more
    small photos of the admin's."""
    out.mkdir(parents=True, exist_ok=True)
    with ContainersSandbox(images="local", immich_tag=immich_tag,
                           progress=lambda m: progress(f"containers: {m}")) as target:
        library = seed_library(target)
        progress(f"seeded: {library.summary()}")
        if extra_photos:
            upload_photos(target, extra_photos)
            progress(f"uploaded {extra_photos} more photos")
        backups = target.nas_root / "backups"
        with httpx.Client(base_url=target.lan.url, headers={"x-api-key": target.api_key}, timeout=30,
                          verify=system_trust()) as client:
            answer = client.post("/api/jobs", json={"name": "backup-database"})
            if answer.status_code != 204:
                raise RuntimeError(f"queueing backup-database answered {answer.status_code}: {answer.text[:200]}")

        def written() -> list[Path]:
            return sorted(backups.glob("immich-db-backup-*.sql.gz")) if backups.is_dir() else []

        try:
            wait_until(lambda: bool(written()), timeout=BACKUP_TIMEOUT, interval=0.5, what="Immich's backup file")
        except WaitTimeout:
            log = target.logs_since({}).get("immich-server", "").splitlines()
            said = [line for line in log if "Backup" in line or "backup" in line][-10:]
            raise RuntimeError(f"Immich wrote no backup in {backups} within {BACKUP_TIMEOUT:.0f}s; its log says:\n"
                               + "\n".join(said or log[-10:])) from None
        backup = Path(shutil.copy2(written()[-1], out))
        copied = copy_library(target.nas_root, out / "library")
    progress(f"backup {backup} ({backup.stat().st_size} bytes); library {out / 'library'} ({copied} files)")
    return backup, out / "library"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the folder to write the backup and the library copy into")
    parser.add_argument("--release", metavar="vX.Y.Z", help="the Immich release whose double build writes the backup "
                                                            "(default: the pinned one)")
    args = parser.parse_args(argv)
    try:
        backup, library = seed_backup(Path(args.out), progress=lambda m: print(f"[seed-backup] {m}", file=sys.stderr,
                                                                                 flush=True), immich_tag=args.release)
    except (RuntimeError, OSError) as exc:
        print(f"seed-backup: {exc}", file=sys.stderr)
        return 1
    print(backup)
    print(library)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
