"""Packs a root filesystem folder into a single-layer image archive that both containerd and Docker load.

The archive is an OCI image layout (``oci-layout``, ``index.json`` with the ``io.containerd.image.name`` annotation,
``blobs/sha256/...``) that also carries Docker's ``manifest.json``: ``ctr -n k8s.io images import`` reads the former,
``docker load`` the latter. The layer is an uncompressed tar made by GNU tar (ownership, modes and device nodes kept,
entries sorted, times clamped, GNU format without access/change times) so the same folder gives the same layer
digest.

Why by hand rather than umoci or skopeo: Debian's docker.io (Docker 20.10, what setup.sh installs) loads only Docker's
own archive format, and umoci writes OCI layouts only; making both from one layer here keeps a single archive per
image for containerd and Docker alike. skopeo reads the result in the tests (``oci-archive:`` and
``docker-archive:``), as an independent check that both formats are right.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
SOURCE_DATE = "2026-01-01T00:00:00Z"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImagePackError(RuntimeError):
    """The root filesystem could not be packed."""


@dataclass(frozen=True)
class ImageConfig:
    """What a runtime needs to run the image (the OCI image config's ``config`` object)."""

    entrypoint: list[str]
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    workdir: str = "/"
    user: str = "0:0"
    exposed_ports: list[int] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None

    def as_oci(self) -> dict[str, object]:
        config: dict[str, object] = {
            "Entrypoint": self.entrypoint,
            "Env": [f"{k}={v}" for k, v in self.env.items()],
            "WorkingDir": self.workdir,
            "User": self.user,
        }
        if self.cmd:
            config["Cmd"] = self.cmd
        if self.exposed_ports:
            config["ExposedPorts"] = {f"{p}/tcp": {} for p in self.exposed_ports}
        if self.labels:
            config["Labels"] = self.labels
        if self.stop_signal:
            config["StopSignal"] = self.stop_signal
        return config


@dataclass(frozen=True)
class PackedImage:
    ref: str
    archive: Path
    manifest_digest: str
    layer_digest: str


def normalize_ref(ref: str) -> str:
    """``name:tag`` as containerd names it (``docker.io/library/`` added to bare names)."""
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in name.split("/", 1)[0] and ":" not in name.split("/", 1)[0] and name.split("/", 1)[0] != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag or 'latest'}"


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    return f"sha256:{digest.hexdigest()}", size


def _blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    (blobs / digest.split(":", 1)[1]).write_bytes(data)
    return digest, len(data)


def pack_image(rootfs: Path, ref: str, config: ImageConfig, out: Path) -> PackedImage:
    """Write ``out`` (a tar) holding ``rootfs`` as one layer, named ``ref``."""
    if not rootfs.is_dir():
        raise ImagePackError(f"{rootfs} is not a folder: nothing to pack for {ref}")
    if shutil.which("tar") is None:
        raise ImagePackError("GNU tar is needed to pack images: apt-get install tar")
    ref = normalize_ref(ref)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="oci-", dir=out.parent) as tmp:
        layout = Path(tmp)
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        layer_tmp = layout / "layer.tar"
        result = subprocess.run(
            ["tar", "--format=gnu", "--sort=name", "--numeric-owner", f"--mtime={SOURCE_DATE}", "--clamp-mtime",
             "-C", str(rootfs), "-cf", str(layer_tmp), "."],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise ImagePackError(f"tar could not pack {rootfs}: {result.stderr.strip()}")
        layer_digest, layer_size = _sha256_file(layer_tmp)
        layer_tmp.rename(blobs / layer_digest.split(":", 1)[1])

        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "created": SOURCE_DATE,
            "config": config.as_oci(),
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "history": [{"created": SOURCE_DATE, "created_by": f"immich-conformance pack {ref}"}],
        }
        config_digest, config_size = _blob(blobs, json.dumps(image_config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer_size}],
        }
        manifest_digest, manifest_size = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
        (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        (layout / "index.json").write_text(json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
            }],
        }))
        (layout / "manifest.json").write_text(json.dumps([{
            "Config": f"blobs/sha256/{config_digest.split(':', 1)[1]}",
            "RepoTags": [ref.removeprefix("docker.io/library/").removeprefix("docker.io/")],
            "Layers": [f"blobs/sha256/{layer_digest.split(':', 1)[1]}"],
        }]))
        partial = out.with_suffix(out.suffix + ".partial")
        with tarfile.open(partial, "w") as archive:
            for name in ("oci-layout", "index.json", "manifest.json", "blobs"):
                archive.add(layout / name, arcname=name)
        partial.replace(out)
    return PackedImage(ref=ref, archive=out, manifest_digest=manifest_digest, layer_digest=layer_digest)
