"""Placeholders left in a real overlay: an example value that reached the rendered stack.

The placeholders are the values a person must replace: each `KEY=value` of the committed `*.example` beside a
secret file, the Access team domain and AUD tag of stack/base/origin-proxy/origin-proxy.env, the hostname, team and
AUD tag of stack/base/cloudflared/cloudflared.yaml, and any host name under a domain reserved for examples
(RFC 2606: example.com, .example, .invalid, ...). Rendered with the committed examples on purpose
(`--example-secrets`, CI), the stack holds them by design and this check does not run.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from immich_conformance.stack_checks.findings import Finding
from immich_conformance.stack_checks.manifests import ref

CHECK = "placeholders"
EXAMPLE_SUFFIX = ".example"
BASE_PROXY_SETTINGS = Path("base") / "origin-proxy" / "origin-proxy.env"
BASE_CLOUDFLARED = Path("base") / "cloudflared" / "cloudflared.yaml"
SETTINGS_TO_SET = ("CF_TEAM_DOMAIN", "CF_ACCESS_AUD")
EXAMPLE_DOMAINS = re.compile(r"(?i)(?:[a-z0-9-]+\.)*example\.(?:com|net|org)\.?"
                             r"|(?:[a-z0-9-]+\.)+(?:example|invalid|test)\.?")


@dataclass(frozen=True)
class Placeholder:
    value: str
    origin: str  # the file it comes from
    fix: str  # what to set, where


def _env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def overlay_placeholders(stack_dir: Path, overlay: str, secret_files: list[Path]) -> list[Placeholder]:
    """The values an overlay must not keep: from its secret examples and from the base's stand-in values."""
    root = stack_dir.parent
    found: list[Placeholder] = []
    for secret in secret_files:
        example = secret.with_name(secret.name + EXAMPLE_SUFFIX)
        if not example.is_file():
            continue
        text, origin = example.read_text(), _shown(example, root)
        if secret.suffix == ".env":
            found += [Placeholder(value, origin, f"set {key} in {_shown(secret, root)}")
                      for key, value in _env_file(text).items() if value]
        elif text.strip():
            found.append(Placeholder(text.strip(), origin, f"put your own content in {_shown(secret, root)}"))
    overlay_dir = f"stack/overlays/{overlay}"
    proxy_settings = stack_dir / BASE_PROXY_SETTINGS
    if proxy_settings.is_file():
        values = _env_file(proxy_settings.read_text())
        found += [Placeholder(values[key], _shown(proxy_settings, root), f"set {key} in {overlay_dir}/origin-proxy.env")
                  for key in SETTINGS_TO_SET if values.get(key)]
    cloudflared = stack_dir / BASE_CLOUDFLARED
    if cloudflared.is_file():
        try:
            config = yaml.safe_load(cloudflared.read_text())
        except yaml.YAMLError:
            config = None  # cloudflared-ingress reports a configuration that does not parse
        origin, fix = _shown(cloudflared, root), f"in {overlay_dir}/cloudflared.yaml"
        rules = config.get("ingress") if isinstance(config, dict) else None
        for rule in rules if isinstance(rules, list) else []:
            if not isinstance(rule, dict):
                continue
            access = ((rule.get("originRequest") or {}).get("access")) or {}
            if rule.get("hostname"):
                found.append(Placeholder(str(rule["hostname"]), origin, f"set Immich's public hostname {fix}"))
            if access.get("teamName"):
                found.append(Placeholder(str(access["teamName"]), origin, f"set your Access teamName {fix}"))
            found += [Placeholder(str(aud), origin, f"set the Access application's audTag {fix}")
                      for aud in access.get("audTag") or []]
    return found


def _scalars(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from _scalars(value)
    elif isinstance(node, str):
        yield node
        if "\n" in node:
            try:
                embedded = yaml.safe_load(node)
            except yaml.YAMLError:
                return
            if isinstance(embedded, dict | list):
                yield from _scalars(embedded)


def _values(doc: dict[str, Any]) -> Iterator[str]:
    if doc.get("kind") == "Secret":
        for value in (doc.get("data") or {}).values():
            try:
                yield base64.b64decode(str(value), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                yield str(value)
        yield from _scalars(doc.get("stringData") or {})
        return
    yield from _scalars(doc)


def check_placeholders(documents: list[dict[str, Any]], placeholders: list[Placeholder]) -> list[Finding]:
    by_value: dict[str, Placeholder] = {}
    for p in placeholders:  # one value may stand in several files: name them all
        known = by_value.get(p.value)
        by_value[p.value] = p if known is None else Placeholder(
            p.value, " and ".join(dict.fromkeys([*known.origin.split(" and "), p.origin])),
            "; ".join(dict.fromkeys([*known.fix.split("; "), p.fix])))
    findings = []
    for doc in documents:
        reported: set[str] = set()
        for value in _values(doc):
            text = value.strip()
            if text in reported:
                continue
            placeholder = by_value.get(text)
            if placeholder is not None:
                reported.add(text)
                findings.append(Finding(CHECK, ref(doc), f"still holds the example value {text!r} (from "
                                                         f"{placeholder.origin}): {placeholder.fix}"))
            elif EXAMPLE_DOMAINS.fullmatch(text):
                reported.add(text)
                findings.append(Finding(CHECK, ref(doc), f"names {text!r}, a domain reserved for examples: set "
                                                         f"your own host name"))
    return findings
