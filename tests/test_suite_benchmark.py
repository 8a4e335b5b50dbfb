"""The whole-suite benchmark's CPU figure: it counts the machine's busy time, and turns it into a floor."""

from __future__ import annotations

import time

from benchmarks.suite import busy_seconds, cpu_floor


def test_busy_time_grows_by_the_cpu_a_process_spends() -> None:
    before, spent_before = busy_seconds(), time.process_time()
    while time.process_time() - spent_before < 0.5:
        sum(i * i for i in range(10_000))
    assert busy_seconds() - before >= 0.4


def test_the_floor_is_the_busy_time_over_the_cores() -> None:
    line = cpu_floor(busy=1200, wall=900, cores=2)
    assert "1200 core-s (67% of 2 cores)" in line
    assert "less than 10.0 min" in line
