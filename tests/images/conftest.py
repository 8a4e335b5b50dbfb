"""Image builds for the tests: each image at most once per session, and not at all when the cache is current.

The cache is the build's own (``$IMMICH_IMAGES_CACHE`` or build/images): what ``python -m immich_conformance.images
build`` made is reused, and what the tests build is there for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from immich_conformance.images.build import build_images, build_rootfs, default_cache_dir
from immich_conformance.images.oci import PackedImage
from immich_conformance.images.recipes import BuildOptions

from .support import require_build_prerequisites


def _progress(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def images_cache() -> Path:
    return default_cache_dir()


@pytest.fixture(scope="session")
def image_rootfs(images_cache: Path) -> Callable[[str], Path]:
    """name -> the image's finished root filesystem (built once per session at most)."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        require_build_prerequisites()
        if name not in built:
            built[name] = build_rootfs(name, images_cache, _progress)
        return built[name]

    return get


@pytest.fixture(scope="session")
def packed_image(images_cache: Path) -> Callable[..., PackedImage]:
    """(name, options) -> the image's archive (built or repacked once per session at most)."""
    packed: dict[tuple[str, BuildOptions], PackedImage] = {}

    def get(name: str, options: BuildOptions | None = None) -> PackedImage:
        require_build_prerequisites()
        key = (name, options or BuildOptions())
        if key not in packed:
            packed[key] = build_images([name], images_cache, _progress, options=key[1])[name]
        return packed[key]

    return get
