"""What goes into each image, and when an image counts as unchanged (no build needed: keys and closures only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.images.build import ImageBuilder, ImageBuildError, InputHash, build_images
from immich_conformance.images.python_env import PythonEnvError, project_files, runtime_requirements
from immich_conformance.images.recipes import IMAGE_PREFIX, RECIPES, BuildOptions, image_refs
from immich_conformance.versions import ENVOY_VERSION, IMMICH_VERSION


def _files(*modules: str) -> set[str]:
    return {str(p) for p in project_files(list(modules))}


def test_the_double_image_gets_the_double_and_what_it_imports_only() -> None:
    files = _files("immich_conformance.double.__main__")
    assert {"immich_conformance/__init__.py", "immich_conformance/double/__init__.py",
            "immich_conformance/double/app.py", "immich_conformance/double/settings.py",
            "immich_conformance/versions.py"} <= files
    assert not any(f.startswith(("immich_conformance/stack_checks", "immich_conformance/edge/",
                                 "immich_conformance/images/")) for f in files)


def test_imports_inside_functions_count() -> None:
    # the edge's command line imports its server module inside main()
    assert "immich_conformance/edge/server.py" in _files("immich_conformance.edge.__main__")


def test_the_edge_image_gets_the_launcher_and_the_edge() -> None:
    files = _files("immich_conformance.images.edge_pod")
    assert {"immich_conformance/images/edge_pod.py", "immich_conformance/edge/server.py",
            "immich_conformance/access_keys.py"} <= files
    assert "immich_conformance/images/build.py" not in files


def test_an_unknown_entry_module_is_named() -> None:
    with pytest.raises(PythonEnvError, match="no module immich_conformance.nothing"):
        project_files(["immich_conformance.nothing"])


def test_runtime_requirements_are_pinned_with_the_projects_extras() -> None:
    pins = runtime_requirements(project_files(["immich_conformance.double.__main__"]))
    names = {pin.split("==")[0] for pin in pins}
    assert {"aiohttp", "psycopg", "psycopg-binary", "python-socketio", "python-engineio", "yarl"} <= names
    assert all("==" in pin for pin in pins)
    assert "pytest" not in names and "kubernetes" not in names


def test_references_and_tags() -> None:
    refs = image_refs()
    assert set(refs) == {"postgres", "redis", "origin-proxy", "immich-server", "immich-machine-learning",
                         "edge-standin"}
    assert all(ref.startswith(f"{IMAGE_PREFIX}/") for ref in refs.values())
    assert refs["immich-server"].endswith(f":{IMMICH_VERSION}")
    assert refs["immich-machine-learning"].endswith(f":{IMMICH_VERSION}")
    assert refs["origin-proxy"].endswith(f":v{ENVOY_VERSION}")
    assert image_refs(BuildOptions(double_version="v2.7.3"))["immich-server"].endswith(":v2.7.3")


def test_the_double_reports_the_version_baked_into_its_image() -> None:
    for version in (IMMICH_VERSION, "v2.7.3"):
        env = RECIPES["immich-server"].config(BuildOptions(double_version=version)).env
        assert env["IMMICH_DOUBLE_VERSION"] == version


def test_input_keys_are_stable_and_follow_the_inputs(tmp_path: Path) -> None:
    first, second = ImageBuilder(tmp_path, print), ImageBuilder(tmp_path, print)
    other_version = ImageBuilder(tmp_path, print, BuildOptions(double_version="v2.7.3"))
    server = RECIPES["immich-server"]
    stage = first.image_stage(server)
    assert stage == second.image_stage(server)
    # a second double version is another archive of the same root filesystem
    assert other_version.image_stage(server) == stage
    assert other_version.archive_key(server, stage) != first.archive_key(server, stage)
    # images on different bases or with different steps never share a key
    keys = {first.image_stage(r).key for r in RECIPES.values()}
    assert len(keys) == len(RECIPES)
    assert InputHash("a").add("x", "1").key != InputHash("a").add("x", "2").key


def test_a_changed_project_file_changes_only_the_images_that_run_it(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "immich_conformance", copy / "immich_conformance",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = ImageBuilder(tmp_path / "cache", print, repo_root=copy)
    keys = {name: before.image_stage(r).key for name, r in RECIPES.items()}
    ml = copy / "immich_conformance/ml_double.py"
    ml.write_text(ml.read_text() + "\n# changed\n")
    after = ImageBuilder(tmp_path / "cache", print, repo_root=copy)
    changed = {name for name, r in RECIPES.items() if after.image_stage(r).key != keys[name]}
    assert changed == {"immich-machine-learning"}


def test_unknown_images_are_refused_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="unknown image.*nginx.*the images are postgres"):
        build_images(["nginx"], tmp_path, print)
    assert not (tmp_path / "rootfs").exists()
