"""Each recipe's root filesystem holds its entry point and runs it: checked in the built trees, in a chroot.

The servers run in a writable overlay of the cached tree (nothing is written to the cache), on free 127.0.0.1 ports.
Building takes minutes the first time (then the cache answers in a second): marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from immich_conformance.images.edge_material import prepare_edge_material
from immich_conformance.images.recipes import NONROOT_UID, POSTGRES_UID, RECIPES, BuildOptions
from immich_conformance.procs import LOOPBACK, ManagedProcess, free_port, free_ports, port_open, wait_until
from immich_conformance.testing.recording_upstream import RecordingUpstream
from immich_conformance.versions import ENVOY_VERSION, IMMICH_VERSION

from .support import chroot_argv, resolve_inside, run_in, writable_view

pytestmark = pytest.mark.slow

DB_PASSWORD = "Conformance0Password"
START_TIMEOUT = 60


def _as_user(uid: int, argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]


def _image_env(name: str, options: BuildOptions | None = None) -> dict[str, str]:
    return dict(RECIPES[name].config(options or BuildOptions()).env)


@pytest.mark.parametrize("name", list(RECIPES))
def test_root_filesystem_holds_the_entry_point_and_expected_files(name: str,
                                                                  image_rootfs: Callable[[str], Path]) -> None:
    root = image_rootfs(name)
    recipe = RECIPES[name]
    entry = resolve_inside(root, recipe.config(BuildOptions()).entrypoint[0])
    assert entry.is_file() and os.access(entry, os.X_OK), f"{name}: entry point {entry} is not an executable file"
    missing = [p for p in recipe.expected_paths if not os.path.lexists(resolve_inside(root, p))]
    assert not missing, f"{name}: missing {missing}"
    for argv in recipe.smoke_commands:
        done = run_in(root, list(argv))
        assert done.returncode == 0, f"{name}: {' '.join(argv)} failed: {done.stderr}"
    assert not (root / "usr/share/doc").exists() or not any((root / "usr/share/doc").iterdir()), "not slimmed"


def test_envoy_is_the_wheels_release(image_rootfs: Callable[[str], Path]) -> None:
    done = run_in(image_rootfs("origin-proxy"), ["/usr/local/bin/envoy", "--version"])
    assert done.returncode == 0, done.stderr
    assert f"/{ENVOY_VERSION}/" in done.stdout


def test_origin_proxy_runs_the_stacks_start_script_as_its_non_root_user(image_rootfs: Callable[[str], Path],
                                                                         tmp_path: Path) -> None:
    env = {"CF_TEAM_DOMAIN": "conformance-team.cloudflareaccess.test", "CF_ACCESS_AUD": "a" * 64,
           "UPSTREAM_ADDRESS": "immich-server:2283", "RENDER_DIR": "/tmp", "ORIGIN_PROXY_CHECK_ONLY": "1"}
    with writable_view(image_rootfs("origin-proxy"), tmp_path) as root:
        done = run_in(root, _as_user(NONROOT_UID, ["/bin/sh", "/etc/origin-proxy/start.sh"]),
                      {**_image_env("origin-proxy"), **env}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "upper/tmp/origin-proxy-envoy.yaml").is_file()


@dataclass
class RunningPostgres:
    port: int
    root: Path
    process: ManagedProcess


def _start_postgres(root: Path, port: int, log: Path) -> ManagedProcess:
    env = {**_image_env("postgres"), "POSTGRES_PASSWORD": DB_PASSWORD, "POSTGRES_USER": "postgres",
           "POSTGRES_DB": "immich", "POSTGRES_INITDB_ARGS": "--data-checksums"}
    argv = chroot_argv(root, ["/usr/local/bin/docker-entrypoint.sh", "postgres", "-c", f"port={port}",
                              "-c", f"listen_addresses={LOOPBACK}"], env)
    process = ManagedProcess("postgres-image", argv, log_path=log).start()

    def accepts() -> bool:
        with psycopg.connect(f"host={LOOPBACK} port={port} user=postgres dbname=immich password={DB_PASSWORD}",
                             connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)

    process.wait_ready(accepts, timeout=START_TIMEOUT)
    return process


@pytest.fixture(scope="module")
def postgres_image(image_rootfs: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[RunningPostgres]:
    scratch = tmp_path_factory.mktemp("postgres-view")
    port = free_port()
    with writable_view(image_rootfs("postgres"), scratch) as root:
        process = _start_postgres(root, port, scratch / "postgres.log")
        try:
            yield RunningPostgres(port, root, process)
        finally:
            process.stop()


def test_postgres_initialises_with_the_official_environment(postgres_image: RunningPostgres) -> None:
    conninfo = f"host={LOOPBACK} port={postgres_image.port} user=postgres dbname=immich"
    with psycopg.connect(f"{conninfo} password={DB_PASSWORD}", connect_timeout=5) as conn:
        row = conn.execute("select current_database(), current_setting('data_checksums'), "
                           "current_setting('server_version_num')::int / 10000").fetchone()
    assert row == ("immich", "on", 15)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"{conninfo} password=wrong", connect_timeout=5).close()
    data = postgres_image.root / "var/lib/postgresql/data"
    assert data.stat().st_uid == POSTGRES_UID and (data / "PG_VERSION").read_text().strip() == "15"


def test_the_stacks_probe_command_sees_postgres_ready(postgres_image: RunningPostgres) -> None:
    probe = ["sh", "-c", 'pg_isready -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"']
    env = {**_image_env("postgres"), "POSTGRES_USER": "postgres", "POSTGRES_DB": "immich",
           "PGPORT": str(postgres_image.port)}
    done = run_in(postgres_image.root, _as_user(POSTGRES_UID, probe), env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accepting connections" in done.stdout


def test_postgres_refuses_to_initialise_without_a_password(image_rootfs: Callable[[str], Path],
                                                           tmp_path: Path) -> None:
    with writable_view(image_rootfs("postgres"), tmp_path) as root:
        done = run_in(root, _as_user(POSTGRES_UID, ["/usr/local/bin/docker-entrypoint.sh", "postgres"]),
                      _image_env("postgres"))
    assert done.returncode == 1
    assert "POSTGRES_PASSWORD is not set" in done.stderr
    assert not (tmp_path / "upper/var/lib/postgresql/data/PG_VERSION").exists()


def test_redis_answers_the_stacks_probe_as_valkey(image_rootfs: Callable[[str], Path], tmp_path: Path) -> None:
    port = free_port()
    with writable_view(image_rootfs("redis"), tmp_path) as root:
        argv = chroot_argv(root, _as_user(NONROOT_UID, ["/usr/local/bin/redis-entrypoint.sh", "--port", str(port),
                                                        "--bind", LOOPBACK]), _image_env("redis"))
        process = ManagedProcess("redis-image", argv, log_path=tmp_path / "redis.log").start()
        try:
            process.wait_ready(lambda: port_open(port), timeout=START_TIMEOUT)
            for cli in ("redis-cli", "valkey-cli"):
                done = run_in(root, [cli, "-p", str(port), "ping"], _image_env("redis"))
                assert done.stdout.strip() == "PONG", done.stderr
        finally:
            process.stop()


def _python_image(root: Path, name: str, env: dict[str, str], log: Path) -> ManagedProcess:
    config = RECIPES[name].config(BuildOptions(env.pop("IMMICH_DOUBLE_VERSION", IMMICH_VERSION)))
    argv = chroot_argv(root, [*config.entrypoint, *config.cmd], {**config.env, **env})
    return ManagedProcess(name, argv, log_path=log).start()


def test_machine_learning_image_answers_ping(image_rootfs: Callable[[str], Path], tmp_path: Path) -> None:
    port = free_port()
    with writable_view(image_rootfs("immich-machine-learning"), tmp_path) as root:
        process = _python_image(root, "immich-machine-learning", {"IMMICH_HOST": LOOPBACK, "IMMICH_PORT": str(port)},
                                tmp_path / "ml.log")
        try:
            process.wait_ready(lambda: port_open(port), timeout=START_TIMEOUT)
            response = httpx.get(f"http://{LOOPBACK}:{port}/ping", timeout=5)
            assert (response.status_code, response.text) == (200, "pong")
        finally:
            process.stop()


@pytest.mark.parametrize("version", [IMMICH_VERSION, "v2.7.3"])
def test_api_double_image_serves_its_baked_version_on_the_postgres_image(
        version: str, image_rootfs: Callable[[str], Path], postgres_image: RunningPostgres, tmp_path: Path) -> None:
    port = free_port()
    database = f"immich_{version.replace('.', '_').lstrip('v')}"
    with psycopg.connect(f"host={LOOPBACK} port={postgres_image.port} user=postgres dbname=immich "
                         f"password={DB_PASSWORD}", autocommit=True) as conn:
        conn.execute(f'create database "{database}"')
    env = {"IMMICH_DOUBLE_VERSION": version, "IMMICH_HOST": LOOPBACK, "IMMICH_PORT": str(port),
           "DB_HOSTNAME": LOOPBACK, "DB_PORT": str(postgres_image.port), "DB_USERNAME": "postgres",
           "DB_PASSWORD": DB_PASSWORD, "DB_DATABASE_NAME": database, "REDIS_HOSTNAME": LOOPBACK}
    with writable_view(image_rootfs("immich-server"), tmp_path) as root:
        process = _python_image(root, "immich-server", env, tmp_path / "server.log")
        try:
            process.wait_ready(lambda: httpx.get(f"http://{LOOPBACK}:{port}/api/server/ping", timeout=2)
                               .status_code == 200, timeout=START_TIMEOUT)
            reported = httpx.get(f"http://{LOOPBACK}:{port}/api/server/version", timeout=5).json()
        finally:
            process.stop()
    major, minor, patch = (int(x) for x in version.lstrip("v").split("."))
    assert (reported["major"], reported["minor"], reported["patch"]) == (major, minor, patch)


def test_edge_standin_image_runs_the_pod_launcher_as_its_non_root_user(image_rootfs: Callable[[str], Path],
                                                                       tmp_path: Path) -> None:
    component = tmp_path / "component"
    shutil.copytree(Path(__file__).resolve().parents[2] / "stack/components/edge-standin", component,
                    ignore=shutil.ignore_patterns("*.json", "*.pem"))
    material = prepare_edge_material(component)
    origin = RecordingUpstream().start()
    app_port, team_port, listen_port, team_listen_port, relay_port = free_ports(5)
    try:
        with writable_view(image_rootfs("edge-standin"), tmp_path / "view") as root:
            mounted = root / "etc/edge-standin"
            config = json.loads((material.secrets_dir / "edge.json").read_text())
            # the fixed in-pod ports could be taken on this machine: the view gets free ones
            config.update(listen=f"{LOOPBACK}:{listen_port}", team_listen=f"{LOOPBACK}:{team_listen_port}",
                          origin_url=f"http://{LOOPBACK}:{relay_port}")
            (mounted / "edge.json").write_text(json.dumps(config))
            for source, key in (("access-keys.json", "access-keys.json"), ("cert.pem", "tls.crt"),
                                ("key.pem", "tls.key")):
                shutil.copyfile(material.secrets_dir / source, mounted / key)
                os.chown(mounted / key, NONROOT_UID, NONROOT_UID)
            argv = chroot_argv(root, _as_user(NONROOT_UID, [
                *RECIPES["edge-standin"].config(BuildOptions()).entrypoint, "--config", "/etc/edge-standin/edge.json",
                "--publish", f"{LOOPBACK}:{app_port}=listen", "--publish", f"{LOOPBACK}:{team_port}=team_listen",
                "--origin", origin.address]), _image_env("edge-standin"))
            process = ManagedProcess("edge-standin-image", argv, log_path=tmp_path / "edge.log").start()
            try:
                process.wait_ready(lambda: port_open(app_port) and port_open(team_port), timeout=START_TIMEOUT)
                response = httpx.get(f"http://{LOOPBACK}:{app_port}/api/server/ping", timeout=10,
                                     headers={"Host": material.public_hostname, **material.service_token_headers})
                assert response.status_code == 200, response.text
                assert [s.path for s in origin.snapshot()] == ["/api/server/ping"]
                context = ssl.create_default_context(cafile=str(material.ca_file))
                with httpx.Client(verify=context, timeout=10) as client:
                    jwks = client.send(client.build_request(
                        "GET", f"https://{LOOPBACK}:{team_port}/cdn-cgi/access/certs",
                        headers={"Host": material.team_domain}, extensions={"sni_hostname": material.team_domain}))
                assert jwks.status_code == 200 and len(jwks.json()["keys"]) == 2
            finally:
                process.stop()
                wait_until(lambda: not process.alive(), timeout=10, what="edge stand-in stopped")
    finally:
        origin.stop()
