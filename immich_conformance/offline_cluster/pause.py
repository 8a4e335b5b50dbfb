"""The pod sandbox image: a tiny static ``pause`` built from C here, packed as a one-layer image, never pulled.

It sleeps until SIGTERM or SIGINT and reaps zombies (it is PID 1 of every pod's sandbox).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from immich_conformance import versions
from immich_conformance.images.oci import ImageConfig, PackedImage, pack_image

from .errors import ClusterError

PAUSE_SOURCE = r"""
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = reap;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;) {
        pause();
    }
    return 0;
}
"""


def build_pause_binary(out: Path) -> Path:
    """Compile the static pause binary to ``out``."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ClusterError("gcc is needed to build the pod sandbox binary: "
                           "run `python -m immich_conformance.offline_cluster.packages`")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pause-") as tmp:
        source = Path(tmp) / "pause.c"
        source.write_text(PAUSE_SOURCE)
        result = subprocess.run([gcc, "-static", "-Os", "-s", "-Wall", "-Werror", "-o", str(out), str(source)],
                                capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"gcc could not build the static pause binary ({result.stderr.strip()}): the static C "
                           "library comes with libc6-dev; run `python -m immich_conformance.offline_cluster.packages`")
    return out


def pause_archive(cache_dir: Path, ref: str = versions.CLUSTER_PAUSE_IMAGE) -> Path:
    """The pause image archive under ``cache_dir``, built the first time (its name follows the source and ref)."""
    archive = cache_dir / "images" / f"pause-{_digest(PAUSE_SOURCE + ref)}.tar"
    if not archive.is_file():
        pause_image(cache_dir, ref, archive)
    return archive


def pause_image(cache_dir: Path, ref: str = versions.CLUSTER_PAUSE_IMAGE, archive: Path | None = None) -> PackedImage:
    """Build the static pause binary and pack it as ``ref``."""
    archive = archive or cache_dir / "images" / "pause.tar"
    rootfs = cache_dir / "images" / "pause-rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    build_pause_binary(rootfs / "pause")
    try:
        return pack_image(rootfs, ref, ImageConfig(entrypoint=["/pause"], user="65535:65535"), archive)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
