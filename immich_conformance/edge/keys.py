"""The team's signing keys as the edge sees them: read from the key-ring file, and read again when the file changes.

Another process (the suite) may rotate the ring and save it; the next request after that signs with the new active key
and the JWKS lists the newly published keys. The file is replaced atomically by ``KeyRing.save``; a file that cannot be
read or parsed keeps the previous ring in use and is reported in the log once per change.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from immich_conformance.access_keys import KeyRing

log = logging.getLogger("edge.keys")


class KeyRingError(RuntimeError):
    """The key-ring file cannot be used."""


@dataclass(frozen=True)
class LoadedRing:
    ring: KeyRing
    jwks_body: bytes  # the JWKS document, rendered once per ring (its certificates are generated)
    stamp: tuple[int, int, int]


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _load(path: Path, team_domain: str) -> LoadedRing:
    stamp = _stamp(path)
    try:
        ring = KeyRing.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyRingError(f"cannot load the key ring {path}: {exc}") from None
    if not ring.keys:
        raise KeyRingError(f"the key ring {path} holds no keys; save a ring made by KeyRing.generate()")
    if ring.team_domain != team_domain:
        raise KeyRingError(f"the key ring {path} belongs to team {ring.team_domain!r}, but the edge serves "
                           f"{team_domain!r}; generate the ring for {team_domain!r} or fix team_domain")
    return LoadedRing(ring=ring, jwks_body=json.dumps(ring.jwks()).encode(), stamp=stamp)


class KeyRingSource:
    """The current key ring, re-read from ``path`` whenever its modification time, size or inode changes."""

    def __init__(self, path: Path, team_domain: str) -> None:
        self.path = path
        self.team_domain = team_domain
        self._lock = threading.Lock()
        self._loaded = _load(path, team_domain)  # at start a bad file is fatal
        self._bad_stamp: tuple[int, int, int] | None = None

    def current(self) -> LoadedRing:
        try:
            stamp = _stamp(self.path)
        except OSError as exc:
            if self._bad_stamp != (0, 0, 0):
                log.warning("key ring %s cannot be read (%s); still using the keys loaded before", self.path, exc)
                self._bad_stamp = (0, 0, 0)
            return self._loaded
        if stamp == self._loaded.stamp or stamp == self._bad_stamp:
            return self._loaded
        with self._lock:
            if stamp == self._loaded.stamp:
                return self._loaded
            try:
                loaded = _load(self.path, self.team_domain)
            except (KeyRingError, OSError) as exc:
                log.warning("%s; still using the keys loaded before", exc)
                self._bad_stamp = stamp
                return self._loaded
            old_kids = [k.kid for k in self._loaded.ring.keys]
            new_kids = [k.kid for k in loaded.ring.keys]
            log.info("key ring reloaded: signing kid %s (was %s); published %d key(s)%s",
                     loaded.ring.active.kid[:12], self._loaded.ring.active.kid[:12], len(new_kids),
                     "" if old_kids != new_kids else " (unchanged)")
            self._loaded = loaded
            self._bad_stamp = None
            return loaded
