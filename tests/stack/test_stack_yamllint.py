"""yamllint over stack/ with stack/.yamllint (duplicate keys, indentation, line length)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _yamllint(config: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yamllint", "-f", "parsable", "-c", str(config), str(target)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_stack_yaml_is_clean(stack_dir: Path) -> None:
    done = _yamllint(stack_dir / ".yamllint", stack_dir)
    assert done.returncode == 0, done.stdout + done.stderr


def test_yamllint_config_rejects_a_duplicated_key(stack_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "service.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n")
    done = _yamllint(stack_dir / ".yamllint", manifest)
    assert done.returncode != 0 and "key-duplicates" in done.stdout
