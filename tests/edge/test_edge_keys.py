"""The team's keys: the JWKS served over TLS, and a rotation saved to the key-ring file taking effect at once."""

from __future__ import annotations

import jwt

from immich_conformance.limits import JWT_HEADER
from immich_conformance.procs import wait_until

from .support import AUD, SERVICE_HEADERS, EdgeHandle, RecordingOrigin


def published_kids(edge: EdgeHandle) -> list[str]:
    return [k["kid"] for k in edge.jwks()["keys"]]


def signing_kid(edge: EdgeHandle, origin: RecordingOrigin) -> str:
    origin.clear()
    with edge.client(headers=SERVICE_HEADERS) as client:
        assert client.get("/api/server/ping").status_code == 200
    [seen] = origin.seen()
    return jwt.get_unverified_header(seen.headers[JWT_HEADER])["kid"]


def cookie_passes(edge: EdgeHandle, token: str) -> bool:
    with edge.client(headers={"Cookie": f"CF_Authorization={token}"}) as client:
        return client.get("/photos").status_code == 200


def test_the_jwks_is_served_over_tls_in_cloudflares_format(edge: EdgeHandle) -> None:
    doc = edge.jwks()
    assert set(doc) == {"keys", "public_cert", "public_certs"}
    assert [k["kid"] for k in doc["keys"]] == [k.kid for k in edge.ring.keys]
    assert all(k["kty"] == "RSA" and k["alg"] == "RS256" for k in doc["keys"])
    assert doc["public_cert"]["kid"] == edge.ring.active.kid
    assert [c["kid"] for c in doc["public_certs"]] == [k.kid for k in edge.ring.keys]


def test_a_rotation_saved_by_another_process_is_published_and_signs_at_once(edge: EdgeHandle,
                                                                            origin: RecordingOrigin) -> None:
    first_active = edge.ring.active
    old_session = edge.ring.mint(AUD, email="alice@example.test")
    assert signing_kid(edge, origin) == first_active.kid

    oldest = edge.ring.keys[0]
    new = edge.ring.rotate(keep=2)
    edge.save_ring()
    wait_until(lambda: published_kids(edge) == [first_active.kid, new.kid], timeout=5, what="the rotated JWKS")
    assert signing_kid(edge, origin) == new.kid
    assert cookie_passes(edge, old_session), "the previous key stays published, so its sessions stay valid"
    assert oldest.kid not in published_kids(edge)

    newest = edge.ring.rotate(keep=2)  # now the key that signed old_session is retired too
    edge.save_ring()
    wait_until(lambda: published_kids(edge) == [new.kid, newest.kid], timeout=5, what="the second rotation")
    assert not cookie_passes(edge, old_session)
    assert signing_kid(edge, origin) == newest.kid


def test_an_unreadable_key_ring_file_keeps_the_keys_in_use(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    active = edge.ring.active.kid
    offset = edge.process.log_size()
    edge.ring_path.write_text("{ not json")
    try:
        assert signing_kid(edge, origin) == active
        assert published_kids(edge)[-1] == active
        assert "cannot load the key ring" in edge.process.log_since(offset)
    finally:
        edge.save_ring()
