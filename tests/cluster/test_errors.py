"""Failures a person can fix are reported with their cause and their fix (no cluster needed)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from immich_conformance.offline_cluster import ClusterError, OfflineCluster, layout
from immich_conformance.offline_cluster import lifecycle as cluster_module
from immich_conformance.offline_cluster.build import COMPONENTS, Builder
from immich_conformance.offline_cluster.daemons import Daemon


def test_no_go_toolchain_is_named_with_its_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(Path, "is_file", lambda self: False)
    with pytest.raises(ClusterError, match=r"no Go toolchain.*go\.dev/dl"):
        Builder(tmp_path / "cache", progress=lambda _m: None)._go()


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_unreachable_module_proxy_is_named_with_its_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GOPROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    builder = Builder(tmp_path / "cache", progress=lambda _m: None)
    env = builder._env(COMPONENTS[0], tmp_path)
    with pytest.raises(ClusterError, match=r"Go module proxy could not be reached.*GOPROXY"):
        builder._download(builder._go(), "immich-conformance.invalid/nothing@v1.0.0", env, tmp_path)


def test_busy_api_port_is_named_with_its_holder(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", layout.API_PORT))
        except OSError:
            pytest.skip(f"port {layout.API_PORT} is already in use on this machine")
        sock.listen()
        with pytest.raises(ClusterError, match=rf"port {layout.API_PORT} is busy.*API server needs it.*Stop"):
            OfflineCluster(Path("/nonexistent-state"), progress=lambda _m: None)._check_ports()


def test_not_root_is_named_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_module.os, "geteuid", lambda: 1000)
    with pytest.raises(ClusterError, match=r"needs root.*sudo"):
        OfflineCluster(Path("/nonexistent-state"), progress=lambda _m: None).down()


def test_component_that_never_gets_ready_shows_its_log(tmp_path: Path) -> None:
    daemon = Daemon("kube-apiserver", ["/bin/sh", "-c", "echo 'E: etcd unreachable'; sleep 30"],
                    log_path=tmp_path / "kube-apiserver.log", pid_file=tmp_path / "kube-apiserver.pid").start()
    try:
        with pytest.raises(ClusterError, match=r"did not become ready(.|\n)*E: etcd unreachable"):
            daemon.wait_ready(lambda: False, timeout=1.0)
    finally:
        daemon.stop()
    assert not daemon.alive()


@pytest.mark.parametrize(("args", "message"), [
    (("--kubeconfig", "/nonexistent/kubeconfig"), "--kubeconfig /nonexistent/kubeconfig: no such file"),
    (("--kubeconfig", "/dev/null", "--namespace", "immich-test"), "--namespace immich-test needs --scratch DIR"),
], ids=["missing-kubeconfig", "namespace-without-scratch"])
def test_a_cluster_run_that_cannot_start_says_why_in_one_line(pytester: pytest.Pytester, args: tuple[str, ...],
                                                               message: str) -> None:
    pytester.makepyfile(test_one="def test_one(target):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "immich_conformance.pytest_plugin", "--target", "cluster", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"*--target cluster: {message}*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


DEAD_SERVER = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.mark.parametrize(("content", "message"), [
    (DEAD_SERVER, "the cluster of * does not answer: * no answer (*Connection refused): is the cluster running, and "
                  "is the server address in * right?"),
    ("just: [text", "cannot read the kubeconfig *: not YAML (while parsing *) (give the file "
                    "`kind get kubeconfig` writes, *)"),
    ("a line of text", "cannot read the kubeconfig *: not a kubeconfig: it has no list of clusters (give the file "
                       "`kind get kubeconfig` writes, *)"),
], ids=["server-not-answering", "not-yaml", "not-a-kubeconfig"])
def test_a_kubeconfig_that_leads_nowhere_says_why_in_one_line(pytester: pytest.Pytester, content: str,
                                                               message: str) -> None:
    kubeconfig = pytester.path / "kubeconfig"
    kubeconfig.write_text(content)
    pytester.makepyfile(test_one="def test_one(target):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "immich_conformance.pytest_plugin", "--target", "cluster",
                                           "--kubeconfig", str(kubeconfig))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([f"*--target cluster: {message} !"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
