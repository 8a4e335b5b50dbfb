"""kustomize's errors in the stack's terms: one line naming the file, the key and what to set.

kustomize reports where its own machinery failed (accumulation, replacements, options.index); the person needs the
file of stack/ to edit. Known shapes are translated; anything else is shortened to one line with the paths of the
stack shown as `stack/...`.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from immich_conformance.versions import IMMICH_VERSION

MISSING_SOURCE_FIELD = re.compile(r"fieldPath `(?P<field>[^`]+)` is missing for replacement source "
                                  r"(?P<kind>\w+)\.[^/\s]*/(?P<name>[\w-]+)")
INDEX_OUT_OF_BOUNDS = re.compile(r"options\.index (?P<index>\d+) is out of bounds for value (?P<value>[^\s\"']+)")
MISSING_FILE = re.compile(r"evalsymlink failure on '(?P<path>[^']+)'|(?P<path2>/\S+): no such file or directory")
NOT_AN_INT = re.compile(r"cannot decode !!str `(?P<value>[^`]*)` as a !!int")
SETTINGS_CONFIGMAP = "stack-settings"


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _image_entry_file(stack_dir: Path, image: str) -> Path | None:
    """The kustomization under stack/ whose images: entry names `image` without a newTag."""
    for path in sorted(stack_dir.rglob("kustomization.yaml")):
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        for entry in (loaded.get("images") if isinstance(loaded, dict) else None) or []:
            if isinstance(entry, dict) and entry.get("name") == image and not entry.get("newTag"):
                return path
    return None


def explain(stderr: str, stack_dir: Path, settings_file: Path | None, shown_as: str) -> str:
    """One line saying what in stack/ to fix, for kubectl kustomize's error output."""
    root = stack_dir.parent
    text = stderr.strip()
    missing = MISSING_SOURCE_FIELD.search(text)
    if missing:
        field, name = missing.group("field"), missing.group("name")
        key = field.removeprefix("data.")
        if name == SETTINGS_CONFIGMAP and settings_file is not None:
            return (f"{_shown(settings_file, root)} has no '{key}' under data: set it (stack/README.md lists "
                    f"what each settings.yaml key means)")
        return f"{shown_as}: {missing.group('kind')} '{name}' has no {field}, which a replacement copies from: set it"
    out_of_bounds = INDEX_OUT_OF_BOUNDS.search(text)
    if out_of_bounds:
        image = out_of_bounds.group("value")
        where = _image_entry_file(stack_dir, image)
        if where is not None:
            return (f"{_shown(where, root)}: images entry {image} has no newTag: set newTag (the release, e.g. "
                    f"{IMMICH_VERSION} for Immich), which a replacement copies")
        return f"{shown_as}: the image {image} has no tag, which a replacement copies: give it a newTag under images:"
    absent = MISSING_FILE.search(text)
    if absent:
        path = Path(absent.group("path") or absent.group("path2"))
        return f"{_shown(path, root)} is missing: {shown_as} (or a base it builds on) names it; create it or restore it"
    not_int = NOT_AN_INT.search(text)
    if not_int:
        return (f"{shown_as}: '{not_int.group('value')}' is put where a number belongs (a port?): check the numbers in "
                f"{_shown(settings_file, root) if settings_file else 'settings.yaml'}")
    one_line = " ".join(text.replace(str(root.resolve()) + "/", "").split()).removeprefix("Error: ")
    return f"kubectl kustomize {shown_as} failed: {one_line}"
