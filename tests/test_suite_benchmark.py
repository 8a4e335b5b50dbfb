"""The whole-suite benchmark's CPU figure: it counts the machine's busy time, and turns it into a floor."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.suite import busy_seconds, cpu_floor, not_passed


def test_busy_time_grows_by_the_cpu_a_process_spends() -> None:
    before, spent_before = busy_seconds(), time.process_time()
    while time.process_time() - spent_before < 0.5:
        sum(i * i for i in range(10_000))
    assert busy_seconds() - before >= 0.4


def test_the_floor_is_the_busy_time_over_the_cores() -> None:
    line = cpu_floor(busy=1200, wall=900, cores=2)
    assert "1200 core-s (67% of 2 cores)" in line
    assert "less than 10.0 min" in line


def test_the_tests_that_did_not_pass_are_named(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text("""<testsuites><testsuite name="pytest">
<testcase classname="tests.a" name="test_ok" time="1"/>
<testcase classname="tests.a" name="test_broken" time="1">
  <failure message="AssertionError: no&#10;more">x</failure></testcase>
<testcase classname="tests.b" name="test_setup" time="1"><error message="fixture failed">y</error></testcase>
<testcase classname="tests.b" name="test_skip" time="0"><skipped message="why"/></testcase>
</testsuite></testsuites>""")
    assert not_passed(report) == ["failure: tests.a::test_broken: AssertionError: no",
                                  "error: tests.b::test_setup: fixture failed"]
