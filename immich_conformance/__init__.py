"""Immich conformance: a reference Kubernetes stack for self-hosted Immich and the suite that proves it safe."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = REPO_ROOT / "stack"
