"""The doctor's checks as pytest tests: one test per check, run by ``runner`` (which parametrizes ``check`` and
``doctor``), so that pytest's reports (``--junitxml``) show every check. A fail fails the test; a warn passes it with
a warning."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest

from .checks import Check
from .runner import DoctorRun, DoctorWarning
from .verdicts import Verdict


def test_check(check: Check, doctor: DoctorRun, record_property: Callable[[str, object], None]) -> None:
    result = doctor.run(check)
    for name in ("verdict", "found", "fix"):
        record_property(name, str(getattr(result, name).value if name == "verdict" else getattr(result, name)))
    if result.verdict is Verdict.FAIL:
        pytest.fail(result.line(), pytrace=False)
    if result.verdict is Verdict.WARN:
        warnings.warn(DoctorWarning(result.line()), stacklevel=1)
