"""Builds every binary of the offline cluster from the Go module proxy, one component at a time, cached.

Each component is built from a small wrapper module of its own (``go.mod`` requiring the real module at the pinned
release), so version selection of one component never disturbs another. Kubernetes' module has no ``staging/``
folder, so its wrapper replaces every ``k8s.io/<staging module>`` with the published ``v0.<minor>.<patch>`` release.
Real version strings are set with ``-ldflags -X``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from immich_conformance import versions

from . import coredns
from .errors import ClusterError

PROGRESS_EVERY = 30.0

K8S_TAG = f"v{versions.KUBERNETES_VERSION}"
K8S_MAJOR, K8S_MINOR_NUMBER, _ = versions.KUBERNETES_VERSION.split(".")
K8S_STAGING_VERSION = f"v0.{K8S_MINOR_NUMBER}.{versions.KUBERNETES_VERSION.split('.')[2]}"


@dataclass(frozen=True)
class Package:
    path: str  # Go package to build
    output: str  # binary name in bin/


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    version: str
    packages: tuple[Package, ...]
    tags: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = ()
    cgo: bool = False
    needs_pkg_config: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    # Source of a main package of the wrapper module itself (built as "."), for a component assembled from the
    # module's packages rather than built from one of its commands.
    main_go: str = ""

    @property
    def outputs(self) -> list[str]:
        return [p.output for p in self.packages]


def _k8s_version_ldflags() -> tuple[str, ...]:
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={K8S_TAG}", f"-X {pkg}.gitMajor={K8S_MAJOR}",
                  f"-X {pkg}.gitMinor={K8S_MINOR_NUMBER}", f"-X {pkg}.gitTreeState=clean",
                  f"-X {pkg}.buildDate=2026-01-01T00:00:00Z"]
    return tuple(flags)


def _containerd_ldflags() -> tuple[str, ...]:
    base = "github.com/containerd/containerd/v2/version"
    return (f"-X {base}.Version={versions.CLUSTER_CONTAINERD_VERSION}",
            f"-X {base}.Package=github.com/containerd/containerd/v2")


COMPONENTS: tuple[Component, ...] = (
    Component(
        name="runc",
        module="github.com/opencontainers/runc",
        version=versions.CLUSTER_RUNC_VERSION,
        packages=(Package("github.com/opencontainers/runc", "runc"),),
        tags=("seccomp",),
        ldflags=(f"-X main.version={versions.CLUSTER_RUNC_VERSION.removeprefix('v')}",),
        cgo=True,
        needs_pkg_config=("libseccomp",),
    ),
    Component(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version=versions.CLUSTER_ETCD_VERSION,
        packages=(Package("go.etcd.io/etcd/server/v3", "etcd"),),
    ),
    Component(
        name="containerd",
        module="github.com/containerd/containerd/v2",
        version=versions.CLUSTER_CONTAINERD_VERSION,
        packages=(
            Package("github.com/containerd/containerd/v2/cmd/containerd", "containerd"),
            Package("github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2", "containerd-shim-runc-v2"),
            Package("github.com/containerd/containerd/v2/cmd/ctr", "ctr"),
        ),
        tags=("no_btrfs", "no_devmapper", "no_zfs"),
        ldflags=_containerd_ldflags(),
    ),
    Component(
        name="cni-plugins",
        module="github.com/containernetworking/plugins",
        version=versions.CLUSTER_CNI_PLUGINS_VERSION,
        packages=tuple(Package(f"github.com/containernetworking/plugins/plugins/{p}", p.rsplit("/", 1)[1])
                       for p in ("main/bridge", "ipam/host-local", "main/loopback", "meta/portmap")),
        ldflags=("-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion="
                 f"{versions.CLUSTER_CNI_PLUGINS_VERSION}",),
    ),
    Component(
        name="coredns",
        module="github.com/coredns/coredns",
        version=versions.CLUSTER_COREDNS_VERSION,
        packages=(Package(".", "coredns"),),
        main_go=coredns.main_package(),
    ),
    Component(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=K8S_TAG,
        packages=tuple(Package(f"k8s.io/kubernetes/cmd/{c}", c) for c in (
            "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl")),
        ldflags=_k8s_version_ldflags(),
    ),
    # Test infrastructure of the offline cluster only (see versions.CLUSTER_KUBE_ROUTER_VERSION): run as the
    # NetworkPolicy controller alone, beside the bridge CNI and kube-proxy. Never part of stack/.
    Component(
        name="kube-router",
        module="github.com/cloudnativelabs/kube-router/v2",
        version=versions.CLUSTER_KUBE_ROUTER_VERSION,
        packages=(Package("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router", "kube-router"),),
        ldflags=(f"-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version="
                 f"{versions.CLUSTER_KUBE_ROUTER_VERSION}",),
    ),
    Component(
        name="cyclonus",
        module="github.com/mattfenwick/cyclonus",
        version=versions.CYCLONUS_VERSION,
        packages=(Package("github.com/mattfenwick/cyclonus/cmd/cyclonus", "cyclonus"),),
    ),
)

ALL_BINARIES = [out for c in COMPONENTS for out in c.outputs]

_PROXY_TROUBLE = re.compile(
    r"dial tcp|no such host|connection refused|i/o timeout|TLS handshake timeout|network is unreachable|"
    r"proxyconnect|Client\.Timeout|server misbehaving|connection reset", re.IGNORECASE)


@dataclass(frozen=True)
class BuildReport:
    built: dict[str, float]  # component -> seconds, only the ones built now
    cached: list[str]

    @property
    def total(self) -> float:
        return sum(self.built.values())


class Builder:
    """Builds the components into ``<cache>/bin``; a component whose stamp matches is not built again."""

    def __init__(self, cache_dir: Path, *, progress: Callable[[str], None] = print) -> None:
        self.cache_dir = cache_dir
        self.bin_dir = cache_dir / "bin"
        self.progress = progress

    # -- public -----------------------------------------------------------------------------------------------------
    def missing(self) -> list[Component]:
        return [c for c in COMPONENTS if not self._is_built(c)]

    def build_all(self) -> BuildReport:
        todo = self.missing()
        cached = [c.name for c in COMPONENTS if c not in todo]
        built: dict[str, float] = {}
        if todo:
            go = self._go()
            self.progress(f"building {len(todo)} component(s) from the Go module proxy, one at a time: "
                          f"{', '.join(c.name for c in todo)} (cache {self.cache_dir})")
            for component in todo:
                built[component.name] = self._build(go, component)
            self._record_times(built)
            self.progress("build done: " + ", ".join(f"{k} {fmt_duration(v)}" for k, v in built.items())
                          + f"; total {fmt_duration(sum(built.values()))}")
        return BuildReport(built=built, cached=cached)

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def recorded_times(self) -> dict[str, float]:
        path = self.cache_dir / "build-times.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    # -- internals --------------------------------------------------------------------------------------------------
    def _stamp(self, component: Component) -> Path:
        return self.cache_dir / "stamps" / f"{component.name}.json"

    def _stamp_content(self, component: Component) -> dict[str, object]:
        content: dict[str, object] = {
            "module": component.module, "version": component.version, "outputs": component.outputs,
            "tags": list(component.tags), "ldflags": list(component.ldflags), "cgo": component.cgo}
        if component.main_go:  # only where there is one: the other components' stamps (and caches) stay valid
            content["main_go"] = hashlib.sha256(component.main_go.encode()).hexdigest()
        return content

    def _is_built(self, component: Component) -> bool:
        try:
            stamp = json.loads(self._stamp(component).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return stamp == self._stamp_content(component) and all(
            (self.bin_dir / out).is_file() for out in component.outputs)

    def _record_times(self, built: dict[str, float]) -> None:
        times = self.recorded_times()
        times.update({k: round(v, 1) for k, v in built.items()})
        (self.cache_dir / "build-times.json").write_text(json.dumps(times, indent=2) + "\n")

    def _go(self) -> str:
        go = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if Path(p).is_file()), None)
        if go is None:
            raise ClusterError("no Go toolchain: the offline cluster builds Kubernetes, etcd, containerd, runc, the "
                               "CNI plugins and CoreDNS from the Go module proxy. Install Go 1.25 or newer from "
                               "https://go.dev/dl/ (Debian's golang package is too old) and put its bin/ on PATH")
        return go

    def _env(self, component: Component, work: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "GOFLAGS": "-mod=mod -buildvcs=false -trimpath",
            "GOTOOLCHAIN": "local",
            "GOWORK": "off",
            "CGO_ENABLED": "1" if component.cgo else "0",
            "GOTMPDIR": str(work / "tmp"),
        })
        env.update(component.extra_env)
        return env

    def _build(self, go: str, component: Component) -> float:
        started = time.monotonic()
        work = self.cache_dir / "src" / component.name
        if work.exists():
            shutil.rmtree(work)
        (work / "tmp").mkdir(parents=True)
        env = self._env(component, work)
        for lib in component.needs_pkg_config:
            self._check_pkg_config(lib, component)
        self.progress(f"[{component.name}] fetching {component.module}@{component.version}")
        go_mod = self._wrapper_go_mod(go, component, env)
        (work / "go.mod").write_text(go_mod)
        if component.main_go:
            (work / "main.go").write_text(component.main_go)
        out_tmp = work / "out"
        out_tmp.mkdir()
        argv = [go, "build", "-p", "2", "-o"]
        if len(component.packages) == 1:
            argv.append(str(out_tmp / component.packages[0].output))
        else:
            argv.append(str(out_tmp) + "/")
        if component.tags:
            argv += ["-tags", ",".join(component.tags)]
        argv += ["-ldflags", " ".join(("-s", "-w", *component.ldflags))]
        argv += [p.path for p in component.packages]
        self.progress(f"[{component.name}] go build {' '.join(p.output for p in component.packages)}")
        log = self.cache_dir / "logs" / f"build-{component.name}.log"
        self._run_with_progress(argv, work, env, log, component)
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        for package in component.packages:
            built = out_tmp / package.output
            if not built.is_file():
                raise ClusterError(f"building {component.name} produced no {package.output} (log {log})")
            built.replace(self.bin_dir / package.output)
        self._stamp(component).parent.mkdir(parents=True, exist_ok=True)
        self._stamp(component).write_text(json.dumps(self._stamp_content(component)))
        shutil.rmtree(work / "tmp", ignore_errors=True)
        elapsed = time.monotonic() - started
        self.progress(f"[{component.name}] built in {fmt_duration(elapsed)}")
        return elapsed

    def _check_pkg_config(self, lib: str, component: Component) -> None:
        result = subprocess.run(["pkg-config", "--exists", lib], capture_output=True)
        if result.returncode != 0:
            raise ClusterError(f"{component.name} needs the C library {lib} and its headers (pkg-config {lib} "
                               "failed): run `python -m immich_conformance.offline_cluster.packages`")

    def _download(self, go: str, target: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
        result = subprocess.run([go, "mod", "download", "-json", target], capture_output=True, text=True,
                                env=env, cwd=cwd)
        info: dict[str, str] = {}
        if result.stdout.strip():
            try:
                info = json.loads(result.stdout)
            except json.JSONDecodeError:
                info = {}
        error = info.get("Error") or (result.stderr.strip() if result.returncode != 0 else "")
        if error:
            proxy = env.get("GOPROXY") or "https://proxy.golang.org,direct"
            if _PROXY_TROUBLE.search(error):
                raise ClusterError(f"the Go module proxy could not be reached to fetch {target} (GOPROXY={proxy}): "
                                   f"{error.strip().splitlines()[-1]}. Fix the network path to the proxy, or set "
                                   "GOPROXY to a reachable proxy, then run `up` again")
            raise ClusterError(f"the Go module proxy could not give {target} (GOPROXY={proxy}): {error.strip()}")
        return info

    def _wrapper_go_mod(self, go: str, component: Component, env: dict[str, str]) -> str:
        work = Path(env["GOTMPDIR"]).parent
        # A throw-away module so `go mod download` runs in module mode without touching the wrapper.
        probe = work / "tmp" / "probe"
        probe.mkdir(parents=True, exist_ok=True)
        (probe / "go.mod").write_text("module probe.invalid\n")
        info = self._download(go, f"{component.module}@{component.version}", env, probe)
        go_version = _go_version(go, env)
        dep_go_mod = Path(info["GoMod"]).read_text() if info.get("GoMod") else ""
        need = _go_directive(dep_go_mod)
        if need and _version_tuple(need) > _version_tuple(go_version):
            raise ClusterError(f"{component.module}@{component.version} needs Go {need} but the toolchain on PATH "
                               f"is Go {go_version}: install Go {need} or newer from https://go.dev/dl/")
        lines = [f"module immich-conformance.invalid/build/{component.name}", "", f"go {go_version}", "",
                 f"require {component.module} {component.version}", ""]
        if component.name == "kubernetes":
            staging = _staging_modules(dep_go_mod)
            if not staging:
                raise ClusterError("k8s.io/kubernetes' go.mod lists no staging modules: the pinned release "
                                   f"{component.version} does not look like a Kubernetes release")
            lines += [f"replace {m} => {m} {K8S_STAGING_VERSION}" for m in staging]
        return "\n".join(lines) + "\n"

    def _run_with_progress(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path,
                           component: Component) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        done = threading.Event()

        def report() -> None:
            while not done.wait(PROGRESS_EVERY):
                self.progress(f"[{component.name}] still building, {fmt_duration(time.monotonic() - started)} elapsed")

        ticker = threading.Thread(target=report, daemon=True)
        ticker.start()
        try:
            with log.open("w") as out:
                out.write(f"$ {' '.join(argv)}\n# in {cwd}\n")
                out.flush()
                result = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            done.set()
            ticker.join()
        if result.returncode != 0:
            text = log.read_text(errors="replace")
            tail = "\n".join(text.splitlines()[-25:])
            if _PROXY_TROUBLE.search(text):
                raise ClusterError(f"building {component.name}: the Go module proxy could not be reached "
                                   f"(GOPROXY={env.get('GOPROXY') or 'default'}); fix the network path to it and run "
                                   f"`up` again. Last lines of {log}:\n{tail}")
            raise ClusterError(f"building {component.name} failed (exit {result.returncode}); last lines of "
                               f"{log}:\n{tail}")


def _go_version(go: str, env: dict[str, str]) -> str:
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, env=env)
    match = re.match(r"go(\d+\.\d+(?:\.\d+)?)", result.stdout.strip())
    if result.returncode != 0 or not match:
        raise ClusterError(f"`{go} env GOVERSION` did not work ({result.stderr.strip()}): reinstall Go")
    return match.group(1)


def _go_directive(go_mod: str) -> str | None:
    match = re.search(r"^go\s+(\d+\.\d+(?:\.\d+)?)", go_mod, re.MULTILINE)
    return match.group(1) if match else None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def _staging_modules(go_mod: str) -> list[str]:
    """The modules kubernetes' own go.mod replaces with a folder under ./staging/."""
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/", go_mod, re.MULTILINE)))


def fmt_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
