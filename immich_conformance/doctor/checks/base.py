"""A check: an id, its group, and a function of the node and the stack's settings returning its outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..node import Node, Space
from ..settings import DoctorSettings, GiB
from ..verdicts import Outcome, failed, passed, warned

CheckFunction = Callable[[Node, DoctorSettings], Outcome]


@dataclass(frozen=True)
class Check:
    id: str
    group: str
    function: CheckFunction


def size(value: int) -> str:
    return f"{value / GiB:.1f} GiB" if value >= GiB / 10 else f"{value / 1024 ** 2:.1f} MiB"


def free_space(node: Node, path: str, what: str, warn_below: int, fail_below: int) -> Outcome:
    space: Space | None = node.space(path)
    if space is None:
        return failed(f"cannot read the free space at {path}", f"check that {path} exists and is readable")
    where = path if space.path == path else f"{space.path} (the nearest existing folder above {path})"
    found = f"{size(space.available)} free of {size(space.total)} at {where}"
    fix = f"free space on the filesystem of {path} or move {what} to a larger one"
    if space.available < fail_below:
        return failed(f"{found} (under {size(fail_below)})", fix)
    if space.available < warn_below:
        return warned(f"{found} (under {size(warn_below)})", fix)
    return passed(found)
