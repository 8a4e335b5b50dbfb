"""Image archives: the layout both containerd and Docker read, checked entry by entry; imported for real when a
containerd is at hand (a private one, started here, with its CRI plugin off), and run when runc is there too."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from immich_conformance.images.oci import ImageConfig, PackedImage, pack_image
from immich_conformance.images.recipes import NONROOT_UID, RECIPES, BuildOptions
from immich_conformance.procs import ManagedProcess
from immich_conformance.versions import IMMICH_VERSION

BIN_DIR_ENV = "IMMICH_CONTAINERD_BIN_DIR"
TINY_REF = "localhost/immich-conformance/tiny-test:1"


def _sha256_member(archive: tarfile.TarFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    handle = archive.extractfile(name)
    assert handle is not None, f"{name} is not a file in the archive"
    while block := handle.read(1 << 20):
        digest.update(block)
        size += len(block)
    return f"sha256:{digest.hexdigest()}", size


def check_layout(path: Path, ref: str) -> tuple[dict[str, Any], str]:
    """Check the archive's OCI layout and Docker manifest against each other and their digests; (config, layer)."""
    listed = subprocess.run([sys.executable, "-m", "tarfile", "-l", str(path)], capture_output=True, text=True,
                            check=False, timeout=120)
    assert listed.returncode == 0, listed.stderr
    with tarfile.open(path) as archive:
        names = set(archive.getnames())
        assert {"oci-layout", "index.json", "manifest.json"} <= names
        assert json.load(archive.extractfile("oci-layout"))["imageLayoutVersion"] == "1.0.0"  # type: ignore[arg-type]
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
        [entry] = index["manifests"]
        assert entry["annotations"]["io.containerd.image.name"] == ref

        def blob(descriptor: dict[str, Any]) -> str:
            name = f"blobs/sha256/{descriptor['digest'].split(':', 1)[1]}"
            assert name in names, f"{name} is missing"
            assert _sha256_member(archive, name) == (descriptor["digest"], descriptor["size"]), f"{name} mismatch"
            return name

        manifest = json.load(archive.extractfile(blob(entry)))  # type: ignore[arg-type]
        config_name = blob(manifest["config"])
        [layer] = manifest["layers"]
        layer_name = blob(layer)
        config = json.load(archive.extractfile(config_name))  # type: ignore[arg-type]
        assert config["rootfs"]["diff_ids"] == [layer["digest"]]
        [docker] = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert docker["Config"] == config_name and docker["Layers"] == [layer_name]
        assert docker["RepoTags"] == [ref]
    return config, layer_name


@pytest.fixture
def tiny_rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("tiny\n")
    hello = root / "bin/hello"
    hello.write_text("#!/bin/sh\necho hello\n")
    hello.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(root / "data", NONROOT_UID, NONROOT_UID)
    return root


def _tiny_config() -> ImageConfig:
    return ImageConfig(entrypoint=["/bin/hello"], user=f"{NONROOT_UID}:{NONROOT_UID}", exposed_ports=[8080],
                       stop_signal="SIGINT")


def test_a_small_image_has_the_layout_containerd_and_docker_read(tiny_rootfs: Path, tmp_path: Path) -> None:
    packed = pack_image(tiny_rootfs, TINY_REF, _tiny_config(), tmp_path / "tiny.tar")
    config, layer_name = check_layout(packed.archive, TINY_REF)
    assert config["config"]["Entrypoint"] == ["/bin/hello"]
    assert config["config"]["User"] == f"{NONROOT_UID}:{NONROOT_UID}"
    assert config["config"]["StopSignal"] == "SIGINT"
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    with tarfile.open(packed.archive) as archive, tarfile.open(fileobj=archive.extractfile(layer_name)) as layer:
        members = {m.name.removeprefix("./"): m for m in layer.getmembers()}
    assert members["bin/hello"].mode & 0o777 == 0o755
    if os.geteuid() == 0:
        assert (members["data"].uid, members["data"].gid) == (NONROOT_UID, NONROOT_UID)


def test_the_same_folder_packs_to_the_same_digests(tiny_rootfs: Path, tmp_path: Path) -> None:
    first = pack_image(tiny_rootfs, TINY_REF, _tiny_config(), tmp_path / "a.tar")
    second = pack_image(tiny_rootfs, TINY_REF, _tiny_config(), tmp_path / "b.tar")
    assert (first.layer_digest, first.manifest_digest) == (second.layer_digest, second.manifest_digest)


# --- skopeo: an independent reader of both formats -------------------------------------------------------------------
def _skopeo(*args: str) -> dict[str, Any]:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed (./setup.sh installs it as root: apt-get install skopeo)")
    done = subprocess.run([skopeo, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_skopeo_reads_the_archive_as_an_oci_archive_and_as_a_docker_archive(tiny_rootfs: Path,
                                                                             tmp_path: Path) -> None:
    packed = pack_image(tiny_rootfs, TINY_REF, _tiny_config(), tmp_path / "tiny.tar")
    as_oci = _skopeo("inspect", "--raw", f"oci-archive:{packed.archive}")
    assert as_oci["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["digest"] for layer in as_oci["layers"]] == [packed.layer_digest]
    oci_config = _skopeo("inspect", "--config", f"oci-archive:{packed.archive}")
    docker_config = _skopeo("inspect", "--config", f"docker-archive:{packed.archive}")
    for config in (oci_config, docker_config):
        assert config["config"]["Entrypoint"] == ["/bin/hello"]
        assert config["config"]["User"] == f"{NONROOT_UID}:{NONROOT_UID}"
        assert config["rootfs"]["diff_ids"] == [packed.layer_digest]
    described = _skopeo("inspect", f"docker-archive:{packed.archive}")
    assert described["Layers"] == [packed.layer_digest], described


# --- a real containerd ------------------------------------------------------------------------------------------------
def _tool(name: str) -> Path | None:
    bin_dir = os.environ.get(BIN_DIR_ENV)
    if bin_dir and (Path(bin_dir) / name).is_file():
        return Path(bin_dir) / name
    found = shutil.which(name)
    return Path(found) if found else None


@dataclass
class PrivateContainerd:
    ctr: Path
    socket: Path
    can_run: bool

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.ctr), "--address", str(self.socket), "--namespace", "immich-conformance-test",
                               *args], capture_output=True, text=True, timeout=timeout, check=False)


def _unmount_below(folder: Path) -> None:
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    points = sorted((line.split()[1] for line in mounts if line.split()[1].startswith(str(folder))), reverse=True)
    for point in points:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.fixture(scope="module")
def containerd() -> Iterator[PrivateContainerd]:
    ctr, daemon = _tool("ctr"), _tool("containerd")
    if ctr is None or daemon is None:
        pytest.skip(f"no ctr/containerd on PATH or in ${BIN_DIR_ENV}: the import into containerd is not checked "
                    "(the layout is)")
    if os.geteuid() != 0:
        pytest.skip("a private containerd needs root: the import into containerd is not checked (the layout is)")
    folder = Path(tempfile.mkdtemp(prefix="ctrd-", dir="/tmp"))  # short: unix socket paths are limited
    socket = folder / "containerd.sock"
    (folder / "config.toml").write_text(
        f'version = 3\nroot = "{folder}/root"\nstate = "{folder}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", '
        '"io.containerd.cri.v1.images"]\n'
        f'[grpc]\n  address = "{socket}"\n')
    env = {**os.environ, "PATH": f"{daemon.parent}:{os.environ.get('PATH', '')}"}
    process = ManagedProcess("containerd", [str(daemon), "--config", str(folder / "config.toml")],
                             log_path=folder / "containerd.log", env=env).start()
    handle = PrivateContainerd(ctr, socket, can_run=bool(shutil.which("runc", path=env["PATH"])
                                                         and shutil.which("containerd-shim-runc-v2", path=env["PATH"])))
    try:
        process.wait_ready(lambda: handle.run("version", timeout=10).returncode == 0, timeout=30)
        yield handle
    finally:
        process.stop()
        _unmount_below(folder)
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)


def test_containerd_imports_a_small_image(containerd: PrivateContainerd, tiny_rootfs: Path, tmp_path: Path) -> None:
    packed = pack_image(tiny_rootfs, TINY_REF, _tiny_config(), tmp_path / "tiny.tar")
    done = containerd.run("images", "import", str(packed.archive))
    assert done.returncode == 0, done.stderr
    listed = containerd.run("images", "ls")
    line = next((row for row in listed.stdout.splitlines() if row.startswith(TINY_REF + " ")), "")
    assert packed.manifest_digest in line, listed.stdout


@pytest.mark.slow
def test_containerd_imports_and_runs_a_built_image(containerd: PrivateContainerd,
                                                   packed_image: Callable[..., PackedImage]) -> None:
    redis = packed_image("redis")
    config, _ = check_layout(redis.archive, redis.ref)
    assert config["config"]["Entrypoint"] == RECIPES["redis"].config(BuildOptions()).entrypoint
    done = containerd.run("images", "import", str(redis.archive))
    assert done.returncode == 0, done.stderr
    if not containerd.can_run:
        pytest.skip("runc or containerd-shim-runc-v2 is missing: the image was imported but not run")
    ran = containerd.run("run", "--rm", redis.ref, "images-test-redis", "valkey-cli", "--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("redis-cli 7."), f"stdout {ran.stdout!r}, stderr {ran.stderr!r}"
    who = containerd.run("run", "--rm", redis.ref, "images-test-redis-user", "id", "-u")
    assert who.stdout.strip() == str(NONROOT_UID), f"stdout {who.stdout!r}, stderr {who.stderr!r}"


@pytest.mark.slow
def test_two_double_versions_share_the_layer_and_differ_in_what_they_report(
        packed_image: Callable[..., PackedImage]) -> None:
    current = packed_image("immich-server")
    other = packed_image("immich-server", BuildOptions(double_version="v2.7.3"))
    assert current.layer_digest == other.layer_digest
    assert current.ref.endswith(f":{IMMICH_VERSION}") and other.ref.endswith(":v2.7.3")
    for packed, version in ((current, IMMICH_VERSION), (other, "v2.7.3")):
        config, _ = check_layout(packed.archive, packed.ref)
        assert f"IMMICH_DOUBLE_VERSION={version}" in config["config"]["Env"]
        assert config["config"]["Labels"]["org.opencontainers.image.version"] == version
