"""The node against a fake root: CPU flags, memory against the stack's requests, the Kubernetes release, the kernel
features of the NetworkPolicy enforcer, and the LAN NodePort."""

from __future__ import annotations

import os

import pytest

from immich_conformance import versions
from immich_conformance.doctor.settings import GiB
from immich_conformance.doctor.verdicts import Verdict

from .fakeroot import RELEASE, V2_AND_AVX2, FakeRoot, run_check, settings


@pytest.mark.parametrize(("flags", "field", "verdict", "words"), [
    (V2_AND_AVX2, "flags", Verdict.PASS, "every x86-64-v2 flag"),
    ("fp asimd evtstrm aes pmull sha1 sha2 crc32", "Features", Verdict.PASS, "ARM"),
    (V2_AND_AVX2.replace(" avx2", ""), "flags", Verdict.WARN, "no AVX2"),
    (V2_AND_AVX2.replace(" sse4_2", "").replace(" popcnt", ""), "flags", Verdict.FAIL, "lacks popcnt, sse4_2"),
    (V2_AND_AVX2.replace(" cx16", ""), "flags", Verdict.FAIL, "lacks cx16"),
], ids=["x86-64-v3", "arm64", "v2-without-avx2", "no-sse4_2-popcnt", "no-cx16"])
def test_cpu_flags_for_the_machine_learning_image(fake: FakeRoot, flags: str, field: str, verdict: Verdict,
                                                   words: str) -> None:
    fake.cpu(flags, field)
    outcome = run_check("cpu-x86-64-v2", fake)
    assert outcome.verdict is verdict and words in outcome.found, outcome


@pytest.mark.parametrize(("total", "verdict"), [(16 * GiB, Verdict.PASS), (2 * GiB + 512 * 1024 ** 2, Verdict.WARN),
                                                (GiB, Verdict.FAIL)])
def test_memory_against_the_stacks_requests(fake: FakeRoot, total: int, verdict: Verdict) -> None:
    fake.memory(total)
    outcome = run_check("memory", fake)
    assert outcome.verdict is verdict, outcome
    assert "request 2.0 GiB" in outcome.found


def supported(offset: int) -> str:
    major, minor = versions.KUBERNETES_MINOR.split(".")
    return f"v{major}.{int(minor) + offset}.4+k3s1"


@pytest.mark.parametrize(("version", "verdict"), [
    (f"v{versions.KUBERNETES_VERSION}+k3s1", Verdict.PASS),
    (f"v{versions.KUBERNETES_OLDEST_MINOR}.1+k3s1", Verdict.WARN),
    (supported(1), Verdict.WARN),
    (f"v{versions.KUBERNETES_OLDEST_MINOR.split('.')[0]}."
     f"{int(versions.KUBERNETES_OLDEST_MINOR.split('.')[1]) - 1}.9+k3s1", Verdict.FAIL),
    ("v1.24.17+k3s1", Verdict.FAIL),
])
def test_kubernetes_release_within_what_the_stack_supports(fake: FakeRoot, version: str, verdict: Verdict) -> None:
    fake.k3s(version)
    outcome = run_check("kubernetes-version", fake)
    assert outcome.verdict is verdict, outcome


def test_no_kubernetes_installed_warns(fake: FakeRoot) -> None:
    os.remove(fake.p("/usr/local/bin/k3s"))
    assert run_check("kubernetes-version", fake).verdict is Verdict.WARN


def test_kubelet_is_read_when_there_is_no_k3s(fake: FakeRoot) -> None:
    os.remove(fake.p("/usr/local/bin/k3s"))
    kubelet = fake.p("/usr/bin/kubelet")
    kubelet.parent.mkdir(parents=True, exist_ok=True)
    kubelet.write_text("#!/bin/sh\necho 'Kubernetes v1.20.0'\n")
    kubelet.chmod(0o755)
    outcome = run_check("kubernetes-version", fake)
    assert outcome.verdict is Verdict.FAIL and "kubelet v1.20.0" in outcome.found


def test_kernel_features_loadable_built_in_or_missing(fake: FakeRoot) -> None:
    outcome = run_check("kernel-networkpolicy", fake)
    assert outcome.verdict is Verdict.PASS and "ip_set loadable" in outcome.found
    fake.modules_dep("kernel/net/netfilter/ipset/ip_set.ko.zst:\n")
    outcome = run_check("kernel-networkpolicy", fake)
    assert outcome.verdict is Verdict.FAIL and "xt_set" in outcome.found and "modprobe xt_set" in outcome.fix
    fake.kernel_config("CONFIG_IP_SET=m\nCONFIG_NETFILTER_XT_SET=y\n")
    assert run_check("kernel-networkpolicy", fake).verdict is Verdict.PASS
    fake.kernel_config("CONFIG_IP_SET=m\n# CONFIG_NETFILTER_XT_SET is not set\n")
    assert run_check("kernel-networkpolicy", fake).verdict is Verdict.FAIL


def test_kernel_features_unknown_warn(fake: FakeRoot) -> None:
    os.remove(fake.p(f"/lib/modules/{RELEASE}/modules.dep"))
    outcome = run_check("kernel-networkpolicy", fake)
    assert outcome.verdict is Verdict.WARN and "cannot tell" in outcome.found


def service(namespace: str, name: str, node_port: int) -> dict:
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 2283, "nodePort": node_port}]}}


def test_node_port_free_or_held_by_the_stacks_own_service_passes(fake: FakeRoot) -> None:
    outcome = run_check("lan-node-port", fake)
    assert outcome.verdict is Verdict.PASS and "no Service holds it" in outcome.found
    fake.set_services([service("immich", "immich-server", 30283), service("other", "web", 30080)])
    outcome = run_check("lan-node-port", fake)
    assert outcome.verdict is Verdict.PASS and "stack's own Service immich/immich-server" in outcome.found


def test_node_port_held_by_another_service_or_a_process_fails(fake: FakeRoot) -> None:
    fake.set_services([service("media", "jellyfin", 30283)])
    outcome = run_check("lan-node-port", fake)
    assert outcome.verdict is Verdict.FAIL and "media/jellyfin" in outcome.found and "lanNodePort" in outcome.fix
    fake.set_services([])
    fake.listening(22, 30283)
    outcome = run_check("lan-node-port", fake)
    assert outcome.verdict is Verdict.FAIL and "ss -ltnp 'sport = :30283'" in outcome.fix


def test_node_port_services_that_cannot_be_listed_warn(fake: FakeRoot) -> None:
    fake.p("/usr/local/bin/k3s").write_text("#!/bin/sh\necho 'The connection to the server was refused' >&2\nexit 1\n")
    outcome = run_check("lan-node-port", fake)
    assert outcome.verdict is Verdict.WARN and "connection to the server was refused" in outcome.found
    assert run_check("lan-node-port", fake, settings(node_port=None)).verdict is Verdict.PASS
