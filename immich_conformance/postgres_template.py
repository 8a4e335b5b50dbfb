"""A fresh PostgreSQL data directory made once per machine and copied for each new server (as testing.postgresql's
initdb cache does), instead of running ``initdb`` at every start of a sandbox.

``initdb`` runs the server several times to fill the catalogs and writes ~40 MB; a copy of its result writes the same
bytes and runs nothing. On 2 cores a start, a database and a stop took 0.80 core-s with ``initdb`` and 0.60 from the
template (writing to disk is most of what remains).

The template is the output of ``initdb`` with the suite's ``pg_hba.conf``, copied before any server ran on it, in the
suite's cache (``postgres-template/<key>``). The key covers the server binary (path, size, modification time) and
``initdb``'s options, so a PostgreSQL upgrade or other options make a new template. A template appears whole or not at
all: it is copied into a folder of its own and renamed into place; when two runs make it at once, the first rename wins
and the other run drops its copy.

Copies go through ``cp -a``: run as root, it keeps the files' owner (the ``postgres`` user), which Python's
``shutil.copytree`` does not.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from immich_conformance import run_folders
from immich_conformance.user_cache import suite_cache_dir

MARKERS = ("PG_VERSION", "global/pg_control", "pg_hba.conf")


class TemplateError(RuntimeError):
    """A copy from or to the template failed."""


def template_dir(server_binary: Path, initdb_options: Sequence[str]) -> Path:
    """Where the template for this server binary and these ``initdb`` options lives (it may not exist yet)."""
    st = server_binary.stat()
    key = "\0".join([str(server_binary), str(st.st_size), str(st.st_mtime_ns), *initdb_options])
    return suite_cache_dir("postgres-template") / hashlib.sha256(key.encode()).hexdigest()[:16]


def is_complete(folder: Path) -> bool:
    return all((folder / marker).is_file() for marker in MARKERS)


def copy_contents(source: Path, destination: Path) -> None:
    """Copy what ``source`` holds into the existing folder ``destination``, keeping owners and modes (the folder's
    own too)."""
    _cp(f"{source}/.", destination)


def _cp(source: str, destination: Path) -> None:
    result = subprocess.run(["cp", "-a", "--", source, str(destination)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TemplateError(f"cannot copy {source} to {destination}: {result.stderr.strip()}")


def publish(data_dir: Path, template: Path) -> None:
    """Keep a copy of the fresh cluster in ``data_dir`` as ``template``, unless another run has published it first.

    The copy is made inside a folder marked as this process's (``run_folders``), so that what a run killed while
    copying leaves is removed by the next one. A failure here costs only the next start's ``initdb``: it is not
    raised."""
    if is_complete(template):
        return
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        staging = run_folders.fresh(f".{template.name}.", template.parent)
    except OSError:
        return
    try:
        _cp(str(data_dir), staging / "data")
        os.rename(staging / "data", template)
    except (OSError, TemplateError):
        pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
