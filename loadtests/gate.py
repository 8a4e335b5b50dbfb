"""The pass/fail gate: the measured figures of a run, the thresholds, and which of them a run broke."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .ledger import LedgerBook
from .verification import CleanupReport, LossReport

if TYPE_CHECKING:
    from locust.stats import RequestStats

UPLOAD_NAME = "POST /api/assets [{path}]"
MB = 10**6


def upload_name(path: str) -> str:
    return UPLOAD_NAME.format(path=path)


@dataclass(frozen=True)
class Thresholds:
    max_failure_ratio: float
    max_upload_p95_ms: float
    min_uploads_per_s: float
    min_upload_mb_per_s: float

    @classmethod
    def from_options(cls, options: Any) -> Thresholds:
        return cls(options.max_failure_ratio, options.max_upload_p95_ms, options.min_uploads_per_s,
                   options.min_upload_mb_per_s)

    def describe(self) -> str:
        return (f"failure ratio <= {self.max_failure_ratio:g}; per upload path: p95 <= {self.max_upload_p95_ms:g} ms, "
                f">= {self.min_uploads_per_s:g} uploads/s, >= {self.min_upload_mb_per_s:g} MB/s; every over-limit "
                "body answered 413; 0 lost")


@dataclass
class PathFigures:
    uploads: int
    failures: int
    p95_ms: float
    uploads_per_s: float
    mb: float
    mb_per_s: float


@dataclass
class Measurements:
    window_s: float
    requests: int
    failures: int
    paths: dict[str, PathFigures]
    oversize: dict[str, int] = field(default_factory=dict)
    loss: LossReport | None = None
    cleanup: CleanupReport | None = None
    incomplete_sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Anything else that fails the run: a breached user cap, errors raised inside users."""
    leftovers: dict[str, Any] = field(default_factory=dict)
    """Uploads of earlier runs found in the ledger before this one (and deleted), and what this run left behind."""

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def ratio(self, attribute: str) -> float | None:
        lan, external = self.paths.get("lan"), self.paths.get("external")
        if not lan or not external or not getattr(lan, attribute):
            return None
        return getattr(external, attribute) / getattr(lan, attribute)

    def to_json(self, thresholds: Thresholds, broken: list[str]) -> dict[str, Any]:
        return {
            "verdict": "failed" if broken else "passed",
            "passed": not broken,
            "broken": broken,
            "thresholds": asdict(thresholds),
            "window_s": self.window_s,
            "requests": self.requests,
            "failures": self.failures,
            "failure_ratio": self.failure_ratio,
            "paths": {name: asdict(p) for name, p in self.paths.items()},
            "external_to_lan": {"uploads_per_s": self.ratio("uploads_per_s"), "mb_per_s": self.ratio("mb_per_s")},
            "oversize": self.oversize,
            "lost": len(self.loss.lost) if self.loss else None,
            "corrupt": len(self.loss.corrupt) if self.loss else None,
            "checked": self.loss.checked if self.loss else 0,
            "verified": self.verified,
            "unverified": self.loss.unverified if self.loss else None,
            "target_unreachable": (self.loss.unreachable if self.loss else "") or (
                self.cleanup.unreachable if self.cleanup else ""),
            "nas_checked": self.loss.nas_checked if self.loss else False,
            "deleted": self.cleanup.deleted if self.cleanup else 0,
            "strays_deleted": self.cleanup.strays_found if self.cleanup else 0,
            "cleanup_failures": self.cleanup.failures if self.cleanup else [],
            "incomplete_sources": self.incomplete_sources,
            "problems": self.problems,
            "leftovers": self.leftovers,
        }

    @property
    def verified(self) -> int:
        """Accepted uploads found intact."""
        return self.loss.checked - self.loss.lost_or_corrupt if self.loss else 0


def measure(stats: RequestStats, book: LedgerBook, upload_paths: list[str], oversize_name: str) -> Measurements:
    """Figures over one window for every path: from the test's start to its last request."""
    total = stats.total
    start, end = total.start_time, total.last_request_timestamp or total.start_time
    window = max(end - start, 0.0)
    paths: dict[str, PathFigures] = {}
    for path in upload_paths:
        entry = stats.get(upload_name(path), "POST")
        ok = entry.num_requests - entry.num_failures
        mb = book.bytes_created(path, start, end + 1.0) / MB
        paths[path] = PathFigures(
            uploads=ok,
            failures=entry.num_failures,
            p95_ms=float(entry.get_response_time_percentile(0.95) or 0.0),
            uploads_per_s=ok / window if window else 0.0,
            mb=mb,
            mb_per_s=mb / window if window else 0.0,
        )
    oversize = stats.entries.get((oversize_name, "POST"))
    return Measurements(
        window_s=window,
        requests=total.num_requests,
        failures=total.num_failures,
        paths=paths,
        oversize={"sent": oversize.num_requests, "answered_413": oversize.num_requests - oversize.num_failures}
        if oversize else {},
    )


def evaluate(m: Measurements, t: Thresholds) -> list[str]:
    """What the run broke; empty when it passes."""
    broken = []
    if m.failure_ratio > t.max_failure_ratio:
        broken.append(f"failure ratio {m.failure_ratio:.4f} ({m.failures} of {m.requests}) > {t.max_failure_ratio:g}")
    for name, p in m.paths.items():
        if p.p95_ms > t.max_upload_p95_ms:
            broken.append(f"p95 upload time on {name} {p.p95_ms:.0f} ms > {t.max_upload_p95_ms:g} ms")
        if p.uploads_per_s < t.min_uploads_per_s:
            broken.append(f"uploads/s on {name} {p.uploads_per_s:.2f} < {t.min_uploads_per_s:g}")
        if p.mb_per_s < t.min_upload_mb_per_s:
            broken.append(f"MB/s on {name} {p.mb_per_s:.2f} < {t.min_upload_mb_per_s:g}")
    if m.oversize and m.oversize["answered_413"] < m.oversize["sent"]:
        broken.append(f"{m.oversize['sent'] - m.oversize['answered_413']} of {m.oversize['sent']} over-limit bodies "
                      "were not answered 413")
    if m.loss is None:
        broken.append("the nothing-lost check did not run")
    elif m.loss.lost_or_corrupt:
        broken.append(f"{len(m.loss.lost)} lost and {len(m.loss.corrupt)} corrupt of {m.loss.checked} accepted uploads")
    if m.loss is not None and m.loss.unverified:
        broken.append(f"{m.loss.unverified} accepted uploads could not be verified (target unreachable: "
                      f"{m.loss.unreachable})")
    if m.cleanup is not None and m.cleanup.failures:
        broken.append(f"clean-up incomplete: {'; '.join(m.cleanup.failures[:3])}")
    if m.incomplete_sources:
        broken.append(f"the final upload records of {', '.join(m.incomplete_sources)} never reached the master: "
                      "their last uploads were neither checked nor deleted")
    broken.extend(m.problems)
    return broken


def render(m: Measurements, t: Thresholds, broken: list[str]) -> str:
    lines = [
        "",
        "=== Upload gate ===",
        f"thresholds: {t.describe()}",
        f"window: {m.window_s:.1f} s   requests: {m.requests}   failed: {m.failures}   "
        f"failure ratio: {m.failure_ratio:.4f}",
    ]
    for name, p in m.paths.items():
        lines.append(f"{name:>9}: {p.uploads} uploads ({p.failures} failed), {p.uploads_per_s:.2f} uploads/s, "
                     f"{p.mb:.1f} MB at {p.mb_per_s:.2f} MB/s, p95 {p.p95_ms:.0f} ms")
    ups, mbs = m.ratio("uploads_per_s"), m.ratio("mb_per_s")
    if ups is not None and mbs is not None:
        lines.append(f"external/lan: {ups:.2f} x uploads/s, {mbs:.2f} x MB/s")
    if m.oversize:
        lines.append(f" oversize: {m.oversize['answered_413']} of {m.oversize['sent']} over-limit bodies answered 413")
    if m.loss is not None:
        lines.append(f"nothing lost: {m.loss.checked} accepted uploads checked by {m.loss.method}: "
                     f"{len(m.loss.lost)} lost, {len(m.loss.corrupt)} corrupt")
        if m.loss.unverified:
            lines.append(f"  {m.verified} uploads verified, {m.loss.unverified} could not be verified (target "
                         f"unreachable: {m.loss.unreachable})")
        lines.extend(f"    {line}" for line in (m.loss.lost + m.loss.corrupt)[:20])
    if m.cleanup is not None:
        lines.append(f"clean-up: {m.cleanup.deleted} assets deleted (force), of them {m.cleanup.strays_found} "
                     "stored without a 201" + (f"; failures: {m.cleanup.failures}" if m.cleanup.failures else ""))
    if m.leftovers.get("remaining"):
        lines.append(f"left behind: {m.leftovers['remaining']} uploads of this run stay in the ledger "
                     f"{m.leftovers.get('ledger')}; the next run against this target deletes them first")
    if broken:
        lines.append("GATE FAILED:")
        lines.extend(f"  - {b}" for b in broken)
    else:
        lines.append("GATE PASSED")
    return "\n".join(lines)
