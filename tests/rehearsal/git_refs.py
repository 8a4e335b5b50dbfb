"""Git refs made for a test: commits of this repository's HEAD with some files changed, written as loose objects
only (no branch, no work-tree or index change), so a rehearsal can be given two refs that differ on purpose."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from immich_conformance import REPO_ROOT

IDENTITY = {"GIT_AUTHOR_NAME": "conformance test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "conformance test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}


def git(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, env={**os.environ, **IDENTITY, **(env or {})},
                          input=stdin, capture_output=True, text=True, check=True).stdout.strip()


def show(path: str) -> str:
    return git("show", f"HEAD:{path}")


def commit_of_head_with(changes: dict[str, str], message: str) -> str:
    """A commit whose tree is HEAD's with ``changes`` (path -> new text); returns its id."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", "HEAD", env=env)
        for path, text in changes.items():
            blob = git("hash-object", "-w", "--stdin", stdin=text)
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git("write-tree", env=env)
        return git("commit-tree", tree, "-p", "HEAD", "-m", message, env=env)


def edit_yaml(path: str, change: Callable[[dict], None]) -> str:
    """HEAD's YAML file at ``path`` with ``change`` applied, as text."""
    doc = yaml.safe_load(show(path))
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)
