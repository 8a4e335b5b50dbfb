"""What a Python image needs from this repository and from PyPI, found from the code itself.

* ``project_files(entry_modules)``: the project's modules an entry point imports, directly or not (also imports
  inside functions), with their packages' ``__init__.py``: only those are copied into the image, so an image is
  rebuilt only when code it runs changes.
* ``runtime_requirements(files)``: the third-party distributions those modules import, with the extras the
  project asks for (``psycopg[binary]``) and everything they require, each pinned to the version installed here
  (the versions the suite runs with).
* ``install_wheels(...)``: those pins, downloaded once as wheels into the build cache, unpacked into the image's
  virtual environment.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

from immich_conformance import REPO_ROOT

PROJECT_PACKAGE = "immich_conformance"
PROJECT_DISTRIBUTION = "immich-conformance"
PIP_TIMEOUT = 900


class PythonEnvError(RuntimeError):
    """The image's Python code or packages cannot be gathered; the message says what is missing."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _module_file(module: str, root: Path) -> Path | None:
    path = root.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _package_of(file: Path, root: Path) -> str:
    parts = file.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1])


def _imports(file: Path, root: Path) -> tuple[set[str], set[str]]:
    """(project modules, other top-level modules) that ``file`` imports."""
    try:
        tree = ast.parse(file.read_text(), filename=str(file))
    except SyntaxError as exc:
        raise PythonEnvError(f"{file} does not parse: {exc}") from None
    package = _package_of(file, root)
    if file.name == "__init__.py":
        package = ".".join(file.relative_to(root).parts[:-1])
    project: set[str] = set()
    other: set[str] = set()

    def note(module: str, names: Iterable[str] = ()) -> None:
        if module == PROJECT_PACKAGE or module.startswith(PROJECT_PACKAGE + "."):
            project.add(module)
            project.update(f"{module}.{name}" for name in names)
        else:
            other.add(module.split(".")[0])

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                note(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            note(module, [alias.name for alias in node.names])
    return project, other


def project_files(entry_modules: Sequence[str], root: Path = REPO_ROOT) -> list[Path]:
    """Every project file the entry modules need (relative to ``root``), sorted."""
    for module in entry_modules:
        if _module_file(module, root) is None:
            raise PythonEnvError(f"no module {module} under {root}")
    files: set[Path] = set()
    visited: set[str] = set()
    queue = list(entry_modules)
    while queue:
        module = queue.pop()
        if module in visited:
            continue
        visited.add(module)
        file = _module_file(module, root)
        if file is None:
            continue  # ``from package import name`` where name is not a module
        parts = module.split(".")
        queue.extend(".".join(parts[:depth]) for depth in range(1, len(parts)))  # packages run their __init__
        relative = file.relative_to(root)
        if relative not in files:
            files.add(relative)
            queue.extend(_imports(file, root)[0])
    return sorted(files)


def third_party_modules(files: Iterable[Path], root: Path = REPO_ROOT) -> set[str]:
    """Top-level modules outside the standard library and the project that ``files`` import."""
    found: set[str] = set()
    for relative in files:
        _, other = _imports(root / relative, root)
        found |= other
    return {m for m in found if m and m not in sys.stdlib_module_names and m != "__future__"}


def _project_extras() -> dict[str, set[str]]:
    """Extras the project's own requirements ask for, by distribution (``psycopg[binary]`` -> binary)."""
    try:
        declared = metadata.requires(PROJECT_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise PythonEnvError(f"the {PROJECT_DISTRIBUTION} distribution is not installed: pip install -e "
                             f"{REPO_ROOT}") from None
    extras: dict[str, set[str]] = {}
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            extras.setdefault(_canonical(requirement.name), set()).update(requirement.extras)
    return extras


def runtime_requirements(files: Iterable[Path], root: Path = REPO_ROOT) -> list[str]:
    """``name==version`` for every distribution the files need at run time, sorted."""
    modules = third_party_modules(files, root)
    by_module = metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in by_module)
    if missing:
        raise PythonEnvError(f"the image code imports {', '.join(missing)}, which no installed distribution "
                             f"provides: install the project's requirements (pip install -e {REPO_ROOT})")
    project_extras = _project_extras()
    queue = [(_canonical(d), frozenset(project_extras.get(_canonical(d), set())))
             for m in modules for d in by_module[m]]
    pins: dict[str, str] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    environment = default_environment()
    while queue:
        name, extras = queue.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise PythonEnvError(f"{name} is required by the image code but not installed here") from None
        pins[_canonical(dist.metadata["Name"])] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})):
                continue
            queue.append((_canonical(requirement.name), frozenset(requirement.extras)))
    return sorted(f"{name}=={version}" for name, version in pins.items())


def _pip(args: Sequence[str], what: str) -> None:
    try:
        done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                              timeout=PIP_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise PythonEnvError(f"{what}: pip still running after {PIP_TIMEOUT} s, stopped") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise PythonEnvError(f"{what} failed:\n{tail}")


def install_wheels(pins: Sequence[str], site_packages: Path, wheel_cache: Path) -> None:
    """Unpack the pinned wheels into ``site_packages`` (downloaded into ``wheel_cache`` the first time).

    The wheels are chosen for this interpreter (CPython 3.11 on x86-64 glibc), which is what Debian bookworm's
    python3 runs."""
    wheel_cache.mkdir(parents=True, exist_ok=True)
    offline = ["install", "--no-deps", "--no-index", "--find-links", str(wheel_cache), "--only-binary=:all:",
               "--no-compile", "--target", str(site_packages), "--upgrade", *pins]
    try:
        _pip(offline, "installing the image's Python packages from the wheel cache")
        return
    except PythonEnvError:
        pass
    _pip(["download", "--no-deps", "--only-binary=:all:", "--dest", str(wheel_cache), *pins],
         "downloading the image's Python packages")
    _pip(offline, "installing the image's Python packages")
