"""`pytest features/` and `pytest`: the suite's plugin (targets, diagnostics) and the scenarios' step definitions."""

import os

import pytest

from tests.worker_groups import CLUSTER_GROUP, group_of, selects_group

pytest_plugins = [
    "pytester",
    "immich_conformance.pytest_plugin",
    "steps.context",
    "steps.lan_steps",
    "steps.external_steps",
    "steps.origin_steps",
    "steps.upload_steps",
    "steps.body_steps",
    "steps.websocket_steps",
    "steps.dns_steps",
    "steps.cluster_steps",
]


@pytest.hookimpl(optionalhook=True)  # pytest-xdist is a development tool: `pytest features/` runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`-n` (xdist's load distribution) schedules by group: a group is one unit of work for one worker, every other
    test a unit of its own. (xdist's own --dist loadgroup reads groups from test ids, which pytest 9 no longer lets a
    plugin change.) An explicit --dist other than load keeps xdist's scheduler."""
    if config.option.dist != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByResource(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or nodeid

    return ByResource(config, log)  # type: ignore[arg-type]


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker per core, and one more when the offline cluster's tests run (as root, with their folder
    among the paths): their worker mostly waits on rollouts and keeps about half a core busy, so the other workers
    share the cores. None leaves the count to xdist (PYTEST_XDIST_AUTO_NUM_WORKERS, when set, still decides)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or os.geteuid() != 0:
        return None
    paths = config.args or list(config.getini("testpaths"))
    relative = [os.path.relpath(config.invocation_params.dir / path, config.rootpath) for path in paths]
    if not selects_group(relative, CLUSTER_GROUP):
        return None
    return (len(os.sched_getaffinity(0)) or 1) + 1
