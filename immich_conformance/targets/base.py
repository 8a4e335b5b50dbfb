"""What every target offers the scenarios, and nothing about where it runs."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import httpx

from ..access_keys import KeyRing
from ..immich_client import ImmichClient
from ..procs import WaitTimeout, wait_until
from ..trust_store import system_trust
from .supervision import Death

IMMICH_MEDIA_LOCATION = PurePosixPath("/data")
TargetT = TypeVar("TargetT", bound="Target")

SENTINEL_HINTS = {
    "immich-server": " (Immich logs requests at IMMICH_LOG_LEVEL=debug or verbose only: the test overlays set it "
                     "with stack/components/request-log)",
}
NAS_SETTLE_SECONDS = 30.0
"""How long Immich's background jobs get to change the NAS after an answer (a duplicate's received copy removed, a
forced delete's originals removed): ~20-50 ms on an idle server; the bound leaves room for a busy one and a slow NAS."""
LogMarks = dict[str, Any]
"""Where each component's log stood at a moment (a file offset, a timestamp: the target's own business)."""


class TargetUnsupported(Exception):
    """This target cannot do what a scenario asks; the message says why (the scenario is skipped with it)."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def client(self, api_key: str | None = None, **extra_headers: str) -> ImmichClient:
        return ImmichClient(self.url, api_key=api_key, headers={**self.headers, **extra_headers})


class Target(ABC):
    """A running stack: its LAN endpoint (the NodePort), its public hostname behind Cloudflare, the origin proxy as
    cloudflared sees it, credentials, the NAS library, and its components' logs for diagnostics."""

    name: str
    public_hostname: str
    team_domain: str
    aud: str
    media_location: PurePosixPath = IMMICH_MEDIA_LOCATION
    """Immich's IMMICH_MEDIA_LOCATION on this target: the NAS as the server sees it."""
    persists_between_runs: bool = False
    """Whether the target outlives the run (a deployment the run found, not one it started empty): what an earlier,
    killed run uploaded may still be on it."""

    def start(self: TargetT) -> TargetT:
        """Bring the target up; on any failure stop whatever was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        """What ``start`` does (nothing, for a target that only points at a running deployment)."""
        return None

    def __enter__(self: TargetT) -> TargetT:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Set by each target when it starts.
    _lan: Endpoint
    _external: Endpoint
    _api_key: str

    @property
    def lan(self) -> Endpoint:
        """The NodePort on the LAN."""
        return self._lan

    @property
    def external(self) -> Endpoint:
        """The public hostname as an unauthenticated visitor reaches it."""
        return self._external

    @property
    @abstractmethod
    def service_token_headers(self) -> dict[str, str]:
        """The headers of an Access service token allowed into the application."""

    @property
    def api_key(self) -> str:
        """An Immich API key (permission "all") of the suite's user."""
        return self._api_key

    @property
    def origin(self) -> Endpoint:
        """The origin proxy, where cloudflared delivers requests."""
        raise TargetUnsupported(f"the {self.name} target cannot reach the origin proxy directly")

    def access_keys(self) -> KeyRing:
        """The team's signing keys, to mint valid and forged tokens for the origin proxy."""
        raise TargetUnsupported(f"the {self.name} target has no access to the Access team's signing keys")

    @property
    def nas_root(self) -> Path:
        """Where the NAS library (Immich's /data) can be read from this machine."""
        raise TargetUnsupported(f"the {self.name} target gives no way to read the NAS library")

    def nas_path(self, original_path: str) -> Path:
        """Map an ``originalPath`` Immich reports (under its media location) onto the NAS as this machine sees it."""
        try:
            relative = PurePosixPath(original_path).relative_to(self.media_location)
        except ValueError:
            raise AssertionError(f"Immich stored an asset at {original_path}, which is not under the media location "
                                 f"the suite was given ({self.media_location}): set media_location (the live "
                                 "settings) to the server's IMMICH_MEDIA_LOCATION") from None
        return self.nas_root.joinpath(*relative.parts)

    def nas_upload_files(self) -> set[Path]:
        """Every file under the NAS's upload/ folder, markers excepted."""
        upload = self.nas_root / "upload"
        return {p for p in upload.rglob("*") if p.is_file() and p.name != ".immich"} if upload.exists() else set()

    def wait_no_new_upload_files(self, before: set[Path], what: str, timeout: float = NAS_SETTLE_SECONDS) -> None:
        """Wait until no file is under upload/ that was not in ``before``. Immich writes what it receives there and
        removes what it does not keep in background jobs after its answer, so a look made at once proves nothing."""
        try:
            wait_until(lambda: not (self.nas_upload_files() - before), timeout=timeout, interval=0.1, what=what)
        except WaitTimeout:
            new = sorted(str(p) for p in self.nas_upload_files() - before)
            raise AssertionError(f"{what}: after {timeout:.0f}s the NAS still holds {len(new)} new file(s): "
                                 f"{', '.join(new[:5])}") from None

    def split_horizon(self) -> tuple[str, str | None]:
        """Which side of split-horizon DNS the suite runs on ("lan" or "internet") and the node's LAN address."""
        raise TargetUnsupported(f"the {self.name} target has no public DNS name to resolve")

    def may_send_over_limit_externally(self) -> None:
        """Raise TargetUnsupported where a body over the edge limit must not go to the public hostname."""
        return None

    def dead_components(self) -> list[Death]:
        """The components that exited while the target was up (a target that starts nothing: none)."""
        return []

    def storage_problem(self, marks: LogMarks | None = None) -> str | None:
        """One line saying why the NAS cannot take files (read-only, full), where this machine can tell; else None.
        ``marks``: also look in the server's log since then for a write error it met."""
        return None

    def log_marks(self) -> LogMarks:
        """Positions in each component's log, to read what a scenario caused."""
        return {}

    def logs_since(self, marks: LogMarks) -> dict[str, str]:
        """Each component's log from ``marks`` on."""
        return {}

    def sentinel_url(self, component: str) -> str:
        """A URL whose request ``component`` answers and logs (any status): see ``seen_by``."""
        raise TargetUnsupported(f"the {self.name} target cannot show what {component} received")

    def diagnostics(self, marks: LogMarks) -> dict[str, str]:
        """What a person needs to understand a failed scenario: each component's log since ``marks``, and more."""
        return self.logs_since(marks)

    def seen_by(self, component: str, marker: str, marks: LogMarks, timeout: float = 15.0) -> bool:
        """Whether ``component`` ("origin-proxy" or "immich-server") logged ``marker`` since ``marks``.

        Logs are written late (buffers) but in order. So a sentinel request is sent to the component after the
        request in question, and the verdict waits until the sentinel shows in the log: by then the marker would
        show too, had the component received it. A "not seen" is therefore never just a log not yet flushed.
        The sentinel is a request each component logs (Immich: an API request it answers 200, logged at debug);
        a "not seen" from Immich means something only for a request Immich would log (docs/request-evidence.md).
        """
        return bool(self.log_lines_with(component, marker, marks, timeout))

    def log_lines_with(self, component: str, marker: str, marks: LogMarks, timeout: float = 15.0) -> list[str]:
        """The lines of ``component``'s log since ``marks`` that hold ``marker``, once the log is known complete up to
        now (the sentinel of ``seen_by``)."""
        sentinel = f"conformance-sentinel-{uuid.uuid4().hex}"
        url = self.sentinel_url(component)
        httpx.get(f"{url}{'&' if '?' in url else '?'}{sentinel}=1", timeout=10, verify=system_trust())
        hint = SENTINEL_HINTS.get(component, "")
        log = wait_until(lambda: (text := self.logs_since(marks).get(component, "")) and sentinel in text and text,
                         timeout=timeout, interval=0.1, what=f"{component}'s log to show the sentinel request{hint}")
        return [line for line in log.splitlines() if marker in line]

    # --- what only a Kubernetes cluster has (the cluster target overrides these) ----------------------------------
    def _cluster_only(self, what: str) -> TargetUnsupported:
        return TargetUnsupported(f"{what} needs a Kubernetes cluster (--target cluster); the {self.name} target "
                                 "runs none")

    def deployments(self) -> dict[str, dict[str, Any]]:
        raise self._cluster_only("checking Deployments")

    def wait_available(self, names: list[str] | None = None, *, since: float = 0.0, timeout: float = 300) -> float:
        raise self._cluster_only("waiting for Deployments")

    def restart(self, deployment: str) -> float:
        raise self._cluster_only("restarting pods")

    def restart_without_waiting(self, deployment: str) -> float:
        raise self._cluster_only("restarting pods")

    def stays_unready(self, deployment: str, *, since: float, seconds: float) -> bool:
        raise self._cluster_only("watching pod readiness")

    def node_ports(self) -> dict[str, list[int]]:
        raise self._cluster_only("listing node ports")

    def tunnel_destinations(self) -> list[str]:
        raise self._cluster_only("reading the tunnel's route")

    def unmount_nas(self) -> None:
        raise self._cluster_only("taking the NAS away")

    def mount_nas(self) -> bool:
        """The NAS back in place; False when it already was."""
        raise self._cluster_only("putting the NAS back")

    def require_network_policy_enforcement(self) -> None:
        raise self._cluster_only("checking NetworkPolicies")

    def can_connect(self, source: str, destination: str) -> bool:
        raise self._cluster_only("connecting pod to pod")

    def admission_of_privileged_pod(self) -> str:
        """What the cluster answers when asked (server-side dry run: nothing is created) to admit a privileged pod
        into the stack's namespace: its refusal, or "" when it would admit it."""
        raise self._cluster_only("asking the cluster to admit a pod")

    @abstractmethod
    def close(self) -> None:
        """Stop what the target started; leave nothing behind."""
