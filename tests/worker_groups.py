"""Which tests share a pytest-xdist worker (the scheduler is in the root conftest.py)."""

from __future__ import annotations

# With pytest-xdist (`pytest -n auto`), the tests of a machine-wide resource run in one worker, one after another,
# while the others spread over every worker. "offline-cluster": one per machine (its node address and ports are
# fixed), with the tests that make git commits of this checkout for rehearsals and the image tests (a private
# containerd, overlay mounts: what the cluster's own tests must not see come and go); "docker": the tests that start
# the stack's containers and count what they leave. By folder of tests/.
CLUSTER_GROUP = "offline-cluster"
GROUPS = {"cluster": CLUSTER_GROUP, "rehearsal": CLUSTER_GROUP, "netpolicy": CLUSTER_GROUP, "images": CLUSTER_GROUP,
          "containers": "docker"}
# Files of those folders that use none of it (a sandbox of their own, or nothing running, and no git commit) run in
# any worker: the offline cluster's worker is the run's longest.
ANYWHERE = {f"tests/rehearsal/{name}.py" for name in (
    "test_library", "test_options", "test_health", "test_restored", "test_psql_restore", "test_phase_order",
    "test_vacuous_phases")}


def selects_group(paths: list[str], group: str) -> bool:
    """Whether a run of ``paths`` (relative to the repository, as given to pytest) takes in a folder of ``group``."""
    folders = [f"tests/{folder}" for folder, its_group in GROUPS.items() if its_group == group]
    for path in paths:
        where = path.split("::", 1)[0].strip("/").removeprefix("./") or "."
        if where in ANYWHERE:
            continue
        if where in (".", "tests") or any(where == f or where.startswith(f"{f}/") for f in folders):
            return True
    return False


def group_of(nodeid: str) -> str | None:
    """The group of a test id (``tests/cluster/test_x.py::test_y``), or None when it may run in any worker."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if path in ANYWHERE or len(parts) <= 2 or parts[0] != "tests":
        return None
    return GROUPS.get(parts[1])
