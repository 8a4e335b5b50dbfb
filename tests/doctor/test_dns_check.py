"""Split-horizon DNS: the public hostname resolves to this node. Resolved from the fake root's /etc/hosts or by an
injected resolver: these tests never ask a DNS server."""

from __future__ import annotations

import pytest

from immich_conformance.doctor.node import Node
from immich_conformance.doctor.verdicts import Verdict

from .fakeroot import HOSTNAME, NODE_IP, FakeRoot, run_check, settings


def test_the_public_hostname_resolving_to_this_node_passes(fake: FakeRoot) -> None:
    outcome = run_check("split-horizon-dns", fake)
    assert outcome.verdict is Verdict.PASS and NODE_IP in outcome.found


@pytest.mark.parametrize(("hosts", "verdict", "words"), [
    (f"104.21.7.9 {HOSTNAME}\n", Verdict.FAIL, "not this node"),
    ("127.0.0.1 localhost\n", Verdict.WARN, "does not resolve"),
    (f"127.0.1.1 {HOSTNAME}\n", Verdict.WARN, "loopback"),
])
def test_the_public_hostname_resolving_elsewhere(fake: FakeRoot, hosts: str, verdict: Verdict, words: str) -> None:
    fake.hosts(hosts)
    outcome = run_check("split-horizon-dns", fake)
    assert outcome.verdict is verdict and words in outcome.found, outcome
    assert outcome.fix == f"on the LAN's DNS (router, Pi-hole...) add a record {HOSTNAME} -> {NODE_IP}"


def test_the_example_hostname_warns(fake: FakeRoot) -> None:
    outcome = run_check("split-horizon-dns", fake, settings(public_hostname="photos.example.com"))
    assert outcome.verdict is Verdict.WARN and "cloudflared.yaml" in outcome.fix


def test_an_injected_resolver_is_asked_instead_of_the_hosts_file(fake: FakeRoot) -> None:
    node = Node("local://", str(fake.root))
    asked: list[str] = []
    node.resolver = lambda name: asked.append(name) or ["104.21.7.9", "172.67.1.1"]  # type: ignore[func-returns-value]
    outcome = run_check("split-horizon-dns", fake, node=node)
    assert asked == [HOSTNAME] and outcome.verdict is Verdict.FAIL
