"""python -m immich_conformance.edge --config edge.json"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from immich_conformance.edge.config import CONFIG_HELP, ConfigError, load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m immich_conformance.edge",
        description="A local stand-in for Cloudflare's edge in front of an Access-protected, Tunnel-connected "
                    "application: Access checks, the 100 MB body limit, the headers Cloudflare adds, websockets; "
                    "and the team domain's JWKS and login page over HTTPS.",
        epilog=CONFIG_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, type=Path, help="the JSON configuration file (described below)")
    parser.add_argument("--check", action="store_true", help="check the configuration and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.check:
            print(f"{args.config}: configuration is valid")
            return 0
        from immich_conformance.edge.server import serve, setup_logging

        setup_logging(config)
        asyncio.run(serve(config))
    except ConfigError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
