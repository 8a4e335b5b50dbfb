"""Fixtures of the stack's static proof: each overlay rendered once per session, with example secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from immich_conformance.stack_checks import RenderedOverlay, find_stack_dir, overlay_names, render_overlay

STACK_DIR = find_stack_dir()
OVERLAYS = overlay_names(STACK_DIR)
MUTATION_RESULTS = pytest.StashKey[dict[str, dict[str, bool]]]()


@pytest.fixture(scope="session")
def stack_dir() -> Path:
    return STACK_DIR


@pytest.fixture(scope="session")
def rendered_overlays() -> dict[str, RenderedOverlay]:
    return {name: render_overlay(name, STACK_DIR, with_example_secrets=True) for name in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, rendered_overlays: dict[str, RenderedOverlay]) -> RenderedOverlay:
    return rendered_overlays[request.param]


@pytest.fixture(scope="session")
def mutation_results(request: pytest.FixtureRequest) -> dict[str, dict[str, bool]]:
    """mutation name -> overlay -> caught; read by the terminal summary."""
    return request.config.stash.setdefault(MUTATION_RESULTS, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    results = config.stash.get(MUTATION_RESULTS, {})
    if results:
        killed = sum(all(per_overlay.values()) for per_overlay in results.values())
        overlays = sorted({o for per_overlay in results.values() for o in per_overlay})
        terminalreporter.write_line(f"mutation catalogue: {killed}/{len(results)} killed "
                                    f"(each in overlays {', '.join(overlays)})")
        for name, per_overlay in sorted(results.items()):
            survived = [o for o, caught in per_overlay.items() if not caught]
            if survived:
                terminalreporter.write_line(f"  survived: {name} in {', '.join(survived)}")
