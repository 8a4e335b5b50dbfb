"""The sandbox with ``--runtime containers``: the stack's Deployments as Docker containers, started by testcontainers.

The rendered stack is the one source of what runs: ``stack/overlays/kind-edge-standin`` (``--images pinned``: the real
images the stack pins) or ``stack/overlays/ci`` (``--images local``: the project's own images), rendered from a copy of
stack/ in the run's folder that holds the run's own generated secrets and edge material (the repository's files are
neither read nor written). ``immich_conformance.containers.translate`` turns each Deployment into a container:
environment, command and args, ports, readiness probe, volumes and security settings, Service names as network
aliases on one private network (kube-proxy's port mapping by a relay container where a Service needs it).

Like the cluster: the NAS folder is bind-mounted where the stack mounts the NAS library (/data), the internal drive's
folders where it mounts them (Postgres's data directory). Endpoints: the LAN is immich-server's NodePort target port,
the public hostname the edge stand-in's, and the origin proxy its Service port, each published on 127.0.0.1 only.
Nothing leaves the machine: the run refuses to start without the DOCKER-USER egress guard. Logs are the containers'
own (``docker logs --since``). ``close()`` removes every container, network and volume the run made (also after a
failed start, on Ctrl-C and on SIGTERM); no reaper container is used.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import httpx

from .. import STACK_DIR
from ..access_keys import KeyRing
from ..containers import cleanup, engine
from ..containers.engine import ContainersError
from ..containers.images import overlay_for, prepare_images
from ..containers.translate import ContainerSpec, Probe, Relay, StackSpec, TranslationError, translate
from ..images.recipes import NONROOT_UID, PYTHON, BuildOptions, image_refs
from ..procs import GiveUp, WaitTimeout, port_open, wait_until
from ..versions import IMMICH_IMAGE_NAMES, immich_image_at
from .base import Endpoint, LogMarks, Target
from .bootstrap import bootstrap_user

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer

    from ..images.edge_material import EdgeMaterial
    from ..stack_checks.rendering import RenderedOverlay

LOOPBACK = "127.0.0.1"
RUN_FILE = "run.json"
STOP_GRACE = 30
"""Seconds a container has to stop after SIGTERM (the pod's terminationGracePeriodSeconds default)."""
READY_TIMEOUT = 180.0
"""At most this long for every container to become Ready (the stack's startup budgets are longer: a broken start
should not hold the run for ten minutes)."""
START_WORKERS = 4
# What the suite reaches directly, besides the NodePorts: the origin proxy, where cloudflared delivers.
REACH = (("origin-proxy", "http"),)
LAN_SERVICE = ("immich-server", "http")
EDGE_SERVICE = ("edge-standin", "app")
ORIGIN_SERVICE = ("origin-proxy", "http")
NAS_SETTING = "nasLibraryPath"
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


class ContainerStopped(GiveUp, ContainersError):
    """A container stopped while the run waited for it to become Ready (the message ends with its log)."""


def _real_secrets(directory: str, names: list[str]) -> set[str]:
    """copytree ignore: the repository's own secret files stay where they are (examples are copied)."""
    return {n for n in names if not n.endswith(".example")} if Path(directory).name == "secrets" else set()


class ContainersSandbox(Target):
    """The sandbox's components as containers; ``images`` is "pinned" or "local"."""

    name = "sandbox"
    runtime = "containers"

    def __init__(self, *, images: str = "pinned", keep: bool = False, progress: Callable[[str], None] | None = None,
                 cache_dir: Path | None = None, immich_tag: str | None = None) -> None:
        self.images = images
        self.immich_tag = immich_tag
        """The Immich release to run (server and machine learning); None: the one the stack pins."""
        self.overlay = overlay_for(images)
        self.keep = keep
        self.cache_dir = cache_dir
        self._progress = progress or (lambda message: None)
        self.run_id = uuid.uuid4().hex[:12]
        self.prefix = f"ic-{self.run_id[:8]}"
        self.labels = cleanup.run_labels(self.run_id)
        self.workdir: Path | None = None
        self.client: docker.DockerClient | None = None
        self.spec: StackSpec | None = None
        self._containers: dict[str, DockerContainer] = {}
        self._wrapped: dict[str, Container] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._addresses: dict[str, str] = {}
        self._host_ports: dict[tuple[str, int], int] = {}
        self._volumes: list[str] = []
        self._signals = cleanup.TerminationAsInterrupt()
        self._closed = False
        self._api_key = ""
        self.timings: dict[str, float] = {}

    # --- lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> ContainersSandbox:
        from docker.errors import DockerException

        self._signals.install()
        atexit.register(self.close)
        try:
            return super().start()  # closes what was started when a step fails
        except DockerException as exc:
            raise ContainersError(f"Docker refused a step of the start: {engine.one_line(str(exc), 300)}") from exc

    def _start(self) -> None:
        began = time.monotonic()
        from testcontainers.core.config import testcontainers_config

        # The reaper's image cannot be pulled here; this run removes what it made itself.
        os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
        testcontainers_config.ryuk_disabled = True
        self.client = engine.connect()
        if os.geteuid() != 0:
            raise ContainersError("--runtime containers runs as root: it hands Postgres's data folder to the "
                                  "database's user as on the node, and checks the egress guard (iptables)")
        engine.require_egress_guard()
        swept = cleanup.sweep_dead_runs(self.client)
        if swept:
            self._progress(f"removed what {len(swept)} earlier run(s) left behind (their process was gone)")
        self.workdir = Path(tempfile.mkdtemp(prefix="immich-containers-"))
        self.workdir.chmod(0o755)  # the containers' users reach their mounted files through it
        self._progress(f"run {self.run_id}: work folder {self.workdir}")
        material, rendered = self._render()
        self.material = material
        self.aud, self.team_domain, self.public_hostname = material.aud, material.team_domain, \
            material.public_hostname
        try:
            self.spec = translate(rendered.documents, reach=REACH)
            server_env = self.spec.containers[self.spec.target_of(*LAN_SERVICE)[0]].env
            proxy_aud = self.spec.containers[self.spec.target_of(*ORIGIN_SERVICE)[0]].env.get("CF_ACCESS_AUD")
            self.spec.target_of(*EDGE_SERVICE)
        except TranslationError as exc:
            raise ContainersError(f"stack/overlays/{self.overlay}: {exc}") from None
        self.media_location = PurePosixPath(server_env.get("IMMICH_MEDIA_LOCATION", str(self.media_location)))
        if proxy_aud != self.aud:
            raise ContainersError(f"the origin proxy's CF_ACCESS_AUD ({proxy_aud}) is not the edge stand-in's AUD "
                                  f"({self.aud}): stack/components/edge-standin/origin-proxy.env sets both")
        if self.immich_tag:
            for name, ref in self._immich_images(self.immich_tag).items():
                self.spec.containers[name] = replace(self.spec.containers[name], image=ref)
        relay_image = image_refs()["edge-standin"]
        refs = [c.image for c in self.spec.containers.values()] + ([relay_image] if self.spec.relays else [])
        self.timings["prepare"] = time.monotonic() - began
        self._run_refs = prepare_images(self.client, refs, self._progress, cache_dir=self.cache_dir,
                                        options=_build_options(self.immich_tag))
        self.timings["images"] = time.monotonic() - began
        self._host_folders(rendered.settings)
        self._start_containers(relay_image)
        self.timings["started"] = time.monotonic() - began
        self._wait_ready()
        self.timings["ready"] = time.monotonic() - began
        lan_port = self._published(*LAN_SERVICE)
        self._lan = Endpoint(f"http://{LOOPBACK}:{lan_port}")
        self._external = Endpoint(f"http://{LOOPBACK}:{self._published(*EDGE_SERVICE)}",
                                  {"Host": self.public_hostname})
        self._origin = Endpoint(f"http://{LOOPBACK}:{self._published(*ORIGIN_SERVICE)}",
                                {"Host": self.public_hostname})
        self._api_key = bootstrap_user(self._lan)
        self._write_run_file()
        self.timings["total"] = time.monotonic() - began
        self._progress(f"containers ready in {self.timings['total']:.1f}s ({self.images} images; LAN {self._lan.url}, "
                       f"public hostname {self._external.url}, origin proxy {self._origin.url}; work folder "
                       f"{self.workdir})")

    def _render(self) -> tuple[EdgeMaterial, RenderedOverlay]:
        """The overlay rendered from a copy of stack/ holding this run's secrets and edge material."""
        from ..images.edge_material import EdgeMaterialError, prepare_edge_material
        from ..stack_checks.rendering import StackConfigError, missing_secret_files, overlay_dir, render_overlay

        assert self.workdir is not None
        stack = self.workdir / "stack"
        shutil.copytree(STACK_DIR, stack, ignore=_real_secrets)
        try:
            material = prepare_edge_material(stack / "components" / "edge-standin")
            for item in missing_secret_files(overlay_dir(stack, self.overlay)):
                if item.example is None:
                    raise ContainersError(f"{item.advice(stack.parent)}: the containers runtime makes the run's "
                                          "secrets from the examples")
                item.path.write_text(_secrets_from_example(item.example.read_text()))
                item.path.chmod(0o600)
            rendered = render_overlay(self.overlay, stack, with_example_secrets=False)
        except (EdgeMaterialError, StackConfigError) as exc:
            raise ContainersError(f"stack/overlays/{self.overlay}: {exc}") from None
        if not rendered.settings:
            rendered.settings = _node_settings(stack, self.overlay)
        return material, rendered

    def _host_folders(self, settings: dict[str, str]) -> None:
        """The node's folders as this run's: the NAS library, and the internal drive's folders."""
        assert self.workdir is not None and self.spec is not None
        folders: dict[str, Path] = {}
        for key, node_path in settings.items():
            if key.endswith("Path"):
                folders[node_path] = (self.workdir / "nas" if key == NAS_SETTING
                                      else self.workdir / "internal-drive" / PurePosixPath(node_path).name)
        self._folders = folders
        for spec in self.spec.containers.values():
            for volume, folder in spec.host_folders.items():
                if folder.node_path not in folders:
                    raise ContainersError(
                        f"Deployment {spec.deployment} mounts hostPath {folder.node_path} (volume {volume}), which is "
                        f"none of the node folders the stack's settings name ({', '.join(sorted(folders))})")
                path = folders[folder.node_path]
                path.mkdir(parents=True, exist_ok=True)
                if folder.uid is not None:
                    os.chown(path, folder.uid, folder.gid if folder.gid is not None else -1)
                    path.chmod(0o700)
            self._pod_volumes(spec)

    def _pod_volumes(self, spec: ContainerSpec) -> None:
        """A pod's own volumes, new (as for every new pod): its emptyDirs, its ConfigMap and Secret files."""
        assert self.workdir is not None
        pod = self.workdir / "volumes" / spec.deployment
        shutil.rmtree(pod, ignore_errors=True)
        for volume, empty in spec.empty_dirs.items():
            if empty.memory:
                continue
            path = pod / volume
            path.mkdir(parents=True)
            if empty.group is not None:  # as the kubelet: the pod's fsGroup, setgid, writable by all
                os.chown(path, 0, empty.group)
            path.chmod(0o2777 if empty.group is not None else 0o777)
        for volume, files in spec.file_volumes.items():
            target = pod / volume
            target.mkdir(parents=True)
            for key, data in files.files.items():
                path = target / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                path.chmod(files.mode)
                if files.group is not None:
                    os.chown(path, 0, files.group)

    @property
    def nas(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "nas"

    # --- containers ------------------------------------------------------------------------------------------------
    def _start_containers(self, relay_image: str) -> None:
        from testcontainers.core.network import Network

        assert self.spec is not None
        network = Network(docker_network_kw={"driver": "bridge", "labels": self.labels})
        network.name = f"immich-conformance-{self.run_id}"
        network.create()
        self._network = network
        self._progress(f"starting {len(self.spec.containers)} containers on the network {network.name}")
        jobs: list[Callable[[], None]] = [lambda s=s: self._start_one(s) for s in self.spec.containers.values()]
        jobs += [lambda r=r: self._start_relay(r, relay_image) for r in self.spec.relays]
        self._pool = ThreadPoolExecutor(max_workers=START_WORKERS, thread_name_prefix="containers-start")
        futures = [self._pool.submit(job) for job in jobs]
        for future in futures:
            future.result()
        self._pool.shutdown(wait=True)
        self._pool = None

    def _container(self, name: str, image: str) -> DockerContainer:
        from testcontainers.core.container import DockerContainer

        container = DockerContainer(image, name=f"{self.prefix}-{name}", network=self._network)
        return container

    def _start_one(self, spec: ContainerSpec, host_ports: dict[int, int] | None = None) -> None:
        """Start the container of one Deployment; ``host_ports``: the 127.0.0.1 ports to publish its ports on
        (default: free ones)."""
        assert self.workdir is not None
        container = self._container(spec.deployment, self._run_refs[spec.image])
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
                source = self._folders[spec.host_folders[mount.volume].node_path]
            else:
                source = self.workdir / "volumes" / spec.deployment / mount.volume
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

    def _start_relay(self, relay: Relay, image: str) -> None:
        container = self._container(f"svc-{relay.service}", self._run_refs[image])
        container.with_network_aliases(relay.service)
        container.with_command([f"{port}={self.prefix}-{deployment}:{target}"
                                for port, deployment, target in relay.routes])
        container.with_kwargs(labels={**self.labels, cleanup.DEPLOYMENT_LABEL: f"service/{relay.service}"},
                              entrypoint=[PYTHON, "-c", RELAY_CODE], user=f"{NONROOT_UID}:{NONROOT_UID}",
                              read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
        self._launch(f"svc-{relay.service}", container)

    def _launch(self, name: str, container: DockerContainer) -> None:
        if self._closed:
            return
        with self._lock:
            self._containers[name] = container
        container.start()
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        settings = wrapped.attrs["NetworkSettings"]
        with self._lock:
            self._wrapped[name] = wrapped
            self._addresses[name] = settings["Networks"][self._network.name]["IPAddress"]
            for key, bindings in (settings.get("Ports") or {}).items():
                if bindings:
                    self._host_ports[(name, int(key.split("/")[0]))] = int(bindings[0]["HostPort"])
            self._volumes += [m["Name"] for m in wrapped.attrs.get("Mounts") or [] if m.get("Type") == "volume"]

    def _published(self, service: str, port_name: str) -> int:
        assert self.spec is not None
        deployment, port = self.spec.target_of(service, port_name)
        return self._host_ports[(deployment, port)]

    # --- readiness -------------------------------------------------------------------------------------------------
    def _probes(self) -> dict[str, Probe]:
        assert self.spec is not None
        probes = {name: spec.readiness for name, spec in self.spec.containers.items() if spec.readiness}
        for relay in self.spec.relays:
            probes[f"svc-{relay.service}"] = Probe("tcp", budget=READY_TIMEOUT, port=relay.routes[0][0])
        return probes

    def _probe_once(self, name: str, probe: Probe) -> bool:
        address = self._addresses[name]
        if probe.kind == "http":
            url = f"{probe.scheme.lower()}://{address}:{probe.port}{probe.path}"
            with contextlib.suppress(httpx.HTTPError):
                status = httpx.get(url, headers=dict(probe.headers), timeout=probe.timeout, verify=False).status_code
                return 200 <= status < 400
            return False
        if probe.kind == "tcp":
            with contextlib.suppress(OSError), socket.create_connection((address, probe.port), timeout=probe.timeout):
                return True
            return False
        result = self._wrapped[name].exec_run(list(probe.command))
        return result.exit_code == 0

    def _check_running(self, name: str) -> None:
        wrapped = self._wrapped[name]
        wrapped.reload()
        if wrapped.status != "running":
            code = wrapped.attrs["State"].get("ExitCode")
            tail = wrapped.logs(tail=30).decode(errors="replace").strip()
            raise ContainerStopped(f"the {name} container stopped (exit code {code}) before it was Ready; its log "
                                   f"ends:\n{tail}")

    def _wait_ready(self, names: set[str] | None = None) -> None:
        """Wait until every container (of ``names``, when given) is Ready; fail as soon as one stops."""
        probes = {n: p for n, p in self._probes().items() if names is None or n in names}
        waiting = dict(probes)
        began = time.monotonic()

        def all_ready() -> bool:
            for name, probe in list(waiting.items()):
                self._check_running(name)
                if self._probe_once(name, probe):
                    self._progress(f"{name} Ready ({probe.describe()}) after {time.monotonic() - began:.1f}s")
                    del waiting[name]
            return not waiting

        timeout = min(max(p.budget for p in probes.values()), READY_TIMEOUT) if probes else 1.0
        try:
            wait_until(all_ready, timeout=timeout, interval=0.2, what="every container Ready")
        except WaitTimeout:
            details = "; ".join(f"{n}: {p.describe()}" for n, p in waiting.items())
            raise ContainersError(f"not Ready within {timeout:.0f}s: {details} (run with --keep-sandbox to keep "
                                  "their logs in the work folder)") from None
        for name in self._wrapped:
            if name not in probes and (names is None or name in names):
                self._check_running(name)
        for (name, _), host_port in self._host_ports.items():
            if names is not None and name not in names:
                continue
            wait_until(lambda p=host_port: port_open(p), timeout=10, what=f"127.0.0.1:{host_port} to answer")

    # --- another Immich release on the same folders -----------------------------------------------------------------
    def _immich_images(self, tag: str) -> dict[str, str]:
        """The Deployments that run an Immich image, each with its image at release ``tag``."""
        assert self.spec is not None
        images = {name: ref for name, spec in self.spec.containers.items() if (ref := immich_image_at(spec.image, tag))}
        if not images:
            raise ContainersError(f"stack/overlays/{self.overlay} runs none of Immich's images "
                                  f"({', '.join(IMMICH_IMAGE_NAMES)}): there is no Immich to run at {tag}")
        return images

    def upgrade_immich(self, tag: str) -> None:
        """Replace the Immich server and machine-learning containers by release ``tag``'s, as a Recreate rollout
        does: each old container is stopped (SIGTERM, then its grace period), the new one starts on the same NAS
        folder, database, network aliases and 127.0.0.1 ports, with new pod volumes. Returns when every new
        container is Ready; a new container that stops fails it, with its log."""
        assert self.client is not None and self.spec is not None
        images = self._immich_images(tag)
        self._run_refs.update(prepare_images(self.client, images.values(), self._progress, cache_dir=self.cache_dir,
                                             options=_build_options(tag)))
        began = time.monotonic()
        for name, ref in images.items():
            old = self._wrapped.pop(name)
            _close_client(self._containers.pop(name))
            ports = {port: host for (owner, port), host in self._host_ports.items() if owner == name}
            old.stop(timeout=STOP_GRACE)
            old.remove(v=True)
            spec = self.spec.containers[name] = replace(self.spec.containers[name], image=ref)
            self._pod_volumes(spec)
            self._start_one(spec, host_ports=ports)
            self._progress(f"{name}: {ref} started in place of the old container")
        self._wait_ready(set(images))
        self.immich_tag = tag
        self._write_run_file()
        self._progress(f"Immich {tag} Ready {time.monotonic() - began:.1f}s after the old containers stopped")

    # --- the run file: for a second pytest that tests this run (--runtime containers --deployed) -------------------
    @property
    def run_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / RUN_FILE

    def _write_run_file(self) -> None:
        """What another process needs to test this run (secrets excepted: the API key goes by the environment)."""
        doc = {"run_id": self.run_id, "prefix": self.prefix, "overlay": self.overlay, "images": self.images,
               "immich_tag": self.immich_tag, "workdir": str(self.workdir), "lan": self._lan.url,
               "external": self._external.url, "origin": self._origin.url,
               "media_location": str(self.media_location), "containers": sorted(self._wrapped),
               "owner": cleanup.process_identity()}
        partial = self.run_file.with_suffix(".partial")
        partial.write_text(json.dumps(doc, indent=2) + "\n")
        partial.replace(self.run_file)

    # --- teardown --------------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        with cleanup.interrupts_deferred():
            self._closed = True
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            if self.client is not None:
                if self.keep and self.workdir is not None:
                    self._save_logs()
                problems = cleanup.remove_run(self.client, self.run_id, self._volumes)
                for container in self._containers.values():
                    _close_client(container)
                left = cleanup.leftovers(self.client, self.run_id)
                if left:
                    problems.append(f"still there: {left.describe()}")
                for problem in problems:
                    print(f"containers: {problem}", file=sys.stderr)
                self.client.close()
            if self.workdir is not None and not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
            elif self.workdir is not None:
                print(f"containers: work folder kept: {self.workdir}", file=sys.stderr)
            self._signals.restore()
            atexit.unregister(self.close)

    def _save_logs(self) -> None:
        assert self.workdir is not None
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        for name, container in self._wrapped.items():
            with contextlib.suppress(Exception):
                (logs / f"{name}.log").write_bytes(container.logs())

    # --- what the scenarios use ------------------------------------------------------------------------------------
    @property
    def origin(self) -> Endpoint:
        return self._origin

    @property
    def service_token_headers(self) -> dict[str, str]:
        return self.material.service_token_headers

    def access_keys(self) -> KeyRing:
        return KeyRing.load(self.material.key_ring_file)

    @property
    def nas_root(self) -> Path:
        return self.nas

    def sentinel_url(self, component: str) -> str:
        urls = {"origin-proxy": f"{self._origin.url}/api/server/ping",
                "immich-server": f"{self._lan.url}/api/server/ping"}
        if component not in urls:
            return super().sentinel_url(component)
        return urls[component]

    def log_marks(self) -> LogMarks:
        now = time.time()
        return {name: now for name in self._wrapped}

    def logs_since(self, marks: LogMarks) -> dict[str, str]:
        out = {}
        for name, container in self._wrapped.items():
            since = marks.get(name)
            try:
                raw = container.logs(since=since) if since else container.logs()
            except Exception as exc:  # noqa: BLE001 - a log that cannot be read is shown as such
                raw = f"(cannot read the log: {exc})".encode()
            out[name] = raw.decode(errors="replace")
        return out

    def diagnostics(self, marks: LogMarks) -> dict[str, str]:
        out = self.logs_since(marks)
        states = []
        for name, wrapped in self._wrapped.items():
            with contextlib.suppress(Exception):
                wrapped.reload()
                states.append(f"{name}: {wrapped.status} (exit code {wrapped.attrs['State'].get('ExitCode')})")
        out["container states"] = "\n".join(states)
        return out


def _close_client(container: DockerContainer) -> None:
    """Close the Docker client testcontainers made for ``container`` (one per container)."""
    with contextlib.suppress(Exception):
        container.get_docker_client().client.close()


def _build_options(immich_tag: str | None) -> BuildOptions | None:
    """How to build the project's images for Immich ``immich_tag``: the API double that reports that release."""
    return BuildOptions.for_immich_tag(immich_tag) if immich_tag else None


def _secrets_from_example(text: str) -> str:
    """An env file from its example: every password, token or secret a new random value."""
    lines = []
    for line in text.splitlines():
        key, sep, _ = line.partition("=")
        secret = sep and not line.lstrip().startswith("#") and key.strip().upper().endswith(("PASSWORD", "TOKEN",
                                                                                             "SECRET"))
        lines.append(f"{key}={secrets.token_hex(24)}" if secret else line)
    return "\n".join(lines) + "\n"


def _node_settings(stack: Path, overlay: str) -> dict[str, str]:
    """The stack-settings of the overlay, or of the overlay it builds on (ci and kind-edge-standin: kind)."""
    import yaml

    from ..stack_checks.rendering import overlay_dir, read_settings

    seen: set[Path] = set()
    pending = [overlay_dir(stack, overlay)]
    while pending:
        folder = pending.pop(0).resolve()
        if folder in seen:
            continue
        seen.add(folder)
        settings = read_settings(folder)
        if settings:
            return settings
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text()) or {}
        pending += [folder / r for r in kustomization.get("resources") or []
                    if isinstance(r, str) and (folder / r / "kustomization.yaml").is_file()]
    raise ContainersError(f"stack/overlays/{overlay} names no stack-settings (the node's folders): the containers "
                          "runtime maps those folders to the run's")
