"""`python -m immich_conformance.cluster up|down|status`: the offline cluster by hand."""

from __future__ import annotations

import argparse
import sys

from . import ClusterError, OfflineCluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m immich_conformance.cluster")
    parser.add_argument("action", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    cluster = OfflineCluster(progress=lambda msg: print(msg, flush=True))
    try:
        if args.action == "up":
            info = cluster.up()
            print(f"kubeconfig: {info.kubeconfig}\nkubectl: {' '.join(info.kubectl)}")
        elif args.action == "down":
            cluster.down()
        else:
            status = cluster.status()
            print("\n".join(status.lines()))
            return 0 if status.running else 3
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
