"""The mutation catalogue: every seeded mistake must be caught by the check it names, in every overlay."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from immich_conformance.stack_checks import RenderedOverlay, run_static_checks
from immich_conformance.stack_checks.mutations import CATALOGUE, Mutation, fill_in, killed, mutate

MINIMUM_CATALOGUE = 55


def test_catalogue_is_large_and_names_unique() -> None:
    names = [m.name for m in CATALOGUE]
    assert len(names) >= MINIMUM_CATALOGUE and len(set(names)) == len(names)


@pytest.mark.parametrize("mutation", CATALOGUE, ids=[m.name for m in CATALOGUE])
def test_mutation_is_caught(mutation: Mutation, rendered: RenderedOverlay,
                            mutation_results: dict[str, dict[str, bool]]) -> None:
    assert not run_static_checks(rendered), "the unmutated stack must pass before mutations mean anything"
    findings = run_static_checks(mutate(rendered, mutation))
    caught = killed(findings, mutation)
    mutation_results.setdefault(mutation.name, {})[rendered.name] = caught
    assert caught, (f"'{mutation.description}' was not reported by the '{mutation.caught_by}' check; findings: "
                    + "; ".join(map(str, findings)))


def test_a_filled_in_overlay_passes_where_the_placeholder_mutations_start(rendered: RenderedOverlay) -> None:
    """The placeholder mutations keep one example value in an otherwise filled-in overlay: filled in, it passes."""
    documents = copy.deepcopy(rendered.documents)
    fill_in(documents)
    own_files = dataclasses.replace(rendered, documents=documents, example_secrets=False)
    assert not run_static_checks(own_files)
    as_committed = dataclasses.replace(rendered, example_secrets=False)
    assert {f.check for f in run_static_checks(as_committed)} == {"placeholders"}
