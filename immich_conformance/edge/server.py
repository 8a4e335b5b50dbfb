"""Start both listeners, run until SIGTERM or SIGINT, then stop cleanly and log what was done."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys
from collections import Counter

from aiohttp import web

from immich_conformance.edge.config import ConfigError, EdgeConfig
from immich_conformance.edge.keys import KeyRingError, KeyRingSource
from immich_conformance.edge.proxy import AppProxy
from immich_conformance.edge.team_site import make_team_app

log = logging.getLogger("edge")

# Cloudflare accepts request lines up to about 16 KB and header sections up to about 32 KB
HANDLER_ARGS = {"max_line_size": 16384, "max_field_size": 32768, "access_log": None}


def setup_logging(config: EdgeConfig) -> None:
    handler: logging.Handler
    if config.log_file is not None:
        config.log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(config.log_file)
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def team_ssl_context(config: EdgeConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.team_tls_cert, config.team_tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot use team_tls_cert {config.team_tls_cert} with team_tls_key {config.team_tls_key}: "
                          f"{exc}; write a matching pair with python -m immich_conformance.tls") from None
    return context


async def serve(config: EdgeConfig) -> None:
    try:
        keys = KeyRingSource(config.key_ring_file, config.team_domain)
    except (KeyRingError, OSError) as exc:
        raise ConfigError(f"{config.source or 'configuration'}: 'key_ring_file': {exc}") from None
    context = team_ssl_context(config)
    counters: Counter[str] = Counter()
    proxy = AppProxy(config, keys, counters)
    await proxy.start()

    app_runner = web.AppRunner(proxy.make_app(), handle_signals=False, shutdown_timeout=2.0, **HANDLER_ARGS)
    team_runner = web.AppRunner(make_team_app(keys, counters), handle_signals=False, shutdown_timeout=2.0,
                                **HANDLER_ARGS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app_runner.setup()
        await team_runner.setup()
        for runner, host, port, what, tls in (
            (app_runner, config.listen_host, config.listen_port, "listen", None),
            (team_runner, config.team_listen_host, config.team_listen_port, "team_listen", context),
        ):
            try:
                await web.TCPSite(runner, host, port, ssl_context=tls, shutdown_timeout=2.0).start()
            except OSError as exc:
                raise ConfigError(f"{config.source or 'configuration'}: '{what}': cannot listen on {host}:{port}: "
                                  f"{exc.strerror or exc} (another process listens there)") from None
        ring = keys.current().ring
        log.info("edge ready: app http://%s:%d for https://%s -> %s; team https://%s (on %s:%d); signing kid %s; "
                 "%d service token(s); body limit %d bytes; strict service-token auth %s",
                 config.listen_host, config.listen_port, config.public_hostname, config.origin_url,
                 config.team_domain, config.team_listen_host, config.team_listen_port, ring.active.kid[:12],
                 len(config.service_tokens), config.max_body_bytes, config.strict_service_token_auth)
        await stop.wait()
        log.info("stopping")
    finally:
        await app_runner.cleanup()
        await team_runner.cleanup()
        await proxy.close()
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(counters.items())) or "no requests"
        log.info("stopped; %s", summary)
