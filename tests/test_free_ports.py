"""Free ports chosen together differ: one at a time, the kernel may hand out a port it has just handed out (two of a
sandbox's components were once given the same one)."""

from __future__ import annotations

from immich_conformance.origin_proxy import ProxySettings
from immich_conformance.procs import LOOPBACK, free_ports
from immich_conformance.testing.thread_server import bound_loopback_socket

# One at a time, 800 ports from Linux's 28 232 ephemeral ones repeat some almost surely (about 30 in 1 000 measured).
MANY = 800


def test_ports_chosen_together_all_differ() -> None:
    ports = free_ports(MANY)
    assert len(set(ports)) == MANY
    assert all(1024 < port < 65536 for port in ports)


def test_a_proxys_ports_differ_and_a_given_one_is_kept() -> None:
    with bound_loopback_socket() as held:  # bound: no free port chosen can be this one
        given = held.getsockname()[1]
        settings = ProxySettings(team_domain="team.test", aud="aud", upstream=f"{LOOPBACK}:1", health_port=given)
    assert settings.health_port == given
    assert len({settings.listen_port, settings.health_port, settings.admin_port}) == 3
