"""The edge stand-in's pod launcher: the unchanged stand-in behind relays, as the edge-standin image runs it.

127.0.0.2 plays the pod's own address (published ports) and 127.0.0.1 the pod's loopback (the stand-in itself).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from immich_conformance import REPO_ROOT
from immich_conformance.access_keys import KeyRing
from immich_conformance.edge.config import parse_config
from immich_conformance.images.edge_pod import LaunchError, plan_relays
from immich_conformance.limits import JWT_HEADER, SERVICE_TOKEN_ID_HEADER, SERVICE_TOKEN_SECRET_HEADER
from immich_conformance.procs import LOOPBACK, ManagedProcess, free_port, free_ports, port_open
from immich_conformance.testing.recording_upstream import RecordingUpstream
from immich_conformance.tls import write_server_files

POD_ADDRESS = "127.0.0.2"
TEAM = "pod-team.cloudflareaccess.test"
HOST = "photos.pod.test"
AUD = "a" * 64
TOKEN = {"client_id": "0123456789abcdef.access", "client_secret": "s" * 64, "name": "pod-test"}


@dataclass
class PodEdge:
    app: str
    team_port: int
    ca_file: Path
    ring_file: Path
    origin: RecordingUpstream
    process: ManagedProcess


def _config(tmp: Path, origin_port: int) -> dict[str, object]:
    tls = write_server_files(tmp / "tls", [TEAM])
    ring_file = tmp / "ring.json"
    KeyRing.generate(TEAM).save(ring_file)
    listen_port, team_port = [port for port in free_ports(3) if port != origin_port][:2]
    return {
        "listen": f"{LOOPBACK}:{listen_port}", "team_listen": f"{LOOPBACK}:{team_port}",
        "origin_url": f"http://{LOOPBACK}:{origin_port}", "public_hostname": HOST, "team_domain": TEAM, "aud": AUD,
        "key_ring_file": str(ring_file), "service_tokens": [TOKEN], "team_tls_cert": str(tls.cert_file),
        "team_tls_key": str(tls.key_file),
    }


@pytest.fixture(scope="module")
def pod_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodEdge]:
    tmp = tmp_path_factory.mktemp("edge-pod")
    origin = RecordingUpstream().start()
    relay_port = free_port()  # the stand-in's origin_url: the launcher relays it to the recording origin
    config = _config(tmp, relay_port)
    (tmp / "edge.json").write_text(json.dumps(config))
    app_port, team_port = free_port(POD_ADDRESS), free_port(POD_ADDRESS)
    process = ManagedProcess("edge-pod", [
        sys.executable, "-m", "immich_conformance.images.edge_pod", "--config", str(tmp / "edge.json"),
        "--publish", f"{POD_ADDRESS}:{app_port}=listen", "--publish", f"{POD_ADDRESS}:{team_port}=team_listen",
        "--origin", origin.address,
    ], log_path=tmp / "edge-pod.log", cwd=REPO_ROOT).start()
    try:
        process.wait_ready(lambda: port_open(app_port, POD_ADDRESS) and port_open(team_port, POD_ADDRESS),
                           timeout=30)
        yield PodEdge(f"http://{POD_ADDRESS}:{app_port}", team_port, tmp / "tls" / "ca.pem", tmp / "ring.json",
                      origin, process)
    finally:
        process.stop()
        origin.stop()


def _token_headers() -> dict[str, str]:
    return {"Host": HOST, SERVICE_TOKEN_ID_HEADER: TOKEN["client_id"],
            SERVICE_TOKEN_SECRET_HEADER: TOKEN["client_secret"]}


def test_a_service_token_request_reaches_the_origin_with_an_assertion(pod_edge: PodEdge) -> None:
    pod_edge.origin.reset()
    response = httpx.get(f"{pod_edge.app}/api/server/ping", headers=_token_headers(), timeout=10)
    assert response.status_code == 200, response.text
    seen = pod_edge.origin.snapshot()
    assert [s.path for s in seen] == ["/api/server/ping"]
    assertion = seen[0].headers[JWT_HEADER]
    ring = KeyRing.load(pod_edge.ring_file)
    kid = jwt.get_unverified_header(assertion)["kid"]
    claims = jwt.decode(assertion, ring.key(kid).private_key.public_key(), algorithms=["RS256"], audience=AUD,
                        issuer=f"https://{TEAM}")
    assert claims["common_name"] == TOKEN["client_id"]
    assert seen[0].headers["Host"] == HOST


def test_access_still_applies_through_the_relay(pod_edge: PodEdge) -> None:
    pod_edge.origin.reset()
    response = httpx.get(f"{pod_edge.app}/api/server/ping", headers={"Host": HOST}, timeout=10)
    assert response.status_code == 302
    assert response.headers["location"].startswith(f"https://{TEAM}/cdn-cgi/access/login/{HOST}")
    assert pod_edge.origin.snapshot() == []


def test_bodies_pass_the_relays_byte_for_byte(pod_edge: PodEdge) -> None:
    size = 5 * 1024 * 1024 + 17
    response = httpx.post(f"{pod_edge.app}/api/assets", headers=_token_headers(), content=os.urandom(size),
                          timeout=30)
    assert response.status_code == 200
    assert response.json() == {"received": size}


def test_the_team_listener_serves_the_jwks_over_tls_for_the_team_domain(pod_edge: PodEdge) -> None:
    context = ssl.create_default_context(cafile=str(pod_edge.ca_file))
    with httpx.Client(verify=context, timeout=10) as client:
        request = client.build_request("GET", f"https://{POD_ADDRESS}:{pod_edge.team_port}/cdn-cgi/access/certs",
                                       headers={"Host": TEAM}, extensions={"sni_hostname": TEAM})
        response = client.send(request)
    assert response.status_code == 200
    ring = KeyRing.load(pod_edge.ring_file)
    assert {k["kid"] for k in response.json()["keys"]} == {k.kid for k in ring.keys}


def test_relay_plans_are_checked(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, free_port()))
    origin_relay, published = plan_relays(config, ["0.0.0.0:8080=listen"], "origin-proxy:8080")
    assert origin_relay is not None and (origin_relay.target_host, origin_relay.target_port) == ("origin-proxy", 8080)
    assert origin_relay.listen_port == int(config.origin_url.rsplit(":", 1)[1])
    assert [(r.listen_port, r.target_port) for r in published] == [(8080, config.listen_port)]
    for bad in (["0.0.0.0:8080=admin"], ["0.0.0.0:8080"], ["pod:8080=listen"], ["0.0.0.0:99999=listen"],
                [f"{config.listen_host}:{config.listen_port}=listen"]):
        with pytest.raises(LaunchError):
            plan_relays(config, bad, None)


def test_bad_arguments_are_reported_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "edge.json").write_text(json.dumps(_config(tmp_path, free_port())))
    done = subprocess.run([sys.executable, "-m", "immich_conformance.images.edge_pod", "--config",
                           str(tmp_path / "edge.json"), "--publish", "0.0.0.0:8080=admin"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=30, check=False)
    assert done.returncode == 2
    assert "KEY one of listen, team_listen" in done.stderr
    assert "Traceback" not in done.stderr
