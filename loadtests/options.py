"""The load test's own command-line arguments (locust custom arguments), their parsing, and the run's bounds."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any

from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.upload_bodies import MIN_PHOTO_BYTES, MultipartUpload, PhotoSpec

DEFAULT_UPLOAD_SIZES = "64KiB,1MiB,8MiB"
DEFAULT_MAX_USERS = 50
DEFAULT_MAX_RUN_TIME = "30m"
# Gate defaults for the embedded sandbox on a 2-core machine shared with other work: measured per path (10 users,
# default sizes) about 26 uploads/s, 85 MB/s, p95 350 ms; the defaults leave room for a machine three times slower
# and for the 50-user cap, and still fail a path that stalls.
DEFAULT_MAX_FAILURE_RATIO = 0.01
DEFAULT_MAX_UPLOAD_P95_MS = 5000.0
DEFAULT_MIN_UPLOADS_PER_S = 5.0
DEFAULT_MIN_UPLOAD_MB_PER_S = 15.0
MULTIPART_OVERHEAD = MultipartUpload.for_photo(PhotoSpec.unique(MIN_PHOTO_BYTES)).content_length - MIN_PHOTO_BYTES
LARGEST_UPLOAD = MAX_BODY_BYTES - MULTIPART_OVERHEAD

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class UsageError(Exception):
    """The command line asks for a run this load test refuses; the message says why and what to do."""


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use bytes or a unit like 64KiB, 1MiB, 5MB")
    return int(float(match.group(1)) * _UNITS[unit])


def parse_upload_sizes(text: str) -> list[int]:
    """``"64KiB,1MiB,8MiB"`` -> image sizes in bytes; each upload picks one at random (repeat a size to weight it)."""
    sizes = [parse_size(part) for part in text.split(",") if part.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("--upload-sizes needs at least one size, e.g. 64KiB,1MiB,8MiB")
    for size in sizes:
        if not MIN_PHOTO_BYTES <= size <= LARGEST_UPLOAD:
            raise argparse.ArgumentTypeError(
                f"upload size {size} is outside {MIN_PHOTO_BYTES}..{LARGEST_UPLOAD} bytes (the smallest valid JPEG "
                f"here, and the largest image whose request body stays within the {MAX_BODY_BYTES}-byte limit)")
    return sizes


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _timespan(text: str) -> int:
    from locust.util.timespan import parse_timespan  # here, not on import: importing locust patches with gevent

    try:
        return parse_timespan(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def env_var(option: str) -> str:
    """The environment variable of a custom argument, named as locust names its own: ``--min-uploads-per-s`` is
    ``LOCUST_MIN_UPLOADS_PER_S``."""
    return "LOCUST_" + option.removeprefix("--").replace("-", "_").upper()


def add_arguments(parser: Any) -> None:
    """Register the custom arguments on locust's parser (none is editable in the web UI: they shape the run). Each
    is also read, as locust's own are, from an environment variable (``env_var``) and from locust's configuration
    files: a run started by another program (the rehearsal's load phase) takes its settings from there."""

    def arg(*names: str, **kwargs: Any) -> None:
        parser.add_argument(*names, include_in_web_ui=False, env_var=env_var(names[0]), **kwargs)

    arg("--lan-weight", type=_non_negative_int, default=3, help="weight of the LAN uploader (default 3)")
    arg("--external-weight", type=_non_negative_int, default=3, help="weight of the external uploader (default 3)")
    arg("--browse-weight", type=_non_negative_int, default=1,
        help="weight of the browsing user: ping and lookups of this run's assets (default 1)")
    arg("--oversize-weight", type=_non_negative_int, default=1,
        help="weight of the user sending bodies one byte over the limit through the edge, expecting 413 (default 1)")
    arg("--upload-sizes", type=parse_upload_sizes, default=parse_upload_sizes(DEFAULT_UPLOAD_SIZES),
        metavar="SIZES", help=f"image sizes, one picked at random per upload (default {DEFAULT_UPLOAD_SIZES})")
    arg("--max-users", type=_non_negative_int, default=DEFAULT_MAX_USERS,
        help=f"user cap: refuse more users than this (default {DEFAULT_MAX_USERS})")
    arg("--max-run-time", type=_timespan, default=_timespan(DEFAULT_MAX_RUN_TIME), metavar="TIME",
        help=f"longest run allowed; web UI runs are stopped after it (default {DEFAULT_MAX_RUN_TIME})")
    arg("--max-failure-ratio", type=_non_negative_float, default=DEFAULT_MAX_FAILURE_RATIO,
        help=f"gate: failed requests / all requests at most this (default {DEFAULT_MAX_FAILURE_RATIO:g})")
    arg("--max-upload-p95-ms", type=_non_negative_float, default=DEFAULT_MAX_UPLOAD_P95_MS,
        help=f"gate: p95 upload response time per path at most this many ms (default {DEFAULT_MAX_UPLOAD_P95_MS:g})")
    arg("--min-uploads-per-s", type=_non_negative_float, default=DEFAULT_MIN_UPLOADS_PER_S,
        help="gate: successful uploads per second on each upload path whose weight is above 0, at least this "
             f"(default {DEFAULT_MIN_UPLOADS_PER_S:g})")
    arg("--min-upload-mb-per-s", type=_non_negative_float, default=DEFAULT_MIN_UPLOAD_MB_PER_S,
        help="gate: request-body MB (10^6 bytes) per second on each upload path whose weight is above 0, at least "
             f"this (default {DEFAULT_MIN_UPLOAD_MB_PER_S:g}, meant for the default --upload-sizes)")
    arg("--summary-json", default="", metavar="PATH", help="also write the measured values and the verdict here")
    arg("--ledger", default="", metavar="PATH",
        help="the ledger of every asset the run creates, kept until they are deleted; the next run against the same "
             "target deletes what a killed run left (default: a file per target under "
             "~/.cache/immich-conformance/ledgers/; the embedded sandbox's work folder without --host)")
    arg("--keep-sandbox", action="store_true", default=False,
        help="keep the embedded sandbox's work folder (logs, NAS, database) after the run")


@dataclass(frozen=True)
class Weights:
    lan: int
    external: int
    browse: int
    oversize: int

    @classmethod
    def from_options(cls, options: Any) -> Weights:
        return cls(options.lan_weight, options.external_weight, options.browse_weight, options.oversize_weight)

    @property
    def needs_external(self) -> bool:
        return bool(self.external or self.browse or self.oversize)

    @property
    def upload_paths(self) -> list[str]:
        return [path for path, weight in (("lan", self.lan), ("external", self.external)) if weight]


def check_bounds(options: Any) -> None:
    """Refuse unbounded or oversized runs before anything starts (raises UsageError)."""
    weights = Weights.from_options(options)
    if not any((weights.lan, weights.external, weights.browse, weights.oversize)):
        raise UsageError("every user weight is 0: give --lan-weight, --external-weight, --browse-weight or "
                         "--oversize-weight a value above 0")
    if options.max_users < 1:
        raise UsageError("--max-users must be at least 1")
    if options.headless and not options.run_time:
        raise UsageError(f"a headless run needs a time limit: add -t/--run-time, e.g. -t 30s (at most "
                         f"{options.max_run_time}s, see --max-run-time)")
    if options.run_time and options.run_time > options.max_run_time:
        raise UsageError(f"-t {options.run_time}s is longer than the {options.max_run_time}s this load test allows; "
                         "shorten -t or raise --max-run-time")
    if options.num_users is not None and options.num_users > options.max_users:
        raise UsageError(f"-u {options.num_users} is more users than the cap of {options.max_users}; lower -u or "
                         "raise --max-users")
