"""What the offline cluster's tests run: a busybox image packed from Debian's busybox-static, and pod helpers."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from immich_conformance.images.oci import ImageConfig, PackedImage, pack_image
from immich_conformance.offline_cluster import ClusterError, KubeApi
from immich_conformance.procs import wait_until
from immich_conformance.targets.cluster import ClusterTarget
from immich_conformance.targets.stack_source import Placement

BUSYBOX_IMAGE = "localhost/immich-conformance/busybox:test"
BUSYBOX = Path("/bin/busybox")


def busybox_image(workdir: Path) -> PackedImage:
    """A one-layer image: the static busybox and a link for each of its applets."""
    if not BUSYBOX.is_file():
        raise ClusterError("the cluster tests need Debian's busybox-static: "
                           "python -m immich_conformance.offline_cluster.packages --with-tests")
    rootfs = workdir / "busybox-rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    for folder in ("bin", "tmp", "etc", "www", "data"):
        (rootfs / folder).mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (rootfs / "tmp").chmod(0o1777)
    return pack_image(rootfs, BUSYBOX_IMAGE, ImageConfig(entrypoint=["/bin/sh"], env={"PATH": "/bin"}),
                      workdir / "busybox.tar")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_namespace(api: KubeApi, name: str) -> None:
    api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    api.wait_default_service_account(name)


def run_pod(api: KubeApi, namespace: str, name: str, script: str, *, timeout: float = 90.0) -> tuple[str, str]:
    """Run ``script`` in a busybox pod to completion; returns (phase, logs)."""
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": int(timeout),
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                            "command": ["/bin/sh", "-c", script]}],
        },
    }
    api.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    def finished() -> str | None:
        phase = api.get(f"/api/v1/namespaces/{namespace}/pods/{name}").get("status", {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_until(finished, timeout=timeout + 30, interval=0.5, what=f"pod {namespace}/{name} to finish")
    logs = api.kubectl("logs", "-n", namespace, name)
    return phase, logs


def deployed_stack(namespace: str, scratch: PurePosixPath) -> Iterator[ClusterTarget]:
    """The ci overlay deployed by the cluster target into ``namespace`` on the offline cluster (which enforces
    NetworkPolicy); the namespace deleted afterwards, then its scratch folder. For a module fixture:
    ``yield from deployed_stack(...)``."""
    target = ClusterTarget(kubeconfig=None, offline=True, placement=Placement(namespace, scratch), progress=print)
    with target:
        target.require_network_policy_enforcement()
        yield target
        target.kube.delete_namespaces(namespace, check=False)
    shutil.rmtree(scratch, ignore_errors=True)
