"""Builds the images, each at most once for the same inputs.

Every stage is cached under ``cache_dir`` by a hash of its inputs:

* ``rootfs/minbase-<key>``: debootstrap's output (suite, mirror, packages, this module's format);
* ``rootfs/python-<key>``: minbase + python3 + the pinned Python packages of every Python image;
* ``rootfs/<image>-<key>``: a copy of its base + the recipe's steps (their source text), the files they copy in
  and the project modules the image runs (their content);
* ``archives/<image>-<tag>-<key>.tar``: the packed image; its key adds the reference and the image config.

An unchanged image is therefore neither rebuilt nor repacked, and the two versions of the API double share one
root filesystem. A stage is built in ``<dir>.partial`` and renamed when complete; older keys of the same stage are
removed once a newer one is complete. One build at a time per cache (a lock file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from immich_conformance import REPO_ROOT
from immich_conformance.images import python_env
from immich_conformance.images import rootfs as fs
from immich_conformance.images.oci import PackedImage, pack_image
from immich_conformance.images.recipes import (
    APP_DIR,
    IMAGE_MARK,
    MINBASE_PACKAGES,
    PYTHON_PACKAGES,
    RECIPES,
    SITE_PACKAGES,
    VENV,
    BuildContext,
    BuildOptions,
    Recipe,
    recipe,
)

# Bump to rebuild everything (a change in how stages are made that their inputs do not show).
BUILD_FORMAT = "1"
KEY_LENGTH = 16
DEFAULT_CACHE_DIR = REPO_ROOT / "build" / "images"
CACHE_ENV = "IMMICH_IMAGES_CACHE"

Progress = Callable[[str], None]


def _sources() -> dict[str, str]:
    """The steps' source text, read once at import: read later, an edit made meanwhile would be hashed with the
    code of before it."""
    return {name: inspect.getsource(r.steps) for name, r in RECIPES.items()}


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which, at which step, and why."""


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


class InputHash:
    """sha256 over labelled inputs: the same inputs give the same key."""

    def __init__(self, *parts: str) -> None:
        self._hash = hashlib.sha256()
        for part in parts:
            self.add("part", part)

    def add(self, label: str, value: str | bytes) -> InputHash:
        data = value.encode() if isinstance(value, str) else value
        self._hash.update(f"{label}:{len(data)}:".encode())
        self._hash.update(data)
        return self

    def add_file(self, label: str, path: Path) -> InputHash:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        return self.add(label, digest.hexdigest())

    @property
    def key(self) -> str:
        return self._hash.hexdigest()[:KEY_LENGTH]


@dataclass(frozen=True)
class Stage:
    """One cached root filesystem: its name, input key and folder."""

    name: str
    key: str
    path: Path


class ImageBuilder:
    """Builds images into one cache folder; use ``build_images`` unless you need the root filesystems."""

    def __init__(self, cache_dir: Path, progress: Progress, options: BuildOptions | None = None, *,
                 repo_root: Path = REPO_ROOT) -> None:
        self.repo_root = repo_root
        self.cache_dir = cache_dir.resolve()
        self.progress = progress
        self.options = options or BuildOptions()
        self.rootfs_dir = self.cache_dir / "rootfs"
        self.archive_dir = self.cache_dir / "archives"
        self.deb_cache = self.cache_dir / "debs"
        self.wheel_cache = self.cache_dir / "wheels"
        self._project_files: dict[str, list[Path]] = {}
        self._pins: list[str] | None = None

    # --- inputs -----------------------------------------------------------------------------------------------------
    def project_files(self, r: Recipe) -> list[Path]:
        if r.name not in self._project_files:
            self._project_files[r.name] = (python_env.project_files(r.entry_modules, self.repo_root)
                                           if r.entry_modules else [])
        return self._project_files[r.name]

    def python_pins(self) -> list[str]:
        """The Python packages of every Python image (the python base holds them all)."""
        if self._pins is None:
            files = sorted({f for r in RECIPES.values() if r.base == "python" for f in self.project_files(r)})
            self._pins = python_env.runtime_requirements(files, self.repo_root)
        return self._pins

    def minbase_stage(self) -> Stage:
        key = InputHash(BUILD_FORMAT, "minbase", fs.SUITE, fs.MIRROR, *MINBASE_PACKAGES, *fs.SLIM_GLOBS).key
        return Stage("minbase", key, self.rootfs_dir / f"minbase-{key}")

    def python_stage(self) -> Stage:
        key = InputHash(BUILD_FORMAT, "python", self.minbase_stage().key, *PYTHON_PACKAGES, VENV,
                        *self.python_pins(), _PYTHON_BASE_SOURCE).key
        return Stage("python", key, self.rootfs_dir / f"python-{key}")

    def base_stage(self, r: Recipe) -> Stage:
        if r.base == "minbase":
            return self.minbase_stage()
        if r.base == "python":
            return self.python_stage()
        raise ImageBuildError(f"recipe {r.name}: unknown base {r.base!r} (minbase or python)")

    def image_stage(self, r: Recipe) -> Stage:
        h = InputHash(BUILD_FORMAT, "image", r.name, self.base_stage(r).key, _STEP_SOURCES[r.name])
        for path in r.input_files():
            h.add_file(path.name, path)
        for relative in self.project_files(r):
            h.add_file(str(relative), self.repo_root / relative)
        return Stage(r.name, h.key, self.rootfs_dir / f"{r.name}-{h.key}")

    def archive_key(self, r: Recipe, stage: Stage) -> str:
        config = r.config(self.options)
        return InputHash(BUILD_FORMAT, "archive", stage.key, r.ref(self.options), IMAGE_MARK,
                         json.dumps(config.as_oci(), sort_keys=True)).key

    # --- stages -----------------------------------------------------------------------------------------------------
    def _ensure(self, stage: Stage, build: Callable[[Path], None]) -> Path:
        if stage.path.is_dir():
            return stage.path
        partial = stage.path.with_name(stage.path.name + ".partial")
        fs.remove_tree(partial)
        self.rootfs_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.progress(f"{stage.name}: building the root filesystem ({stage.path.name})")
        try:
            build(partial)
        except BaseException:
            fs.remove_tree(partial)
            raise
        partial.rename(stage.path)
        self.progress(f"{stage.name}: root filesystem ready in {time.monotonic() - started:.1f} s "
                      f"({_tree_size(stage.path) / 1e6:.0f} MB)")
        for old in self.rootfs_dir.glob(f"{stage.name}-*"):
            if old != stage.path and _stage_key_of(old, stage.name) is not None:
                fs.remove_tree(old)
        return stage.path

    def _build_minbase(self, target: Path) -> None:
        fs.debootstrap(target, MINBASE_PACKAGES, self.cache_dir / "debootstrap")
        fs.apt_update(target)  # the package lists stay in the base: its images install without another update

    def _build_python(self, target: Path) -> None:
        fs.copy_tree(self.ensure_stage(self.minbase_stage()), target)
        ctx = BuildContext(target, self.deb_cache)
        ctx.apt(PYTHON_PACKAGES)
        ctx.run(["python3", "-m", "venv", "--without-pip", VENV], "making the virtual environment")
        site_packages = target / SITE_PACKAGES.lstrip("/")
        python_env.install_wheels(self.python_pins(), site_packages, self.wheel_cache)
        fs.remove_tree(site_packages / "bin")
        ctx.run([f"{VENV}/bin/python", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                 SITE_PACKAGES], "compiling the Python packages")

    def ensure_stage(self, stage: Stage) -> Path:
        builders = {"minbase": self._build_minbase, "python": self._build_python}
        return self._ensure(stage, builders[stage.name])

    def rootfs(self, name: str) -> Path:
        """The finished root filesystem of image ``name`` (built if needed)."""
        r = recipe(name)
        stage = self.image_stage(r)
        return self._ensure(stage, lambda target: self._build_image(r, target))

    def _build_image(self, r: Recipe, target: Path) -> None:
        fs.copy_tree(self.ensure_stage(self.base_stage(r)), target)
        ctx = BuildContext(target, self.deb_cache)
        r.steps(ctx)
        files = self.project_files(r)
        for relative in files:
            fs.install_file(target, f"{APP_DIR}/{relative}", (self.repo_root / relative).read_bytes(), 0o644)
        if files:
            ctx.run([f"{VENV}/bin/python", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                     APP_DIR], "compiling the project's modules")
        fs.slim(target)
        self.verify(r, target)

    def verify(self, r: Recipe, root: Path) -> None:
        """The recipe's expected paths exist and its smoke commands succeed (Python images: their modules import)."""
        missing = [p for p in r.expected_paths if not os.path.lexists(root / p.lstrip("/"))]
        if missing:
            raise ImageBuildError(f"{r.name}: the root filesystem lacks {', '.join(missing)}")
        for argv in r.smoke_commands:
            fs.chroot(root, argv, f"{r.name}: {' '.join(argv)}")
        modules = [str(f.with_suffix("")).replace("/", ".") for f in self.project_files(r)]
        modules = [m.removesuffix(".__init__") for m in modules if not m.endswith("__main__")]
        if modules:
            fs.chroot(root, [f"{VENV}/bin/python", "-c", f"import {', '.join(modules)}"],
                      f"{r.name}: importing its modules", env={"PYTHONPATH": APP_DIR})

    # --- archives ---------------------------------------------------------------------------------------------------
    def image(self, name: str) -> PackedImage:
        r = recipe(name)
        stage = self.image_stage(r)
        key = self.archive_key(r, stage)
        tag = r.tag(self.options)
        archive = self.archive_dir / f"{r.name}-{tag}-{key}.tar"
        record = archive.with_suffix(".json")
        if archive.is_file() and record.is_file():
            packed = PackedImage(**{**json.loads(record.read_text()), "archive": archive})
            self.progress(f"{name}: up to date ({packed.ref}, {archive.stat().st_size / 1e6:.0f} MB)")
            return packed
        root = self.rootfs(name)
        started = time.monotonic()
        config = r.config(self.options)
        config = dataclasses.replace(config, labels={**config.labels, "org.opencontainers.image.version": tag,
                                                     "org.opencontainers.image.revision": key, IMAGE_MARK: r.name})
        packed = pack_image(root, r.ref(self.options), config, archive)
        record.write_text(json.dumps({"ref": packed.ref, "manifest_digest": packed.manifest_digest,
                                      "layer_digest": packed.layer_digest}, indent=2))
        self.progress(f"{name}: packed {packed.ref} in {time.monotonic() - started:.1f} s "
                      f"({archive.stat().st_size / 1e6:.0f} MB)")
        for old in self.archive_dir.glob(f"{r.name}-{tag}-*.*"):
            if old.stem != archive.stem and _stage_key_of(old.with_suffix(""), f"{r.name}-{tag}") is not None:
                old.unlink()
        return packed


_STEP_SOURCES = _sources()
_PYTHON_BASE_SOURCE = inspect.getsource(ImageBuilder._build_python)


def _stage_key_of(path: Path, stage: str) -> str | None:
    rest = path.name.removeprefix(f"{stage}-").removesuffix(".partial")
    ok = len(rest) == KEY_LENGTH and all(c in "0123456789abcdef" for c in rest)
    return rest if path.name.startswith(f"{stage}-") and ok else None


def _tree_size(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


@contextlib.contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_images(names: Sequence[str] | None, cache_dir: Path, progress: Progress, *,
                 options: BuildOptions | None = None) -> dict[str, PackedImage]:
    """Build (or take from the cache) the named images, all when ``names`` is None; their archives by name."""
    wanted = list(names) if names else list(RECIPES)
    unknown = [n for n in wanted if n not in RECIPES]
    if unknown:
        raise ImageBuildError(f"unknown image(s) {', '.join(unknown)}; the images are {', '.join(RECIPES)}")
    builder = ImageBuilder(cache_dir, progress, options)
    out: dict[str, PackedImage] = {}
    with cache_lock(builder.cache_dir):
        for name in wanted:
            try:
                out[name] = builder.image(name)
            except (fs.RootfsError, python_env.PythonEnvError, OSError) as exc:
                raise ImageBuildError(f"{name}: {exc}") from exc
    return out


def build_rootfs(name: str, cache_dir: Path, progress: Progress, *, options: BuildOptions | None = None) -> Path:
    """The finished root filesystem of image ``name`` (built if needed): for inspecting an image's files."""
    builder = ImageBuilder(cache_dir, progress, options)
    with cache_lock(builder.cache_dir):
        try:
            return builder.rootfs(name)
        except (fs.RootfsError, python_env.PythonEnvError, OSError) as exc:
            raise ImageBuildError(f"{name}: {exc}") from exc
