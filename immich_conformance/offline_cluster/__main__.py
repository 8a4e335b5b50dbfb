"""`python -m immich_conformance.offline_cluster up|down|status`: the offline cluster by hand."""

from __future__ import annotations

import argparse
import sys

from . import ClusterError, OfflineCluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("up", "down", "status"),
                        help="up: build (cached), start and print the kubeconfig; down: stop and leave nothing; "
                             "status: what runs (exit 3 when not running)")
    parser.add_argument("--with-images", action="store_true",
                        help="with up: also build the project's images and import them (what --target cluster does)")


def run(args: argparse.Namespace) -> int:
    cluster = OfflineCluster(progress=lambda msg: print(msg, flush=True))
    try:
        if args.action == "up":
            info = cluster.up()
            if getattr(args, "with_images", False):
                from immich_conformance.images.build import build_images, default_cache_dir

                images = build_images(None, default_cache_dir(), lambda msg: print(msg, flush=True))
                cluster.import_images([image.archive for image in images.values()])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m immich_conformance.offline_cluster")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
