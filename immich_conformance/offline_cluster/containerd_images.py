"""Images in the offline cluster's containerd (its ``k8s.io`` namespace, the kubelet's): archives imported by ``ctr``
when containerd does not already hold them at the same manifest digest, and second names given to images it holds.
There is no registry: this is how every image reaches the node.

The kubelet's side of containerd (CRI) names every image it has seen by its id too (``sha256:<config digest>``). When
an import gives a name a newer build, that id name still holds the older one, and rebuilt images would pile up in the
cluster's state for good: after importing, the id names that no longer share an image with any other name are
removed (a container running the older image keeps its own copy of the files until it stops)."""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .build import fmt_duration
from .errors import ClusterError


class ContainerdImages:
    def __init__(self, ctr: Sequence[str], progress: Callable[[str], None]) -> None:
        self.ctr = list(ctr)
        self.progress = progress

    def present(self) -> dict[str, str]:
        """Every image reference containerd holds, with its manifest digest."""
        result = subprocess.run([*self.ctr, "images", "ls"], capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"containerd does not answer ({result.stderr.strip()}): is the cluster up? "
                               "Run `immich-conformance cluster up` first")
        present = {}
        for line in result.stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3:
                present[fields[0]] = fields[2]
        return present

    def import_archives(self, archives: Sequence[Path]) -> None:
        """Import image archives; one already there with the same manifest digest is skipped."""
        present = self.present()
        for archive in archives:
            ref, digest = archive_ref_digest(Path(archive))
            if present.get(ref) == digest:
                continue
            t0 = time.monotonic()
            result = subprocess.run([*self.ctr, "images", "import", "--local", str(archive)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise ClusterError(f"importing {archive} ({ref}) into containerd failed: "
                                   f"{(result.stderr or result.stdout).strip()}")
            after = self.present()
            if after.get(ref) != digest:
                raise ClusterError(f"{archive} was imported but containerd does not list {ref} at {digest}")
            present = after
            self.progress(f"imported {ref} in {fmt_duration(time.monotonic() - t0)}")
        self.remove_replaced(present)

    def remove_replaced(self, present: dict[str, str]) -> None:
        """Remove the id names (``sha256:…``) whose image no other name holds: older builds of a name."""
        named = {digest for ref, digest in present.items() if not ref.startswith("sha256:")}
        replaced = sorted(ref for ref, digest in present.items() if ref.startswith("sha256:") and digest not in named)
        if not replaced:
            return
        try:
            self.remove(replaced)
        except ClusterError as exc:  # a clean-up: the images imported are there, and the next import tries again
            self.progress(f"{exc}; the next import tries again")
            return
        self.progress(f"removed {len(replaced)} image(s) that newer imports replaced")

    def remove(self, refs: Sequence[str]) -> None:
        result = subprocess.run([*self.ctr, "images", "rm", *refs], capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterError(f"removing the images {', '.join(refs)} from containerd failed: "
                               f"{(result.stderr or result.stdout).strip()}")

    def tag(self, existing: str, new: str) -> None:
        """Give an image already in containerd a second name (as a registry would serve one image under two tags)."""
        result = subprocess.run([*self.ctr, "images", "tag", "--force", existing, new], capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise ClusterError(f"tagging {existing} as {new} failed: {(result.stderr or result.stdout).strip()}")


def archive_ref_digest(archive: Path) -> tuple[str, str]:
    """The image reference and manifest digest an archive's index.json names."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            index = json.loads(member.read()) if member else {}
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise ClusterError(f"{archive} is not an image archive with an index.json ({exc}): pack it with "
                           "immich_conformance.images.oci.pack_image") from None
    for manifest in index.get("manifests", []):
        ref = manifest.get("annotations", {}).get("io.containerd.image.name")
        if ref:
            return ref, manifest["digest"]
    raise ClusterError(f"{archive} names no image (no io.containerd.image.name annotation in index.json): pack it "
                       "with immich_conformance.images.oci.pack_image")
