"""Run checkov (kubernetes framework) on rendered manifests and sort its verdicts.

A failed check is a finding. A skipped check is fine only with a written reason: the annotation
`checkov.io/skipN: CKV_ID=reason` on the object; a skip without one (checkov records "No comment provided")
is a finding too. So is a scan that did not cover the rendered workloads and Services: checkov reads only files
named *.yaml/*.yml, and a scan of nothing passes. checkov is told not to download anything and, where the machine
allows it, runs in a network namespace of its own with no interfaces, so a scan never leaves the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from immich_conformance import REPO_ROOT
from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import WORKLOAD_KINDS

CHECKOV_TIMEOUT_SECONDS = 300
NO_REASON = "No comment provided"
MIN_REASON_LENGTH = 20
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
SCANNED_SUFFIXES = (".yaml", ".yml")
COVERED_KINDS = (*WORKLOAD_KINDS, "Service")


class CheckovUnavailable(RuntimeError):
    """checkov is not installed or did not produce a report."""


@dataclass
class CheckovReport:
    file: str
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    passed: int = 0
    resources: set[str] = field(default_factory=set)
    expected: set[str] = field(default_factory=set)  # resources the scan must cover (checkov's Kind.namespace.name)

    def coverage_findings(self) -> list[Finding]:
        if not self.resources:
            return [Finding("checkov", self.file, f"checkov scanned no resource (of {len(self.expected)} expected): "
                                                  f"the scan proves nothing")]
        missing = sorted(self.expected - self.resources)
        if missing:
            return [Finding("checkov", self.file, f"checkov did not scan {', '.join(missing)}")]
        return []

    def findings(self) -> list[Finding]:
        found = self.coverage_findings()
        found += [Finding("checkov", f"{r.get('resource')}", f"{r.get('check_id')} {r.get('check_name')}")
                  for r in self.failed]
        for r in self.skipped:
            reason = waiver_reason(r)
            if reason == NO_REASON or len(reason.strip()) < MIN_REASON_LENGTH:
                found.append(Finding("checkov", f"{r.get('resource')}", f"{r.get('check_id')} is waived without a "
                                                                        f"written reason ({reason!r})"))
        return found


def waiver_reason(result: dict[str, Any]) -> str:
    return str((result.get("check_result") or {}).get("suppress_comment") or result.get("suppress_comment") or "")


# setup.sh installs checkov into a virtual environment of its own here: it pins many packages the suite uses too.
TOOLS_CHECKOV = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"


def checkov_binary() -> str:
    configured = os.environ.get("CHECKOV_BIN")
    if configured:
        if not Path(configured).is_file():
            raise CheckovUnavailable(f"CHECKOV_BIN={configured} does not exist")
        return configured
    if TOOLS_CHECKOV.is_file():
        return str(TOOLS_CHECKOV)
    found = shutil.which("checkov")
    if not found:
        raise CheckovUnavailable("checkov is not installed: run ./setup.sh (it installs checkov into .tools/checkov), "
                                 "or point CHECKOV_BIN at a checkov executable")
    return found


def _network_isolation() -> list[str]:
    """`unshare -n` when this process may create a network namespace, else nothing (checkov still downloads
    nothing: see OFFLINE_ENV and --skip-download)."""
    unshare = shutil.which("unshare")
    if unshare and hasattr(os, "geteuid") and os.geteuid() == 0:
        probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10, check=False)
        if probe.returncode == 0:
            return [unshare, "-n"]
    return []


def expected_resources(text: str) -> set[str]:
    """checkov's ids (Kind.namespace.name) of the workloads and Services in a rendered stack."""
    found = set()
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict) and doc.get("kind") in COVERED_KINDS:
            meta = doc.get("metadata") or {}
            found.add(f"{doc['kind']}.{meta.get('namespace') or 'default'}.{meta.get('name')}")
    return found


def scan_rendered(texts: dict[str, str]) -> dict[str, CheckovReport]:
    """Scan rendered stacks (name -> YAML text) in one checkov run; each report knows what it had to cover."""
    reports = run_checkov(texts)
    for name, text in texts.items():
        reports[name].expected = expected_resources(text)
    return reports


def _file_name(name: str) -> str:
    return name if name.endswith(SCANNED_SUFFIXES) else f"{name}.yaml"


def run_checkov(files: dict[str, str]) -> dict[str, CheckovReport]:
    """Scan each named text (name -> rendered YAML) in one checkov run; a report per name. A name without .yaml
    is written with it (checkov skips other files)."""
    binary = checkov_binary()
    on_disk = {_file_name(name): name for name in files}
    if len(on_disk) != len(files):
        raise ValueError(f"two names give the same file: {sorted(files)}")
    with tempfile.TemporaryDirectory(prefix="immich-checkov-") as tmp:
        for file_name, name in on_disk.items():
            (Path(tmp) / file_name).write_text(files[name])
        argv = _network_isolation() + [binary, "-d", tmp, "--framework", "kubernetes", "-o", "json", "--compact",
                                       "--skip-download"]
        env = {**os.environ, **OFFLINE_ENV}
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT_SECONDS, env=env,
                                  cwd=tmp, check=False)
        except subprocess.TimeoutExpired as err:
            raise CheckovUnavailable(f"checkov took over {CHECKOV_TIMEOUT_SECONDS} s") from err
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError as err:
        raise CheckovUnavailable(f"checkov gave no JSON report (exit {done.returncode}): "
                                 f"{done.stderr.strip()[-2000:]}") from err
    runs = output if isinstance(output, list) else [output]
    reports = {name: CheckovReport(name) for name in files}
    for run in runs:
        results = run.get("results") or {}
        for bucket in ("passed_checks", "failed_checks", "skipped_checks"):
            for result in results.get(bucket) or []:
                report = reports.get(on_disk.get(Path(str(result.get("file_path"))).name, ""))
                if report is None:
                    continue
                report.resources.add(str(result.get("resource")))
                if bucket == "passed_checks":
                    report.passed += 1
                elif bucket == "failed_checks":
                    report.failed.append(result)
                else:
                    report.skipped.append(result)
        for error in results.get("parsing_errors") or []:
            name = on_disk.get(Path(str(error)).name, "")
            if name in reports:
                reports[name].failed.append({"resource": name, "check_id": "PARSE", "check_name": "does not parse"})
    return reports
