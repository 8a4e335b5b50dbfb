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

This module puts together what ``immich_conformance.containers`` holds (the run's folder, its containers, their
readiness and logs) and offers it to the scenarios.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import shutil
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .. import run_folders
from ..access_keys import KeyRing
from ..backups.sql_access import PSQL_FILE_SCRIPT, PSQL_SCRIPT
from ..containers import cleanup, engine, readiness, run_folder, watch
from ..containers.container_set import ContainerSet
from ..containers.container_spec import ContainerSpec, StackSpec, TranslationError
from ..containers.docker_images import build_options, immich_images, overlay_for, prepare_images
from ..containers.engine import ContainersError
from ..containers.readiness import ContainerStopped
from ..containers.translate import translate
from ..images.recipes import image_refs
from ..procs import process_identity
from .base import Endpoint, LogMarks, Target
from .bootstrap import bootstrap_user
from .supervision import Death

if TYPE_CHECKING:
    import docker

LOOPBACK = "127.0.0.1"
RUN_FILE = "run.json"
# What the suite reaches directly, besides the NodePorts: the origin proxy, where cloudflared delivers.
REACH = (("origin-proxy", "http"),)
LAN_SERVICE = ("immich-server", "http")
EDGE_SERVICE = ("edge-standin", "app")
ORIGIN_SERVICE = ("origin-proxy", "http")
DATABASE = "immich-postgres"  # the stack's Postgres Deployment, and so its container
SQL_FILE = PurePosixPath("/tmp/immich-conformance-restore.sql")  # in the database container, while psql reads it

__all__ = ["ContainerStopped", "ContainersSandbox"]


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
        self.containers = ContainerSet(self.run_id, self.prefix, self.labels)
        self._folders: dict[str, Path] = {}
        self._run_refs: dict[str, str] = {}
        self._signals = cleanup.TerminationAsInterrupt()
        self._closed = False
        self._api_key = ""
        self.timings: dict[str, float] = {}
        self._deaths: dict[str, Death] = {}
        self._supervising = False

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
        self.client = engine.engine_for_run(self._progress)
        self.workdir = run_folder.create(self._progress)
        self._progress(f"run {self.run_id}: work folder {self.workdir}")
        self.material, rendered = run_folder.render(self.workdir, self.overlay)
        self.aud, self.team_domain = self.material.aud, self.material.team_domain
        self.public_hostname = self.material.public_hostname
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
            for name, ref in immich_images(self.spec, self.immich_tag, self.overlay).items():
                self.spec.containers[name] = replace(self.spec.containers[name], image=ref)
        relay_image = image_refs()["edge-standin"]
        refs = [c.image for c in self.spec.containers.values()] + ([relay_image] if self.spec.relays else [])
        self.timings["prepare"] = time.monotonic() - began
        self._run_refs = prepare_images(self.client, refs, self._progress, cache_dir=self.cache_dir,
                                        options=build_options(self.immich_tag))
        self.timings["images"] = time.monotonic() - began
        self._folders = run_folder.host_folders(self.workdir, self.spec, rendered.settings)
        self._start_containers(relay_image)
        self.timings["started"] = time.monotonic() - began
        readiness.wait_ready(self.containers, self.spec, self._progress)
        self.timings["ready"] = time.monotonic() - began
        self._lan = Endpoint(f"http://{LOOPBACK}:{self._published(*LAN_SERVICE)}")
        self._external = Endpoint(f"http://{LOOPBACK}:{self._published(*EDGE_SERVICE)}",
                                  {"Host": self.public_hostname})
        self._origin = Endpoint(f"http://{LOOPBACK}:{self._published(*ORIGIN_SERVICE)}",
                                {"Host": self.public_hostname})
        self._api_key = bootstrap_user(self._lan)
        self._write_run_file()
        self._supervising = True
        self.timings["total"] = time.monotonic() - began
        self._progress(f"containers ready in {self.timings['total']:.1f}s ({self.images} images; LAN {self._lan.url}, "
                       f"public hostname {self._external.url}, origin proxy {self._origin.url}; work folder "
                       f"{self.workdir})")

    @property
    def nas(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "nas"

    def _start_containers(self, relay_image: str) -> None:
        assert self.spec is not None
        network = self.containers.create_network()
        self._progress(f"starting {len(self.spec.containers)} containers on the network {network}")
        jobs: list[Callable[[], None]] = [lambda s=s: self._start_one(s) for s in self.spec.containers.values()]
        jobs += [lambda r=r: self.containers.start_relay(r, self._run_refs[relay_image]) for r in self.spec.relays]
        self.containers.start_all(jobs)

    def _start_one(self, spec: ContainerSpec, host_ports: dict[int, int] | None = None) -> None:
        """Start the container of one Deployment; ``host_ports``: the 127.0.0.1 ports to publish its ports on
        (default: free ones)."""
        assert self.workdir is not None
        self.containers.start(spec, self._run_refs[spec.image], folders=self._folders,
                              pod_folder=run_folder.pod_folder(self.workdir, spec.deployment), host_ports=host_ports)

    def _published(self, service: str, port_name: str) -> int:
        assert self.spec is not None
        return self.containers.host_ports[self.spec.target_of(service, port_name)]

    # --- another Immich release on the same folders -----------------------------------------------------------------
    def upgrade_immich(self, tag: str) -> None:
        """Replace the Immich server and machine-learning containers by release ``tag``'s, as a Recreate rollout
        does: each old container is stopped (SIGTERM, then its grace period), the new one starts on the same NAS
        folder, database, network aliases and 127.0.0.1 ports, with new pod volumes. Returns when every new
        container is Ready; a new container that stops fails it, with its log."""
        assert self.client is not None and self.spec is not None and self.workdir is not None
        images = immich_images(self.spec, tag, self.overlay)
        self._run_refs.update(prepare_images(self.client, images.values(), self._progress, cache_dir=self.cache_dir,
                                             options=build_options(tag)))
        began = time.monotonic()
        for name, ref in images.items():
            ports = self.containers.remove(name)
            spec = self.spec.containers[name] = replace(self.spec.containers[name], image=ref)
            run_folder.pod_volumes(self.workdir, spec)
            self._start_one(spec, host_ports=ports)
            self._progress(f"{name}: {ref} started in place of the old container")
        readiness.wait_ready(self.containers, self.spec, self._progress, set(images))
        self.immich_tag = tag
        self._write_run_file()
        self._progress(f"Immich {tag} Ready {time.monotonic() - began:.1f}s after the old containers stopped")

    def running_images(self) -> dict[str, str]:
        """The image each component's container runs ("component/container" -> image)."""
        assert self.spec is not None
        return {f"{name}/{name}": spec.image for name, spec in self.spec.containers.items()}

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
               "media_location": str(self.media_location), "containers": sorted(self.containers.running),
               "owner": process_identity()}
        partial = self.run_file.with_suffix(".partial")
        partial.write_text(json.dumps(doc, indent=2) + "\n")
        partial.replace(self.run_file)

    # --- teardown --------------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        with cleanup.interrupts_deferred():
            self._closed = True
            self.containers.stop_starting()
            if self.client is not None:
                if self.keep and self.workdir is not None:
                    watch.save_logs(self.containers.running, self.workdir / "logs")
                for problem in self.containers.remove_all(self.client):
                    print(f"containers: {problem}", file=sys.stderr)
                self.client.close()
            if self.workdir is not None and not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
            elif self.workdir is not None:
                run_folders.unmark(self.workdir)
                print(f"containers: work folder kept: {self.workdir}", file=sys.stderr)
            self._signals.restore()
            atexit.unregister(self.close)

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
        return {name: now for name in self.containers.running}

    def logs_since(self, marks: LogMarks) -> dict[str, str]:
        return watch.logs_since(self.containers.running, marks)

    def dead_components(self) -> list[Death]:
        """Each container that stopped while the run was up (its State asked of Docker at each call; a container
        replaced on purpose, as by ``upgrade_immich``, is no longer watched)."""
        if not self._supervising or self._closed:
            return list(self._deaths.values())
        watched = {name: c for name, c in self.containers.watched().items() if name not in self._deaths}
        self._deaths.update(watch.stopped(watched))
        return list(self._deaths.values())

    def diagnostics(self, marks: LogMarks) -> dict[str, str]:
        return {**self.logs_since(marks), "container states": watch.states(self.containers.running)}

    def psql(self, query: str) -> str:
        """Run ``query`` with psql in the database container (``docker exec``); its rows as CSV, no header.
        ContainersError says why it could not."""
        code, out, err = self._exec_in_database(["sh", "-c", PSQL_SCRIPT, "sh", query])
        if code != 0:
            raise ContainersError(f"psql in the {DATABASE} container failed: {err[:500].strip()}")
        return out

    def load_sql(self, sql: str, database: str | None) -> str:
        """Feed ``sql`` to psql in the database container, into ``database`` (None: the stack's own); psql's stderr.
        The file is copied into the container's /tmp and removed afterwards."""
        container = self._database_container()
        data = sql.encode()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(SQL_FILE.name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        if not container.put_archive(str(SQL_FILE.parent), archive.getvalue()):
            raise ContainersError(f"could not copy the SQL into the {DATABASE} container")
        try:
            code, _, err = self._exec_in_database(["sh", "-c", PSQL_FILE_SCRIPT, "sh", database or "", str(SQL_FILE)])
        finally:
            self._exec_in_database(["rm", "-f", str(SQL_FILE)])
        if code != 0:
            raise ContainersError(f"psql in the {DATABASE} container failed: {err[-500:].strip()}")
        return err

    def _database_container(self) -> docker.models.containers.Container:
        container = self.containers.running.get(DATABASE)
        if container is None:
            raise ContainersError(f"no {DATABASE} container runs")
        return container

    def _exec_in_database(self, argv: list[str]) -> tuple[int, str, str]:
        code, (out, err) = self._database_container().exec_run(argv, demux=True)
        return code, (out or b"").decode(), (err or b"").decode()

    @contextlib.contextmanager
    def immich_server_stopped(self) -> Iterator[None]:
        """The Immich server's container stopped and removed (as ``docker compose stop immich-server``); afterwards
        a new one on the same ports, folders and database, Ready. When the body fails the server stays stopped (its
        database may be half restored); ``close()`` removes the rest."""
        assert self.spec is not None and self.workdir is not None
        name = LAN_SERVICE[0]
        ports = self.containers.remove(name)
        self._progress(f"{name} stopped")
        yield
        spec = self.spec.containers[name]
        run_folder.pod_volumes(self.workdir, spec)
        self._start_one(spec, host_ports=ports)
        readiness.wait_ready(self.containers, self.spec, self._progress, {name})
        self._write_run_file()
        self._progress(f"{name} started again, Ready")
