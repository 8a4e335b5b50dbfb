"""Runs the Cloudflare edge stand-in inside a pod (the ``edge-standin`` image's entry point).

The stand-in's configuration (``immich_conformance.edge.config``) keeps both of its listeners and its origin on
loopback. In a pod the clients arrive on the pod's own address and the origin proxy is another Service, so this
launcher runs the unchanged stand-in on the pod's loopback and relays TCP around it, byte for byte:

* ``--publish 0.0.0.0:8080=listen`` opens the pod port 8080 and relays each connection to the stand-in's ``listen``
  address (``team_listen`` likewise, for the team domain's TLS listener: TLS passes through untouched);
* ``--origin origin-proxy:8080`` listens on the loopback address of ``origin_url`` and relays the stand-in's origin
  connections to that host and port.

The pod ports open only once the stand-in's own listeners answer, so a TCP readiness probe on them means the edge
is up. A connection cut on one side (a reset, such as the stand-in aborting an over-limit upload) is cut on the
other; a clean close is passed on as a half-close. The stand-in sees every client as 127.0.0.1, so its
``Cf-Connecting-Ip`` is the pod's loopback address, not the client's.

    python -m immich_conformance.images.edge_pod --config /etc/edge-standin/edge.json \\
        --publish 0.0.0.0:8080=listen --publish 0.0.0.0:8443=team_listen --origin origin-proxy:8080
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from immich_conformance.edge.config import ConfigError, EdgeConfig, load_config

CHUNK = 256 * 1024
CONNECT_TIMEOUT = 10.0
EDGE_START_TIMEOUT = 60.0
LISTENER_KEYS = ("listen", "team_listen")

log = logging.getLogger("edge.pod")


class LaunchError(ValueError):
    """The launcher's arguments cannot be used; the message says which and how to fix it."""


@dataclass(frozen=True)
class Relay:
    """Accept on ``listen_host:listen_port``; connect each client to ``target_host:target_port``."""

    what: str
    listen_host: str
    listen_port: int
    target_host: str
    target_port: int


def _host_port(text: str, option: str, *, ip_only: bool) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LaunchError(f"{option} {text!r}: expected HOST:PORT with a port from 1 to 65535")
    if ip_only:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise LaunchError(f"{option} {text!r}: {host!r} is not an IP address (use 0.0.0.0 for every "
                              "address of the pod)") from None
    return host, int(port)


def plan_relays(config: EdgeConfig, publish: Sequence[str], origin: str | None) -> tuple[Relay | None, list[Relay]]:
    """The origin relay (started before the edge) and the published relays (started once the edge answers)."""
    listeners = {
        "listen": (config.listen_host, config.listen_port),
        "team_listen": (config.team_listen_host, config.team_listen_port),
    }
    published = []
    for item in publish:
        address, sep, key = item.partition("=")
        if not sep or key not in listeners:
            raise LaunchError(f"--publish {item!r}: expected ADDRESS:PORT=KEY with KEY one of "
                              f"{', '.join(LISTENER_KEYS)}")
        host, port = _host_port(address, "--publish", ip_only=True)
        target_host, target_port = listeners[key]
        if (host, port) == (target_host, target_port):
            raise LaunchError(f"--publish {item!r} would relay {key} to itself; publish it on another address or port")
        published.append(Relay(key, host, port, target_host, target_port))
    origin_relay = None
    if origin is not None:
        target_host, target_port = _host_port(origin, "--origin", ip_only=False)
        parts = urlsplit(config.origin_url)
        origin_relay = Relay("origin", parts.hostname or "127.0.0.1", parts.port or 80, target_host, target_port)
    return origin_relay, published


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until end of stream (True, passed on as a half-close) or an error (False)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        return True
    except (ConnectionError, OSError, RuntimeError):
        return False


async def _relay_connection(relay: Relay, client_reader: asyncio.StreamReader,
                            client_writer: asyncio.StreamWriter) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.wait_for(
            asyncio.open_connection(relay.target_host, relay.target_port), timeout=CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError) as exc:
        log.warning("%s: cannot reach %s:%d: %s", relay.what, relay.target_host, relay.target_port, exc)
        client_writer.transport.abort()
        return
    upstream = asyncio.ensure_future(_pipe(client_reader, upstream_writer))
    downstream = asyncio.ensure_future(_pipe(upstream_reader, client_writer))
    pending = {upstream, downstream}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if not all(task.result() for task in done):
            # A reset on one side is a reset on the other: nobody waits on a half-dead connection.
            client_writer.transport.abort()
            upstream_writer.transport.abort()
    for writer in (client_writer, upstream_writer):
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def start_relay(relay: Relay) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _relay_connection(relay, reader, writer)

    try:
        server = await asyncio.start_server(handle, relay.listen_host, relay.listen_port, reuse_address=True)
    except OSError as exc:
        raise LaunchError(f"cannot listen on {relay.listen_host}:{relay.listen_port} for {relay.what}: "
                          f"{exc.strerror or exc}") from None
    log.info("relay %s: %s:%d -> %s:%d", relay.what, relay.listen_host, relay.listen_port, relay.target_host,
             relay.target_port)
    return server


async def _answers(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
    return True


async def _wait_for_edge(config: EdgeConfig, edge: asyncio.Future[None]) -> None:
    deadline = time.monotonic() + EDGE_START_TIMEOUT
    addresses = [(config.listen_host, config.listen_port), (config.team_listen_host, config.team_listen_port)]
    while True:
        if edge.done():
            edge.result()  # raises what stopped it
            raise LaunchError("the edge stand-in stopped before its listeners answered")
        if all([await _answers(host, port) for host, port in addresses]):
            return
        if time.monotonic() > deadline:
            raise LaunchError(f"the edge stand-in's listeners {addresses} did not answer within "
                              f"{EDGE_START_TIMEOUT:.0f} s")
        await asyncio.wait({edge}, timeout=0.2)


async def run(config: EdgeConfig, publish: Sequence[str], origin: str | None) -> None:
    from immich_conformance.edge.server import serve

    origin_relay, published = plan_relays(config, publish, origin)
    servers: list[asyncio.AbstractServer] = []
    try:
        if origin_relay is not None:
            servers.append(await start_relay(origin_relay))
        edge = asyncio.ensure_future(serve(config))
        try:
            await _wait_for_edge(config, edge)
            for relay in published:
                servers.append(await start_relay(relay))
            await edge
        finally:
            if not edge.done():
                edge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await edge
    finally:
        for server in servers:
            server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m immich_conformance.images.edge_pod",
        description="Run the Cloudflare edge stand-in in a pod: the unchanged stand-in on loopback, its listeners "
                    "published on the pod's ports and its origin relayed to a Service.",
    )
    parser.add_argument("--config", required=True, type=Path, help="the stand-in's JSON configuration "
                                                                    "(python -m immich_conformance.edge --help)")
    parser.add_argument("--publish", action="append", default=[], metavar="ADDRESS:PORT=KEY",
                        help="relay ADDRESS:PORT to the configuration's listener KEY (listen or team_listen)")
    parser.add_argument("--origin", metavar="HOST:PORT",
                        help="relay the configuration's origin_url (a loopback address) to HOST:PORT")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        plan_relays(config, args.publish, args.origin)
        from immich_conformance.edge.server import setup_logging

        setup_logging(config)
        asyncio.run(run(config, args.publish, args.origin))
    except (ConfigError, LaunchError) as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
