"""``immich-conformance``: the commands a person runs besides pytest and locust."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .procs import GiveUp, WaitTimeout


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Start the embedded sandbox, print how to reach it, and keep it up until Ctrl-C."""
    from .targets.sandbox import Sandbox

    sandbox = Sandbox(Path(args.workdir) if args.workdir else None, keep=args.keep,
                      progress=lambda message: print(f"[sandbox] {message}", flush=True))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with sandbox:
        token = sandbox.service_token_headers
        print(f"""
LAN (the NodePort):      {sandbox.lan.url}
public hostname:         {sandbox.external.url}  (send Host: {sandbox.public_hostname})
origin proxy:            {sandbox.origin.url}
Immich API key:          {sandbox.api_key}
Access service token:    {' '.join(f'{k}: {v}' for k, v in token.items())}
NAS library:             {sandbox.nas_root}
logs:                    {sandbox.logs}

Try: curl -H 'Host: {sandbox.public_hostname}' {sandbox.external.url}/api/server/ping   (redirected to Access)
Ctrl-C stops the sandbox{' and keeps its folder' if args.keep else ' and removes its folder'}.""", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="immich-conformance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sandbox = commands.add_parser("sandbox", help="run the embedded sandbox stack until Ctrl-C")
    sandbox.add_argument("--workdir", help="folder for the sandbox's state (default: a new temporary folder)")
    sandbox.add_argument("--keep", action="store_true", help="keep the folder (logs, NAS, database) after stopping")
    sandbox.set_defaults(func=cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (GiveUp, WaitTimeout, OSError, RuntimeError) as exc:
        print(f"immich-conformance {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
