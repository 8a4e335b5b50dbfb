"""The cluster's CoreDNS is built with exactly the plugins its Corefile uses (no cluster needed)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from immich_conformance.offline_cluster import coredns
from immich_conformance.offline_cluster.build import COMPONENTS, Builder


def corefile_directives(corefile: str) -> set[str]:
    """The first word of every line directly inside a server block: the plugins the Corefile runs."""
    directives: set[str] = set()
    depth = 0
    for line in corefile.splitlines():
        words = line.split()
        if depth == 1 and words and words[0] != "}":
            directives.add(words[0])
        depth += line.count("{") - line.count("}")
    return directives


def test_the_corefile_parser_sees_the_plugins_and_not_their_options() -> None:
    text = "a:53 {\n    errors\n    kubernetes x {\n        pods insecure\n    }\n}\n.:53 {\n    template ANY ANY {\n" \
           "        rcode NXDOMAIN\n    }\n}\n"
    assert corefile_directives(text) == {"errors", "kubernetes", "template"}


def test_every_plugin_the_corefile_uses_is_compiled_in_and_nothing_else() -> None:
    assert corefile_directives(coredns.COREFILE) == set(coredns.PLUGINS)


def test_the_main_package_imports_each_plugin_and_runs_coredns() -> None:
    source = coredns.main_package()
    imported = set(re.findall(r'_ "github\.com/coredns/coredns/plugin/(\w+)"', source))
    assert imported == set(coredns.PLUGINS)
    assert "coremain.Run()" in source and "package main" in source


def test_changing_the_plugins_rebuilds_coredns_and_nothing_else(tmp_path: Path) -> None:
    builder = Builder(tmp_path, progress=lambda _m: None)
    component = next(c for c in COMPONENTS if c.name == "coredns")
    others = [c for c in COMPONENTS if c.name != "coredns"]
    assert component.main_go == coredns.main_package()
    changed = dataclasses.replace(component, main_go=component.main_go + "// more\n")
    assert builder._stamp_content(changed) != builder._stamp_content(component)
    assert all("main_go" not in builder._stamp_content(c) for c in others)
