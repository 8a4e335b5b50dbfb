"""A check's outcome: pass, warn or fail, what was found, and the exact fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Outcome:
    """What a check function returns; the runner adds the check's id and group."""

    verdict: Verdict
    found: str
    fix: str = ""


def passed(found: str) -> Outcome:
    return Outcome(Verdict.PASS, found)


def warned(found: str, fix: str) -> Outcome:
    return Outcome(Verdict.WARN, found, fix)


def failed(found: str, fix: str) -> Outcome:
    return Outcome(Verdict.FAIL, found, fix)


@dataclass(frozen=True)
class Result:
    check: str
    group: str
    verdict: Verdict
    found: str
    fix: str = ""

    def line(self) -> str:
        """One line: verdict, check, what was found, and (unless it passed) the fix."""
        text = f"{self.verdict.value.upper():4} {self.check}: {self.found}"
        return f"{text} -> fix: {self.fix}" if self.fix and self.verdict is not Verdict.PASS else text

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return data
