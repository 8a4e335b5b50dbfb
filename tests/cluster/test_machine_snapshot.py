"""What `down` compares: a machine snapshot's difference leaves out what Docker adds and removes by itself (its
bridges, their ports and rules, the masquerade of a published port), and keeps what the cluster would leave."""

from __future__ import annotations

from immich_conformance.offline_cluster.machine import MachineSnapshot

# Measured here: one Docker network with one container publishing a port (Docker 20.10).
DOCKER_RULES = [
    "iptables -t filter -A FORWARD -i br-95dedc8e11d7 ! -o br-95dedc8e11d7 -j ACCEPT",
    "iptables -t filter -A FORWARD -i br-95dedc8e11d7 -o br-95dedc8e11d7 -j ACCEPT",
    "iptables -t filter -A FORWARD -o br-95dedc8e11d7 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o br-95dedc8e11d7 -j MASQUERADE",
    "iptables -t nat -A POSTROUTING -s 172.18.0.2/32 -d 172.18.0.2/32 -p tcp -m tcp --dport 6379 -j MASQUERADE",
    "iptables -t filter -A DOCKER -d 172.18.0.2/32 ! -i br-95dedc8e11d7 -o br-95dedc8e11d7 -p tcp -j ACCEPT",
]
DOCKER_LINKS = ["br-95dedc8e11d7", "veth1a2b3c4 master br-95dedc8e11d7"]
# What the cluster would leave if its teardown missed it.
CLUSTER_RULES = [
    "iptables -t nat -A POSTROUTING -s 10.244.0.0/16 ! -o icbr0 -j MASQUERADE",
    "iptables -t nat -A POSTROUTING -s 10.244.0.5/32 -d 10.244.0.6/32 -p tcp -m tcp --dport 2283 -j MASQUERADE",
    "iptables -t filter -A FORWARD -i icbr0 -j ACCEPT",
]
CLUSTER_LINKS = ["icbr0", "veth9f8e7d6 master icbr0"]


def test_what_docker_adds_meanwhile_is_not_the_clusters_and_what_the_cluster_leaves_is() -> None:
    before = MachineSnapshot(iptables=["iptables -t filter -P FORWARD ACCEPT"], links=["lo", "eth0"])
    after = MachineSnapshot(iptables=[*before.iptables, *DOCKER_RULES, *CLUSTER_RULES],
                            links=[*before.links, *DOCKER_LINKS, *CLUSTER_LINKS])
    assert before.diff(after) == {"iptables": {"added": sorted(CLUSTER_RULES), "removed": []},
                                  "links": {"added": sorted(CLUSTER_LINKS), "removed": []}}


def test_docker_alone_leaves_no_difference() -> None:
    before = MachineSnapshot(iptables=["iptables -t filter -P FORWARD ACCEPT"], links=["lo"])
    after = MachineSnapshot(iptables=[*before.iptables, *DOCKER_RULES], links=[*before.links, *DOCKER_LINKS])
    assert before.diff(after) == {}
    assert after.diff(before) == {}


def test_a_containers_veth_pair_not_yet_on_its_bridge_is_dockers_and_a_pods_is_the_clusters() -> None:
    # Seen here by `down`'s comparison while a containers run started a container: both ends of the new pair, in
    # the host's namespace, before one joined the run's bridge and the other moved into the container.
    docker_pair = ["veth5733623", "vethdb47f74"]
    pod_veth = "veth1a2b3c4d"  # the CNI bridge plugin's name, were the cluster to leave one detached
    before = MachineSnapshot(links=["lo"])
    assert before.diff(MachineSnapshot(links=["lo", *docker_pair])) == {}
    assert before.diff(MachineSnapshot(links=["lo", *docker_pair, pod_veth])) == \
        {"links": {"added": [pod_veth], "removed": []}}
