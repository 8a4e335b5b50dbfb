"""Redis asks for the password of its Secret, on the offline cluster: a pod the network policies let through gets
nothing without it, and a pod they keep out still gets nothing once a policy lets it through.

The ci overlay is deployed into a namespace of the test's own. Raw Redis commands (RESP inline commands over bash's
``/dev/tcp``, as the traffic matrix's probes connect) go from inside the pods to immich-redis:6379; the password
travels on kubectl's standard input, never on a command line.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from immich_conformance.conditions import connection_opens
from immich_conformance.netpolicy.probes import connects
from immich_conformance.procs import wait_until
from immich_conformance.targets.cluster import ClusterTarget
from immich_conformance.targets.ownership import mark

from ..shared_cluster import SharedCluster
from .fixtures import deployed_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the offline cluster needs root (containerd, kubelet, iptables)"),
]

NAMESPACE = "immich-redis-auth"
SCRATCH = PurePosixPath("/var/tmp/immich-conformance-redis-auth")
REDIS, PORT = "immich-redis", 6379
NAME = "app.kubernetes.io/name"
OPENING = "test-edge-standin-to-redis"
FLIP_SECONDS = 30.0
# One reply line per command line read from standard input.
SESSION = f"""exec 3<>/dev/tcp/{REDIS}/{PORT} || exit 3
while IFS= read -r command; do
  printf '%s\\r\\n' "$command" >&3
  IFS= read -r -t 5 reply <&3 || reply='(no reply)'
  printf '%s\\n' "${{reply%$'\\r'}}"
done"""


@pytest.fixture(scope="module")
def target(offline_cluster: SharedCluster) -> Iterator[ClusterTarget]:
    yield from deployed_stack(NAMESPACE, SCRATCH)


def _secret_ref(target: ClusterTarget, deployment: str, container: str, variable: str) -> tuple[str, str]:
    spec = target.kube.get("deployments.apps", deployment)["spec"]["template"]["spec"]
    env = next(c for c in spec["containers"] if c["name"] == container).get("env") or []
    key_ref = next(v for v in env if v["name"] == variable)["valueFrom"]["secretKeyRef"]
    return key_ref["name"], key_ref["key"]


@pytest.fixture(scope="module")
def password(target: ClusterTarget) -> str:
    """Redis's password, from the Secret its Deployment names; immich-server names the same key."""
    secret = _secret_ref(target, REDIS, "valkey", "REDIS_PASSWORD")
    assert _secret_ref(target, "immich-server", "immich-server", "REDIS_PASSWORD") == secret
    value = base64.b64decode(target.kube.get("secrets", secret[0])["data"][secret[1]]).decode()
    assert len(value) >= 16, "the test deployment's password is a random one (ensure_test_secrets)"
    return value


def replies(target: ClusterTarget, workload: str, *commands: str) -> list[str]:
    """Redis's first reply line to each command, sent in one connection from a pod of ``workload``."""
    done = target.kube.run("exec", "-i", f"deployment/{workload}", "--", "bash", "-c", SESSION, check=False,
                           stdin="".join(f"{c}\n" for c in commands), timeout=60)
    assert done.returncode == 0, f"no session with {REDIS} from {workload}: {done.stderr.strip()[-300:]}"
    return done.stdout.splitlines()


def _opening(namespace: str) -> dict[str, Any]:
    """A policy of the test's own that lets the edge stand-in reach Redis, as a CNI that ignores policies would."""
    return mark([{
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": OPENING, "namespace": namespace},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": NAME, "operator": "In",
                                                  "values": ["edge-standin", REDIS]}]},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {NAME: "edge-standin"}}}],
                         "ports": [{"port": PORT, "protocol": "TCP"}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {NAME: REDIS}}}],
                        "ports": [{"port": PORT, "protocol": "TCP"}]}],
        },
    }])[0]


def test_redis_answers_only_with_the_password_of_its_secret(target: ClusterTarget, password: str) -> None:
    # immich-server may reach Redis (the policies let it): the password is what stands in the way.
    assert connects(target.kube, "immich-server", REDIS, PORT)
    without = replies(target, "immich-server", "PING")
    assert len(without) == 1 and without[0].startswith("-NOAUTH"), without
    wrong = replies(target, "immich-server", f"AUTH not-{password}", "PING")
    assert wrong[0].startswith("-WRONGPASS") and wrong[1].startswith("-NOAUTH"), wrong
    assert replies(target, "immich-server", f"AUTH {password}", "PING") == ["+OK", "+PONG"]

    # The edge stand-in may not (the policies keep it out); let it through, and Redis still refuses it.
    assert not connects(target.kube, "edge-standin", REDIS, PORT), "the policies must keep the stand-in out"
    target.kube.run("apply", "-f", "-", stdin=yaml.safe_dump(_opening(NAMESPACE)))
    try:
        wait_until(connection_opens(target.kube, "edge-standin", REDIS, PORT), timeout=FLIP_SECONDS, interval=1.0,
                   what=f"edge-standin reaching {REDIS}:{PORT} once {OPENING} lets it")
        assert replies(target, "edge-standin", "PING", "INFO server", "KEYS *") == [
            "-NOAUTH Authentication required."] * 3
        wrong = replies(target, "edge-standin", f"AUTH not-{password}", "PING")
        assert wrong[0].startswith("-WRONGPASS") and wrong[1].startswith("-NOAUTH"), wrong
    finally:
        target.kube.run("delete", "networkpolicy", OPENING, "--ignore-not-found")
    wait_until(connection_opens(target.kube, "edge-standin", REDIS, PORT, opens=False), timeout=FLIP_SECONDS,
               interval=1.0, what=f"edge-standin kept from {REDIS} again once {OPENING} is gone")
