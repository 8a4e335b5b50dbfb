"""The rendered stack (``kubectl kustomize`` of an overlay) as Docker container specs, one per Deployment.

Kubernetes semantics kept, read from the manifests and never written a second time:

* environment: ``envFrom`` (ConfigMap or Secret, with its prefix) first, then ``env`` (``value`` with ``$(VAR)``
  expansion, ``configMapKeyRef``, ``secretKeyRef``, ``fieldRef`` to the pod's name or namespace);
* ``command`` replaces the image's entry point (and drops its CMD), ``args`` replace its CMD, both expanded;
* ports by name; the readiness probe (``httpGet``, ``tcpSocket``, ``exec``) with the startup probe's budget;
* volumes: ``hostPath`` -> a host folder the caller maps the node path to; ``emptyDir`` -> a fresh folder of the
  run (mode 0777, or the pod's fsGroup with setgid, as the kubelet makes it), a tmpfs for ``medium: Memory``;
  ``secret`` / ``configMap`` -> their keys written as files (``defaultMode``, the pod's fsGroup as group), read-only;
* security: runAsUser/runAsGroup -> the user, fsGroup -> a supplementary group, capabilities, no new privileges,
  read-only root filesystem; the memory limit;
* Services: the name of a Service whose ports equal their target ports is a network alias of the container it
  selects; a Service that maps a port to another gets a relay container holding its name (kube-proxy's part).
  NodePort Services' target ports, and the Service ports the caller asks to reach, are published on 127.0.0.1.

What has no faithful translation (init containers, a second container in a pod, other volume types, gRPC probes)
is an error naming the Deployment and the field, so a stack change that the runtime cannot follow is never silently
dropped. Liveness probes, CPU limits and replica counts are not translated (one container per Deployment).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .container_spec import (
    ContainerSpec,
    EmptyDir,
    FileVolume,
    HostFolder,
    Mount,
    Probe,
    Relay,
    StackSpec,
    TranslationError,
)

Doc = dict[str, Any]
DEFAULT_FILE_MODE = 0o644
DEFAULT_PROBE_BUDGET = 120.0
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_QUANTITY = re.compile(r"^([0-9.]+)([A-Za-z]*)$")
_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
             "Ti": 2**40}


def parse_quantity(text: str | int | float, where: str) -> int:
    """A Kubernetes quantity (``512Mi``, ``1G``, ``1024``) in bytes."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise TranslationError(f"{where}: {text!r} is not a quantity this runtime reads (e.g. 512Mi, 1Gi)")
    return int(float(match.group(1)) * _SUFFIXES[match.group(2)])


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, ``$$`` is a literal ``$``, others stay."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _VAR_REF.sub(replace, text)


class _Objects:
    """The rendered ConfigMaps and Secrets by name, their data decoded."""

    def __init__(self, documents: Iterable[Doc]) -> None:
        self.config_maps: dict[str, dict[str, bytes]] = {}
        self.secrets: dict[str, dict[str, bytes]] = {}
        for doc in documents:
            name = (doc.get("metadata") or {}).get("name", "")
            if doc.get("kind") == "ConfigMap":
                data = {k: str(v).encode() for k, v in (doc.get("data") or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (doc.get("binaryData") or {}).items()})
                self.config_maps[name] = data
            elif doc.get("kind") == "Secret":
                data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
                data.update({k: str(v).encode() for k, v in (doc.get("stringData") or {}).items()})
                self.secrets[name] = data

    def get(self, kind: str, name: str, where: str, optional: bool = False) -> dict[str, bytes]:
        table = self.config_maps if kind == "ConfigMap" else self.secrets
        if name not in table:
            if optional:
                return {}
            raise TranslationError(f"{where} refers to the {kind} {name}, which the rendered stack does not hold")
        return table[name]

    def key(self, kind: str, ref: Doc, where: str) -> str | None:
        data = self.get(kind, ref.get("name", ""), where, bool(ref.get("optional")))
        if ref.get("key") not in data:
            if ref.get("optional"):
                return None
            raise TranslationError(f"{where}: the {kind} {ref.get('name')} has no key {ref.get('key')}")
        return data[ref["key"]].decode()


def _environment(container: Doc, objects: _Objects, pod: Doc, where: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, ref_key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref_key in source:
                ref = source[ref_key]
                data = objects.get(kind, ref.get("name", ""), f"{where}.envFrom", bool(ref.get("optional")))
                env.update({f"{prefix}{k}": v.decode() for k, v in data.items()})
    for item in container.get("env") or []:
        name = item["name"]
        here = f"{where}.env[{name}]"
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value", "")), env)
            continue
        source = item["valueFrom"]
        value: str | None
        if "configMapKeyRef" in source:
            value = objects.key("ConfigMap", source["configMapKeyRef"], here)
        elif "secretKeyRef" in source:
            value = objects.key("Secret", source["secretKeyRef"], here)
        elif "fieldRef" in source:
            path = source["fieldRef"].get("fieldPath")
            fields = {"metadata.name": pod["name"], "metadata.namespace": pod["namespace"]}
            if path not in fields:
                raise TranslationError(f"{here}: fieldRef {path} has no value outside a cluster (metadata.name and "
                                       "metadata.namespace do)")
            value = fields[path]
        else:
            raise TranslationError(f"{here}: valueFrom {sorted(source)} is not translated (configMapKeyRef, "
                                   "secretKeyRef and fieldRef are)")
        if value is not None:
            env[name] = value
    return env


def _port(value: Any, ports: Mapping[str, int], where: str) -> int:
    if isinstance(value, int):
        return value
    if str(value).isdigit():
        return int(value)
    if value not in ports:
        raise TranslationError(f"{where}: the container has no port named {value!r} (it has {', '.join(ports)})")
    return ports[value]


def _probe(container: Doc, ports: Mapping[str, int], where: str) -> Probe | None:
    readiness = container.get("readinessProbe")
    if not readiness:
        return None
    startup = container.get("startupProbe") or readiness

    def budget(probe: Doc) -> float:
        return float(probe.get("initialDelaySeconds", 0)) + \
            float(probe.get("failureThreshold", 3)) * float(probe.get("periodSeconds", 10))

    common = {"budget": max(budget(startup), budget(readiness), DEFAULT_PROBE_BUDGET),
              "timeout": float(readiness.get("timeoutSeconds", 1))}
    here = f"{where}.readinessProbe"
    if "httpGet" in readiness:
        get = readiness["httpGet"]
        if get.get("host"):
            raise TranslationError(f"{here}.httpGet.host is not translated (the probe goes to the container)")
        headers = tuple((h["name"], str(h["value"])) for h in get.get("httpHeaders") or [])
        return Probe("http", port=_port(get["port"], ports, here), path=get.get("path", "/"),
                     scheme=get.get("scheme", "HTTP"), headers=headers, **common)  # type: ignore[arg-type]
    if "tcpSocket" in readiness:
        return Probe("tcp", port=_port(readiness["tcpSocket"]["port"], ports, here), **common)  # type: ignore[arg-type]
    if "exec" in readiness:
        return Probe("exec", command=tuple(readiness["exec"]["command"]), **common)  # type: ignore[arg-type]
    raise TranslationError(f"{here}: only httpGet, tcpSocket and exec probes are translated")


def _volumes(spec: Doc, objects: _Objects, where: str, uid: int | None, gid: int | None,
             fs_group: int | None) -> tuple[dict[str, FileVolume], dict[str, HostFolder], dict[str, EmptyDir]]:
    files: dict[str, FileVolume] = {}
    hosts: dict[str, HostFolder] = {}
    empty: dict[str, EmptyDir] = {}
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        here = f"{where}.volumes[{name}]"
        if "hostPath" in volume:
            hosts[name] = HostFolder(volume["hostPath"]["path"], volume["hostPath"].get("type", ""), uid, gid)
        elif "emptyDir" in volume:
            options = volume["emptyDir"] or {}
            limit = options.get("sizeLimit")
            size = parse_quantity(limit, f"{here}.emptyDir.sizeLimit") if limit is not None else None
            empty[name] = EmptyDir(options.get("medium") == "Memory", size, fs_group)
        elif "secret" in volume or "configMap" in volume:
            kind, key = ("Secret", "secret") if "secret" in volume else ("ConfigMap", "configMap")
            source = volume[key]
            ref = source.get("secretName") if kind == "Secret" else source.get("name")
            data = objects.get(kind, ref or "", here, bool(source.get("optional")))
            mode = int(source.get("defaultMode", DEFAULT_FILE_MODE))
            if source.get("items"):
                picked = {}
                for item in source["items"]:
                    if item["key"] not in data:
                        raise TranslationError(f"{here}: the {kind} {ref} has no key {item['key']}")
                    picked[item["path"]] = data[item["key"]]
                data = picked
            files[name] = FileVolume(dict(data), mode, fs_group)
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise TranslationError(f"{here}: {', '.join(kinds)} volumes are not translated (hostPath, emptyDir, "
                                   "secret and configMap are)")
    return files, hosts, empty


def _container(deployment: Doc, objects: _Objects) -> ContainerSpec:
    meta = deployment["metadata"]
    name = meta["name"]
    where = f"Deployment {name}"
    spec = deployment["spec"]["template"]["spec"]
    if spec.get("initContainers"):
        raise TranslationError(f"{where}: init containers are not translated")
    containers = spec.get("containers") or []
    if len(containers) != 1:
        raise TranslationError(f"{where}: {len(containers)} containers in the pod; the runtime runs pods of one")
    container = containers[0]
    where = f"{where}, container {container['name']}"
    pod_security = spec.get("securityContext") or {}
    security = container.get("securityContext") or {}
    uid = security.get("runAsUser", pod_security.get("runAsUser"))
    gid = security.get("runAsGroup", pod_security.get("runAsGroup"))
    fs_group = pod_security.get("fsGroup")
    if security.get("privileged"):
        raise TranslationError(f"{where}: privileged containers are not run")
    env = _environment(container, objects, {"name": name, "namespace": meta.get("namespace", "default")}, where)
    ports = {p.get("name") or str(p["containerPort"]): int(p["containerPort"]) for p in container.get("ports") or []}
    file_volumes, host_folders, empty_dirs = _volumes(spec, objects, where, uid, gid if gid is not None else fs_group,
                                                 fs_group)
    mounts = []
    for mount in container.get("volumeMounts") or []:
        volume = mount["name"]
        if volume in host_folders:
            kind: Literal["host", "empty", "files"] = "host"
        elif volume in empty_dirs:
            kind = "empty"
        elif volume in file_volumes:
            kind = "files"
        else:
            raise TranslationError(f"{where}: volumeMounts names {volume}, which the pod does not declare")
        read_only = bool(mount.get("readOnly")) or kind == "files"
        mounts.append(Mount(mount["mountPath"], volume, kind, read_only, mount.get("subPath", "")))
    # Only a folder the pod writes to is handed to its user; a read-only one keeps its owner.
    written = {m.volume for m in mounts if m.kind == "host" and not m.read_only}
    host_folders = {k: v if k in written else HostFolder(v.node_path, v.type, None, None)
                    for k, v in host_folders.items()}
    capabilities = security.get("capabilities") or {}
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return ContainerSpec(
        deployment=name,
        container=container["name"],
        image=container["image"],
        entrypoint=[expand(a, env) for a in container["command"]] if container.get("command") else None,
        command=[expand(a, env) for a in container["args"]] if container.get("args") else None,
        env=env,
        ports=ports,
        mounts=mounts,
        file_volumes=file_volumes,
        host_folders=host_folders,
        empty_dirs=empty_dirs,
        user=(f"{uid}:{gid}" if gid is not None else str(uid)) if uid is not None else None,
        group_add=[fs_group] if fs_group is not None else [],
        read_only=bool(security.get("readOnlyRootFilesystem")),
        cap_drop=list(capabilities.get("drop") or []),
        cap_add=list(capabilities.get("add") or []),
        no_new_privileges=security.get("allowPrivilegeEscalation") is False,
        mem_limit=parse_quantity(limit, f"{where}.resources.limits.memory") if limit is not None else None,
        readiness=_probe(container, ports, where),
    )


def _selected(service: Doc, deployments: Mapping[str, Doc]) -> str | None:
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return None
    matches = [name for name, d in deployments.items()
               if selector.items() <= ((d["spec"]["template"].get("metadata") or {}).get("labels") or {}).items()]
    if len(matches) > 1:
        raise TranslationError(f"Service {service['metadata']['name']} selects the pods of {', '.join(matches)}; "
                               "the runtime gives a Service one Deployment")
    return matches[0] if matches else None


def translate(documents: Iterable[Doc], *, reach: Iterable[tuple[str, str]] = ()) -> StackSpec:
    """Container specs for every Deployment in ``documents``; ``reach`` lists (Service, port name) pairs to publish
    on 127.0.0.1 besides the NodePorts."""
    documents = list(documents)
    objects = _Objects(documents)
    deployments = {d["metadata"]["name"]: d for d in documents if d.get("kind") == "Deployment"}
    if not deployments:
        raise TranslationError("the rendered stack holds no Deployment")
    containers = {name: _container(d, objects) for name, d in deployments.items()}
    wanted = set(reach)
    relays: list[Relay] = []
    services: dict[str, dict[str, tuple[str, int]]] = {}
    for service in (d for d in documents if d.get("kind") == "Service"):
        service_name = service["metadata"]["name"]
        selected = _selected(service, deployments)
        if selected is None:
            continue
        spec = containers[selected]
        routes = []
        for port in service["spec"].get("ports") or []:
            target = _port(port.get("targetPort", port["port"]), spec.ports, f"Service {service_name}")
            routes.append((int(port["port"]), selected, target))
            port_name = port.get("name") or str(port["port"])
            services.setdefault(service_name, {})[port_name] = (selected, target)
            if (service["spec"].get("type") == "NodePort" or (service_name, port_name) in wanted) \
                    and target not in spec.publish:
                spec.publish.append(target)
        if all(service_port == target for service_port, _, target in routes):
            spec.aliases.append(service_name)
        else:
            relays.append(Relay(service_name, tuple(routes)))
    missing = wanted - {(s, p) for s, ports in services.items() for p in ports}
    if missing:
        raise TranslationError("the rendered stack has no Service port " +
                               ", ".join(f"{s}/{p}" for s, p in sorted(missing)))
    return StackSpec(containers, relays, services)
