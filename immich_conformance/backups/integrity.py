"""Immich's integrity checks run to completion over its API, and what they found.

``POST /api/jobs`` with ``integrity-missing-files``, ``integrity-untracked-files`` and ``integrity-checksum-mismatch``;
then ``GET /api/queues`` until the ``integrityCheck`` queue is idle; then ``GET /api/admin/integrity/summary`` and
every page of ``GET /api/admin/integrity/report`` per type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from ..procs import wait_until

CHECKS = ("integrity-missing-files", "integrity-untracked-files", "integrity-checksum-mismatch")
TYPES = ("missing_file", "untracked_file", "checksum_mismatch")
QUEUE = "integrityCheck"
PAGE = 500


@dataclass
class IntegrityFindings:
    counts: dict[str, int]
    paths: dict[str, list[str]] = field(default_factory=dict)

    def new_since(self, before: IntegrityFindings) -> dict[str, list[str]]:
        """Missing files and checksum mismatches found now and not in ``before`` (e.g. after an upgrade)."""
        return {kind: new for kind, paths in self.problems().items()
                if (new := sorted(set(paths) - set(before.paths.get(kind, []))))}

    def relative_to(self, media: str) -> IntegrityFindings:
        """The same findings with their paths relative to the server's media location ``media``."""
        return IntegrityFindings(self.counts, {kind: [media_relative(p, media) for p in paths]
                                               for kind, paths in self.paths.items()})

    def problems(self) -> dict[str, list[str]]:
        """The findings that mean lost or damaged photos: missing files and checksum mismatches."""
        return {kind: self.paths.get(kind, []) for kind in ("missing_file", "checksum_mismatch")
                if self.counts.get(kind)}


def media_relative(path: str, media: str) -> str:
    """``path`` as the server reports it, relative to its media location ``media`` (the sandbox's folder, or /data in
    a container); a path outside it as it is."""
    media = media.rstrip("/") + "/"
    return path[len(media):] if path.startswith(media) else path


def has_integrity_checks(client: httpx.Client) -> bool:
    """Whether the release behind ``client`` has the integrity checks (Immich v3 and later; unknown paths before)."""
    return client.get("/api/admin/integrity/summary").status_code != 404


def _idle(client: httpx.Client) -> bool:
    queues = client.get("/api/queues")
    queues.raise_for_status()
    stats = next(q["statistics"] for q in queues.json() if q["name"] == QUEUE)
    return stats["active"] + stats["waiting"] + stats["delayed"] == 0


def integrity_summary(client: httpx.Client, *, timeout: float = 600.0) -> IntegrityFindings:
    """Run Immich's three integrity checks on the server behind ``client`` (admin API key) and read their report."""
    for name in CHECKS:
        queued = client.post("/api/jobs", json={"name": name})
        if queued.status_code != 204:
            raise RuntimeError(f"queueing {name} answered {queued.status_code}: {queued.text[:200]}")
    wait_until(lambda: _idle(client), timeout=timeout, interval=0.2, what="Immich's integrity checks to finish")
    summary = client.get("/api/admin/integrity/summary")
    summary.raise_for_status()
    findings = IntegrityFindings(counts={k: int(v) for k, v in summary.json().items()})
    for kind in TYPES:
        cursor: str | None = None
        paths: list[str] = []
        while True:
            params = {"type": kind, "limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/admin/integrity/report", params=params)
            page.raise_for_status()
            body = page.json()
            paths += [item["path"] for item in body["items"]]
            cursor = body.get("nextCursor")
            if not cursor:
                break
        findings.paths[kind] = sorted(paths)
    return findings
