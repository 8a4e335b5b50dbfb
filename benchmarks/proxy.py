"""Origin proxy benchmark: prints numbers, asserts nothing. ``python -m benchmarks.proxy [--rounds 7]``.

All in one run, medians of several rounds:
1. throughput of a 50 MiB upload through the proxy / straight to the upstream, on loopback (beside nginx with request
   buffering off, measured the same way) and across a 1 Gbit/s shaped link from a network namespace of the run's own;
2. time to the 413 for a 1 GiB Content-Length, and the bytes the proxy read of it;
3. the proxy's RSS growth during 10 concurrent uploads of 100 MB (104,857,600 bytes);
4. the p50 latency that JWT validation adds to a small GET (the same config with and without the jwt_authn filter).
Targets (issue of record: the origin proxy): ratio >= 0.90 (>= 0.95 on the shaped link), <= 50 ms and <= 64 KiB to
413, <= 64 MiB RSS growth, <= 1 ms added p50.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import yaml

from immich_conformance import REPO_ROOT
from immich_conformance.access_keys import KeyRing
from immich_conformance.limits import JWT_HEADER, MAX_BODY_BYTES
from immich_conformance.origin_proxy import OriginProxy, ProxySettings, envoy_binary
from immich_conformance.procs import LOOPBACK, ManagedProcess, free_port, free_ports, port_open
from immich_conformance.testing import rawhttp
from immich_conformance.testing.jwks_endpoint import ControllableJwks
from immich_conformance.tls import write_server_files

from .upload_client import upload

TEAM = "bench.cloudflareaccess.com"
AUD = "be0c4b1e" * 8
MIB = 2**20
NETNS = "icbench"
HOST_SIDE, NS_SIDE = "198.18.0.1", "198.18.0.2"  # RFC 2544 benchmarking range, on a veth pair of our own


def median_of(rounds: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(rounds))


class Bench:
    def __init__(self, workdir: Path, rounds: int) -> None:
        self.workdir = workdir
        self.rounds = rounds
        self.stack = contextlib.ExitStack()
        self.ring = KeyRing.generate(TEAM, count=1)
        self.token = self.ring.mint(AUD, common_name="bench.access", ttl=3600)

    def __enter__(self) -> Bench:
        tls = write_server_files(self.workdir / "pki", [TEAM])
        self.jwks = ControllableJwks(self.ring, tls.cert_file, tls.key_file).start()
        self.stack.callback(self.jwks.stop)
        self.ca = tls.ca_file
        self.sink_port = self.start_sink(LOOPBACK)
        self.proxy = self.start_proxy(LOOPBACK, self.sink_port, "envoy")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def start_sink(self, host: str) -> int:
        port = free_port()
        sink = ManagedProcess(f"sink-{host}", [sys.executable, "-m", "benchmarks.sink", host, str(port)],
                              log_path=self.workdir / f"sink-{host}.log", cwd=REPO_ROOT)
        sink.start()
        self.stack.callback(sink.stop)
        sink.wait_ready(lambda: port_open(port, host), timeout=10)
        return port

    def start_proxy(self, host: str, upstream_port: int, name: str) -> OriginProxy:
        settings = ProxySettings(TEAM, AUD, f"{host}:{upstream_port}", jwks_url=self.jwks.url,
                                 jwks_connect=self.jwks.connect, jwks_ca_file=self.ca, listen_address=host)
        proxy = OriginProxy(settings, self.workdir / name, name=name).start()
        self.stack.callback(proxy.stop)
        return proxy

    def start_envoy_without_jwt(self) -> int:
        """The proxy's own filled-in configuration minus the jwt_authn filter: the baseline for JWT cost."""
        config = yaml.safe_load((self.workdir / "envoy" / "origin-proxy-envoy.yaml").read_text())
        listener = config["static_resources"]["listeners"]
        hcm = listener[0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.jwt_authn"]
        port, admin_port = free_ports(2)
        listener[0]["address"]["socket_address"]["port_value"] = port
        config["static_resources"]["listeners"] = listener[:1]
        config["admin"]["address"]["socket_address"]["port_value"] = admin_port
        path = self.workdir / "envoy-nojwt.yaml"
        path.write_text(yaml.safe_dump(config))
        envoy = ManagedProcess("envoy-nojwt", [envoy_binary(), "-c", str(path), "--disable-hot-restart",
                                               "--concurrency", "2", "--log-level", "warn"],
                               log_path=self.workdir / "envoy-nojwt.log")
        envoy.start()
        self.stack.callback(envoy.stop)
        envoy.wait_ready(lambda: port_open(port), timeout=15)
        return port

    def start_nginx(self, upstream_port: int) -> int | None:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if nginx is None:
            return None
        port = free_port()
        prefix = self.workdir / "nginx"
        prefix.mkdir()
        (prefix / "nginx.conf").write_text(f"""
worker_processes 2;
error_log {prefix}/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  upstream sink {{ server {LOOPBACK}:{upstream_port}; keepalive 16; }}
  server {{
    listen {LOOPBACK}:{port};
    client_max_body_size 100m;
    proxy_request_buffering off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location / {{ proxy_pass http://sink; }}
  }}
}}
""")
        proc = ManagedProcess("nginx", [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g",
                                        "daemon off;"], log_path=prefix / "stdout.log")
        proc.start()
        self.stack.callback(proc.stop)
        proc.wait_ready(lambda: port_open(port), timeout=10)
        return port

    # --- measurements -----------------------------------------------------------------------------------------
    def throughput_loopback(self, size: int) -> dict[str, float]:
        nginx_port = self.start_nginx(self.sink_port)
        paths: dict[str, tuple[int, dict[str, str]]] = {
            "direct": (self.sink_port, {}),
            "envoy": (self.proxy.port, {JWT_HEADER: self.token}),
        }
        if nginx_port:
            paths["nginx (buffering off)"] = (nginx_port, {})
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for port, headers in paths.values():  # warm-up
            upload(LOOPBACK, port, size, headers)
        for _ in range(self.rounds):
            for name, (port, headers) in paths.items():
                samples[name].append(size / upload(LOOPBACK, port, size, headers) / MIB)
        return {name: statistics.median(values) for name, values in samples.items()}

    def time_to_413(self) -> tuple[float, float]:
        stat = "http.origin.downstream_cx_rx_bytes_total"
        times, read = [], []
        for _ in range(self.rounds):
            before = self.proxy.stats()[stat]
            response = rawhttp.request(LOOPBACK, self.proxy.port, "POST", "/api/assets",
                                       {JWT_HEADER: self.token, "Content-Length": str(2**30)}, rawhttp.zeros(2**30))
            if response.status != 413:
                raise RuntimeError(f"expected 413 for a 1 GiB Content-Length, got {response.status}")
            times.append(response.elapsed * 1000)
            read.append(self.proxy.stats()[stat] - before)
        return statistics.median(times), statistics.median(read)

    def rss_growth(self, uploads: int = 10) -> tuple[float, float]:
        pid = self.proxy.process.pid
        baseline = rss_kib(pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.01):
                peak = max(peak, rss_kib(pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        workers = [threading.Thread(target=upload, args=(LOOPBACK, self.proxy.port, MAX_BODY_BYTES,
                                                         {JWT_HEADER: self.token})) for _ in range(uploads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        done.set()
        sampler.join()
        return baseline / 1024, (peak - baseline) / 1024

    def added_jwt_latency(self) -> dict[str, float]:
        bare = self.start_envoy_without_jwt()
        targets = {
            "direct": (self.sink_port, {}),
            "envoy without jwt_authn": (bare, {}),
            "envoy (shipped config)": (self.proxy.port, {JWT_HEADER: self.token}),
        }
        samples: dict[str, list[float]] = {name: [] for name in targets}
        clients = {name: httpx.Client(base_url=f"http://{LOOPBACK}:{port}", headers=h)
                   for name, (port, h) in targets.items()}
        try:
            for client in clients.values():
                for _ in range(200):
                    client.get("/api/server/ping")
            for _ in range(10):
                for name, client in clients.items():
                    for _ in range(200):
                        started = time.perf_counter()
                        client.get("/api/server/ping").raise_for_status()
                        samples[name].append((time.perf_counter() - started) * 1000)
        finally:
            for client in clients.values():
                client.close()
        return {name: statistics.median(values) for name, values in samples.items()}

    def throughput_shaped(self, size: int) -> dict[str, float] | None:
        if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
            return None
        with shaped_link():
            sink_port = self.start_sink(HOST_SIDE)
            proxy = self.start_proxy(HOST_SIDE, sink_port, "envoy-shaped")
            paths = {"direct": (sink_port, []), "envoy": (proxy.port, [f"{JWT_HEADER}={self.token}"])}
            samples: dict[str, list[float]] = {name: [] for name in paths}
            for name, (port, headers) in paths.items():
                out = subprocess.run(
                    ["ip", "netns", "exec", NETNS, sys.executable, "-m", "benchmarks.upload_client", HOST_SIDE,
                     str(port), str(size), str(self.rounds + 1), *headers],
                    capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=True,
                ).stdout.split()
                samples[name] = [float(x) for x in out[1:]]  # the first round warms up
            return {name: statistics.median(values) for name, values in samples.items()}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def shaped_link() -> Iterator[None]:
    """A namespace of our own joined by a veth pair whose namespace side sends at 1 Gbit/s (tbf)."""
    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    ip("netns", "add", NETNS)
    try:
        ip("link", "add", "icb-host", "type", "veth", "peer", "name", "icb-ns")
        ip("link", "set", "icb-ns", "netns", NETNS)
        ip("addr", "add", f"{HOST_SIDE}/30", "dev", "icb-host")
        ip("link", "set", "icb-host", "up")
        ip("-n", NETNS, "addr", "add", f"{NS_SIDE}/30", "dev", "icb-ns")
        ip("-n", NETNS, "link", "set", "icb-ns", "up")
        ip("-n", NETNS, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", NETNS, "tc", "qdisc", "add", "dev", "icb-ns", "root", "tbf", "rate",
                        "1gbit", "burst", "512kb", "latency", "50ms"], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["ip", "link", "del", "icb-host"], capture_output=True)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="rounds per measurement (median reported)")
    parser.add_argument("--size-mib", type=int, default=50, help="upload size for the throughput ratio")
    parser.add_argument("--no-shaped-link", action="store_true", help="skip the 1 Gbit/s namespace measurement")
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp, Bench(Path(tmp), args.rounds) as bench:
        print(f"origin proxy benchmark: Envoy (stack/base/origin-proxy), medians of {args.rounds} rounds")
        tput = bench.throughput_loopback(size)
        print(f"\n{args.size_mib} MiB upload on loopback (MiB/s):")
        for name, value in tput.items():
            print(f"  {name:<24} {value:8.0f}   ratio to direct {value / tput['direct']:.2f}")
        shaped = None if args.no_shaped_link else bench.throughput_shaped(size)
        if shaped:
            print(f"\n{args.size_mib} MiB upload across a 1 Gbit/s shaped link (MiB/s):")
            for name, value in shaped.items():
                print(f"  {name:<24} {value:8.1f}   ratio to direct {value / shaped['direct']:.3f}  (target >= 0.95)")
        elapsed, read = bench.time_to_413()
        print(f"\n1 GiB Content-Length: 413 after {elapsed:.2f} ms (target <= 50), proxy read {read / 1024:.1f} KiB "
              f"(target <= 64)")
        base, growth = bench.rss_growth()
        print(f"\nRSS: baseline {base:.1f} MiB, growth during 10 concurrent 100 MB uploads {growth:.1f} MiB "
              f"(target <= 64)")
        lat = bench.added_jwt_latency()
        print("\nsmall GET, p50 latency (ms):")
        for name, value in lat.items():
            print(f"  {name:<24} {value:.3f}")
        added = lat["envoy (shipped config)"] - lat["envoy without jwt_authn"]
        print(f"  JWT validation adds {added:.3f} ms at p50 (target <= 1)")


if __name__ == "__main__":
    main()
