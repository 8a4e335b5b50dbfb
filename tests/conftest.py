"""Fixtures shared across test folders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .shared_cluster import SharedCluster


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[SharedCluster]:
    """The offline cluster as the session leaves it: down at the end if the session brought it up."""
    shared = SharedCluster()
    yield shared
    shared.release()


@pytest.fixture(scope="module")
def offline_cluster(shared_cluster: SharedCluster) -> SharedCluster:
    """The offline cluster up (once for the session: a cluster up takes ~15 s and a down ~8 s), without the
    namespaces earlier modules left. The targets and commands the tests start find it up and leave it running."""
    shared_cluster.up()
    shared_cluster.clear_namespaces()
    return shared_cluster
