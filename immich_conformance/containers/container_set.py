"""The containers of one run, by component name, on the run's private network (started by testcontainers): each
made from its Deployment's spec (or a Service's relay), started in parallel, replaced one at a time; their addresses
on the network and the 127.0.0.1 ports their published ports are on."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..images.recipes import NONROOT_UID, PYTHON
from . import cleanup
from .container_spec import ContainerSpec, Relay

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

LOOPBACK = "127.0.0.1"
STOP_GRACE = 30
"""Seconds a container has to stop after SIGTERM (the pod's terminationGracePeriodSeconds default)."""
START_WORKERS = 4
# A Service port mapped to another container port, as kube-proxy would: a relay in the edge stand-in's image (the
# project's own, present in both image modes), with its tested TCP relay.
RELAY_CODE = """\
import asyncio, sys
from immich_conformance.images.edge_pod import Relay, start_relay

async def main():
    for route in sys.argv[1:]:
        port, target = route.split("=", 1)
        host, _, target_port = target.rpartition(":")
        await start_relay(Relay(f"service port {port}", "0.0.0.0", int(port), host, int(target_port)))
    await asyncio.Event().wait()

asyncio.run(main())
"""


def relay_name(relay: Relay) -> str:
    return f"svc-{relay.service}"


class ContainerSet:
    """A run's containers: ``prefix`` names them (``prefix-component``), ``labels`` mark all it makes."""

    def __init__(self, run_id: str, prefix: str, labels: dict[str, str]) -> None:
        self.run_id = run_id
        self.prefix = prefix
        self.labels = labels
        self.network: Network | None = None
        self.started: dict[str, DockerContainer] = {}
        """testcontainers' handle of each container."""
        self.running: dict[str, Container] = {}
        """Docker's own view of each container: its state, its log."""
        self.addresses: dict[str, str] = {}
        self.host_ports: dict[tuple[str, int], int] = {}
        """(component, container port) -> the 127.0.0.1 port it is published on."""
        self.volumes: list[str] = []
        self.stopping = False
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def create_network(self) -> str:
        from testcontainers.core.network import Network

        network = Network(docker_network_kw={"driver": "bridge", "labels": self.labels, "options": {
            "com.docker.network.bridge.name": cleanup.bridge_name(self.run_id)}})
        network.name = f"immich-conformance-{self.run_id}"
        network.create()
        self.network = network
        return network.name

    def start_all(self, jobs: list[Callable[[], None]]) -> None:
        """Run each start job, ``START_WORKERS`` at a time; the first failure is raised."""
        self._pool = ThreadPoolExecutor(max_workers=START_WORKERS, thread_name_prefix="containers-start")
        futures = [self._pool.submit(job) for job in jobs]
        for future in futures:
            future.result()
        self._pool.shutdown(wait=True)
        self._pool = None

    def _container(self, name: str, image: str) -> DockerContainer:
        from testcontainers.core.container import DockerContainer

        return DockerContainer(image, name=f"{self.prefix}-{name}", network=self.network)

    def start(self, spec: ContainerSpec, image: str, *, folders: dict[str, Path], pod_folder: Path,
              host_ports: dict[int, int] | None = None) -> None:
        """Start the container of one Deployment from ``image``: its hostPath volumes from ``folders`` (node path ->
        folder), its own volumes from ``pod_folder``; ``host_ports``: the 127.0.0.1 ports to publish its ports on
        (default: free ones)."""
        container = self._container(spec.deployment, image)
        container.with_network_aliases(*spec.aliases)
        container.env = dict(spec.env)
        if spec.command is not None:
            container.with_command(spec.command)
        for mount in spec.mounts:
            empty = spec.empty_dirs.get(mount.volume)
            if mount.kind == "empty" and empty is not None and empty.memory:
                size = f",size={empty.size}" if empty.size else ""
                container.tmpfs[mount.target] = f"rw,nosuid,nodev{size}"
                continue
            if mount.kind == "host":
                source = folders[spec.host_folders[mount.volume].node_path]
            else:
                source = pod_folder / mount.volume
            if mount.sub_path:
                source = source / mount.sub_path
            container.with_volume_mapping(str(source), mount.target, "ro" if mount.read_only else "rw")
        for port in spec.publish:
            container.ports[f"{port}/tcp"] = (LOOPBACK, (host_ports or {}).get(port))  # type: ignore[assignment]
        options: dict[str, Any] = {
            "labels": {**self.labels, cleanup.DEPLOYMENT_LABEL: spec.deployment},
            "hostname": spec.deployment,
            "read_only": spec.read_only,
            "cap_drop": spec.cap_drop or None,
            "cap_add": spec.cap_add or None,
            "security_opt": ["no-new-privileges:true"] if spec.no_new_privileges else None,
            "group_add": [str(g) for g in spec.group_add] or None,
            "mem_limit": spec.mem_limit,
            "user": spec.user,
            "entrypoint": spec.entrypoint,
        }
        container.with_kwargs(**{k: v for k, v in options.items() if v is not None})
        self._launch(spec.deployment, container)

    def start_relay(self, relay: Relay, image: str) -> None:
        """Start the relay that maps a Service's ports to its Deployment's container ports."""
        container = self._container(relay_name(relay), image)
        container.with_network_aliases(relay.service)
        container.with_command([f"{port}={self.prefix}-{deployment}:{target}"
                                for port, deployment, target in relay.routes])
        container.with_kwargs(labels={**self.labels, cleanup.DEPLOYMENT_LABEL: f"service/{relay.service}"},
                              entrypoint=[PYTHON, "-c", RELAY_CODE], user=f"{NONROOT_UID}:{NONROOT_UID}",
                              read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
        self._launch(relay_name(relay), container)

    def _launch(self, name: str, container: DockerContainer) -> None:
        if self.stopping:
            return
        assert self.network is not None
        with self._lock:
            self.started[name] = container
        container.start()
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        settings = wrapped.attrs["NetworkSettings"]
        with self._lock:
            self.running[name] = wrapped
            self.addresses[name] = settings["Networks"][self.network.name]["IPAddress"]
            for key, bindings in (settings.get("Ports") or {}).items():
                if bindings:
                    self.host_ports[(name, int(key.split("/")[0]))] = int(bindings[0]["HostPort"])
            self.volumes += [m["Name"] for m in wrapped.attrs.get("Mounts") or [] if m.get("Type") == "volume"]

    def remove(self, name: str) -> dict[int, int]:
        """Stop (SIGTERM, then its grace period) and remove one container, no longer watched; the 127.0.0.1 ports
        its ports were published on (container port -> host port), for the one that takes its place."""
        old = self.running.pop(name)
        close_client(self.started.pop(name))
        ports = {port: host for (owner, port), host in self.host_ports.items() if owner == name}
        old.stop(timeout=STOP_GRACE)
        old.remove(v=True)
        return ports

    def stop_starting(self) -> None:
        """Start nothing more; wait for the starts under way."""
        self.stopping = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def watched(self) -> dict[str, Container]:
        """The running containers as they stand (a copy: starts may still add to them)."""
        with self._lock:
            return dict(self.running)

    def remove_all(self, client: docker.DockerClient) -> list[str]:
        """Remove every container, network and volume of the run (by its label); what could not be, and what is
        still there after."""
        problems = cleanup.remove_run(client, self.run_id, self.volumes)
        cleanup.remove_stale_bridge_rules()
        for container in self.started.values():
            close_client(container)
        left = cleanup.leftovers(client, self.run_id)
        if left:
            problems.append(f"still there: {left.describe()}")
        return problems


def close_client(container: DockerContainer) -> None:
    """Close the Docker client testcontainers made for ``container`` (one per container)."""
    with contextlib.suppress(Exception):
        container.get_docker_client().client.close()
