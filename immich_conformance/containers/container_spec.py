"""What the containers runtime runs, as ``translate`` makes it from the rendered stack: one ``ContainerSpec`` per
Deployment (its volumes, mounts and readiness probe), the relays standing in for kube-proxy's port mapping, and the
``StackSpec`` that holds them with each Service's ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


class TranslationError(ValueError):
    """The rendered stack asks for something the containers runtime cannot do; the message says what and where."""


@dataclass(frozen=True)
class FileVolume:
    """A Secret or ConfigMap volume: its files, their mode, and the group that owns them."""

    files: dict[str, bytes]
    mode: int
    group: int | None


@dataclass(frozen=True)
class HostFolder:
    """A hostPath volume: the node's path, and who must own it (the pod's user when it writes there)."""

    node_path: str
    type: str
    uid: int | None
    gid: int | None


@dataclass(frozen=True)
class EmptyDir:
    """An emptyDir volume: in memory (tmpfs) or a folder, its size limit, the group that owns it."""

    memory: bool
    size: int | None
    group: int | None


@dataclass(frozen=True)
class Mount:
    target: str
    volume: str
    kind: Literal["host", "empty", "files"]
    read_only: bool
    sub_path: str = ""


@dataclass(frozen=True)
class Probe:
    kind: Literal["http", "tcp", "exec"]
    budget: float
    timeout: float = 1.0
    port: int = 0
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "http":
            return f"GET {self.scheme.lower()}://:{self.port}{self.path}"
        if self.kind == "tcp":
            return f"TCP :{self.port}"
        return f"exec {' '.join(self.command)}"


@dataclass
class ContainerSpec:
    deployment: str
    container: str
    image: str
    entrypoint: list[str] | None
    command: list[str] | None
    env: dict[str, str]
    ports: dict[str, int]
    mounts: list[Mount]
    file_volumes: dict[str, FileVolume]
    host_folders: dict[str, HostFolder]
    empty_dirs: dict[str, EmptyDir]
    user: str | None
    group_add: list[int]
    read_only: bool
    cap_drop: list[str]
    cap_add: list[str]
    no_new_privileges: bool
    mem_limit: int | None
    readiness: Probe | None
    aliases: list[str] = field(default_factory=list)
    publish: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Relay:
    """A Service whose ports map to other ports: its name, and (service port, Deployment, container port) each."""

    service: str
    routes: tuple[tuple[int, str, int], ...]


@dataclass
class StackSpec:
    containers: dict[str, ContainerSpec]
    relays: list[Relay]
    services: dict[str, dict[str, tuple[str, int]]]
    """Service -> port name -> (Deployment, container port)."""

    def target_of(self, service: str, port_name: str) -> tuple[str, int]:
        try:
            return self.services[service][port_name]
        except KeyError:
            raise TranslationError(f"the rendered stack has no Service {service} with a port named {port_name}") \
                from None
