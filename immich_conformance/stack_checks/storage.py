"""The photo library's storage: the NAS, given to the server by a hostPath of type Directory at /data where
IMMICH_MEDIA_LOCATION points; Immich's unmounted-library guard left on; every hostPath a Directory; and no pod but
the server mounting the library writable."""

from __future__ import annotations

from typing import Any

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import Manifests, PodTemplate
from immich_conformance.stack_checks.pod_lookups import container_named, effective_env, name_of
from immich_conformance.stack_checks.stack_design import MEDIA_LOCATION, SERVER


def _library_volume(m: Manifests) -> tuple[PodTemplate | None, dict[str, Any] | None, dict[str, Any] | None]:
    pod = m.pod_template(SERVER)
    container = container_named(pod, SERVER) if pod else None
    if pod is None or container is None:
        return pod, container, None
    mount = next((vm for vm in container.get("volumeMounts") or []
                  if str(vm.get("mountPath", "")).rstrip("/") == MEDIA_LOCATION), None)
    return pod, container, (pod.volume(mount.get("name")) if mount else None)


def check_nas_library(m: Manifests) -> list[Finding]:
    pod, container, volume = _library_volume(m)
    if pod is None or container is None:
        return [Finding("nas-library", f"Deployment/{SERVER}", f"no {SERVER} container in the stack")]
    findings = []
    if volume is None:
        findings.append(Finding("nas-library", pod.name, f"nothing is mounted at {MEDIA_LOCATION}: the library "
                                                         f"(the NAS) must be mounted there"))
    elif "hostPath" not in volume:
        kinds = [k for k in volume if k != "name"]
        findings.append(Finding("nas-library", pod.name, f"the library at {MEDIA_LOCATION} is {kinds}, not the "
                                                         f"NAS by hostPath"))
    elif volume["hostPath"].get("type") != "Directory":
        findings.append(Finding("nas-library", pod.name, f"the library hostPath has type "
                                                         f"{volume['hostPath'].get('type')!r}; it must be "
                                                         f"'Directory' so a missing NAS stops the pod"))
    media = effective_env(m, pod, container).get("IMMICH_MEDIA_LOCATION")
    if media is None or media.rstrip("/") != MEDIA_LOCATION:
        findings.append(Finding("nas-library", pod.name, f"IMMICH_MEDIA_LOCATION is {media!r}, not "
                                                         f"{MEDIA_LOCATION} where the library is mounted"))
    return findings


def check_mount_guard(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for container in pod.containers():
            if "IMMICH_IGNORE_MOUNT_CHECK_ERRORS" in effective_env(m, pod, container):
                findings.append(Finding("mount-guard", pod.name, f"container {container.get('name')} sets "
                                                                 f"IMMICH_IGNORE_MOUNT_CHECK_ERRORS, which turns off "
                                                                 f"Immich's guard against an unmounted library"))
    return findings


def check_hostpath_types(m: Manifests) -> list[Finding]:
    findings = []
    for pod in m.pod_templates():
        for volume in pod.spec.get("volumes") or []:
            host_path = volume.get("hostPath")
            if host_path is not None and host_path.get("type") != "Directory":
                findings.append(Finding("hostpath-types", pod.name, f"hostPath volume {volume.get('name')} "
                                                                    f"({host_path.get('path')}) has type "
                                                                    f"{host_path.get('type')!r}: use 'Directory', so a "
                                                                    f"missing folder stops the pod instead of being "
                                                                    f"created on the node's disk"))
    return findings


def check_library_read_only(m: Manifests) -> list[Finding]:
    server, _, volume = _library_volume(m)
    if volume is None or "hostPath" not in volume:
        return []
    library = str(volume["hostPath"].get("path", "")).rstrip("/")
    findings = []
    for pod in m.pod_templates():
        if pod is server or name_of(pod.owner) == SERVER:
            continue
        names = {v.get("name") for v in pod.spec.get("volumes") or []
                 if str((v.get("hostPath") or {}).get("path", "")).rstrip("/") == library}
        for container in pod.containers():
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") in names and mount.get("readOnly") is not True:
                    findings.append(Finding("library-read-only", pod.name, f"container {container.get('name')} "
                                                                           f"mounts the library ({library}) "
                                                                           f"writable; only {SERVER} may write it"))
    return findings
