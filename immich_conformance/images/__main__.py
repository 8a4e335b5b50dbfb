"""python -m immich_conformance.images {build,refs,prepare-edge}

  build [NAMES...] [--out DIR] [--cache DIR] [--double-version V] [--double-fault F]   build image archives (cached)
  refs [--double-version V] [--double-fault F]                                          print every image's reference
  prepare-edge [--component DIR] [--renew]                           write the edge stand-in's generated material
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from immich_conformance.images.build import CACHE_ENV, ImageBuildError, build_images, default_cache_dir
from immich_conformance.images.recipes import RECIPES, BuildOptions, image_refs


def _options(args: argparse.Namespace) -> BuildOptions:
    from immich_conformance.double.settings import FAULTS, ConfigError, ServerVersion

    if args.double_fault is not None and args.double_fault not in FAULTS:
        raise SystemExit(f"images: --double-fault {args.double_fault!r} is not a known fault: {', '.join(FAULTS)}")
    if args.double_version is None:
        return BuildOptions(double_fault=args.double_fault)
    try:
        version = str(ServerVersion.parse(args.double_version, variable="--double-version"))
    except ConfigError as exc:
        raise SystemExit(f"images: {exc}") from None
    return BuildOptions(double_version=version, double_fault=args.double_fault)


def _build(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("images: building needs root (debootstrap and chroot): run it as root, e.g. with sudo", file=sys.stderr)
        return 2
    options = _options(args)
    started = time.monotonic()
    last = [started]

    def progress(message: str) -> None:
        now = time.monotonic()
        print(f"[{now - started:7.1f}s] {message}", flush=True)
        last[0] = now

    try:
        packed = build_images(args.names or None, args.cache, progress, options=options)
    except ImageBuildError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    print(f"\n{'image':<26} {'size':>8}  reference / archive")
    for name, image in packed.items():
        archive = image.archive
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            target = args.out / f"{name}.tar"
            target.unlink(missing_ok=True)
            try:
                os.link(archive, target)
            except OSError:
                import shutil

                shutil.copyfile(archive, target)
            archive = target
        print(f"{name:<26} {image.archive.stat().st_size / 1e6:6.0f} MB  {image.ref}\n{'':<37}{archive}")
    print(f"\n{len(packed)} image(s) in {time.monotonic() - started:.1f} s "
          f"(import: ctr -n k8s.io images import <archive>, or docker load -i <archive>)")
    return 0


def _refs(args: argparse.Namespace) -> int:
    for name, ref in image_refs(_options(args)).items():
        print(f"{name:<26} {ref:<62} {RECIPES[name].description}")
    return 0


def _prepare_edge(args: argparse.Namespace) -> int:
    from immich_conformance.images.edge_material import EdgeMaterialError, prepare_edge_material

    try:
        material = prepare_edge_material(args.component, renew=args.renew)
    except EdgeMaterialError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 2
    print(material.describe())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m immich_conformance.images",
                                     description="The project's own container images, built from Debian packages "
                                                 "and this repository, with no registry.")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build image archives (as root)",
                                description="Build the images (all when no NAMES are given), each only when its "
                                            "inputs changed, and print the archives.")
    build.add_argument("names", nargs="*", metavar="NAME",
                       help=f"images to build: {', '.join(RECIPES)}")
    build.add_argument("--out", type=Path, help="also link the archives here as NAME.tar")
    build.add_argument("--cache", type=Path, default=default_cache_dir(),
                       help=f"the build cache (default ${CACHE_ENV} or {default_cache_dir()})")
    build.add_argument("--double-version", help="the version the Immich API double reports (e.g. v2.7.3); "
                                                "also the tag of immich-server and immich-machine-learning")
    build.add_argument("--double-fault", help="a deliberately broken double (drop-one-asset-on-upgrade), tagged "
                                              "VERSION-FAULT: the pre-upgrade gate's own test")
    build.set_defaults(run=_build)

    refs = commands.add_parser("refs", help="print the image references")
    refs.add_argument("--double-version", help="as for build")
    refs.add_argument("--double-fault", help="as for build")
    refs.set_defaults(run=_refs)

    from immich_conformance.images.edge_material import default_component_dir

    edge = commands.add_parser("prepare-edge", help="write the edge stand-in component's generated files",
                               description="Write the git-ignored files stack/components/edge-standin reads (key "
                                           "ring, TLS material, the stand-in's configuration); existing valid "
                                           "material is kept unless --renew.")
    edge.add_argument("--component", type=Path, default=default_component_dir(),
                      help=f"the component folder (default {default_component_dir()})")
    edge.add_argument("--renew", action="store_true", help="make new material even if the current one is valid")
    edge.set_defaults(run=_prepare_edge)

    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
